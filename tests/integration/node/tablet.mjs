// A tablet: an unmodified PouchDB 9 (leveldb in a temp dir) replicating with
// the fieldvault gateway. Driven by the Python integration tests.
//
// usage: node tablet.mjs <config.json>
// config: {dir, url, db, auth: {username, password} | token, docs?: [...],
//          action: "push" | "pull" | "sync_live", expect?: n, timeout_ms?, batch_size?,
//          remove?: [id], put_deleted?: [id]}
//   or, for a new tablet: {dir, action: "enroll_and_seal", base_url, enrollment_code,
//          org, plain_docs: [...], paths: {type: [pointer, ...]}}: enroll with the
//          code, pin the signer only if its fingerprint is the code's, verify the
//          manifest, seal the documents and push them.
// Prints one JSON line: {ok, result?, error?, ids, denied}.
import fs from 'node:fs';
import PouchDB from 'pouchdb';
import { parseEnrollmentCode, pinSigner, sealDocument, verifyManifest } from '../../../js/fle.mjs';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const local = new PouchDB(cfg.dir);
const remoteOpts = {};
if (cfg.token) {
  remoteOpts.fetch = (url, opts) => {
    opts.headers.set('Authorization', `Bearer ${cfg.token}`);
    return PouchDB.fetch(url, opts);
  };
} else {
  remoteOpts.auth = cfg.auth;
}
const remote = new PouchDB(cfg.url + cfg.db, remoteOpts);
let denied = 0;

async function ids() {
  const all = await local.allDocs();
  return all.rows.map((row) => row.id);
}

function finish(payload) {
  // Exit only once the pipe took everything (large id lists exceed 64 KiB).
  process.stdout.write(JSON.stringify(payload) + '\n', () => process.exit(0));
}

async function main() {
  if (cfg.docs && cfg.docs.length) {
    await local.bulkDocs(cfg.docs);
  }
  // Deletions the two ways an app deletes: db.remove(doc) and a put of the
  // whole document with _deleted: true.
  for (const id of cfg.remove || []) {
    await local.remove(await local.get(id));
  }
  for (const id of cfg.put_deleted || []) {
    await local.put({ ...(await local.get(id)), _deleted: true });
  }
  const opts = { batch_size: cfg.batch_size || 100, retry: !!cfg.retry };
  if (cfg.action === 'push' || cfg.action === 'pull') {
    const started = process.hrtime.bigint();
    const rep = cfg.action === 'push' ? local.replicate.to(remote, opts) : local.replicate.from(remote, opts);
    rep.on('denied', () => { denied += 1; });
    try {
      const result = await rep;
      const elapsed_ms = Number(process.hrtime.bigint() - started) / 1e6;
      finish({ ok: result.ok, elapsed_ms, result: { docs_written: result.docs_written, doc_write_failures: result.doc_write_failures, status: result.status }, ids: await ids(), denied });
    } catch (err) {
      finish({ ok: false, error: { name: err.name, status: err.status }, ids: await ids(), denied });
    }
    return;
  }
  if (cfg.action === 'sync_live') {
    const sync = local.sync(remote, { live: true, retry: true, batch_size: opts.batch_size });
    let lastError = null;
    const deadline = setTimeout(async () => {
      sync.cancel();
      finish({ ok: false, timeout: true, error: lastError, ids: await ids(), denied });
    }, cfg.timeout_ms || 60000);
    // Idle = both directions caught up ('paused' without an error).
    let idle = false;
    sync.on('paused', (err) => { idle = !err; });
    sync.on('active', () => { idle = false; });
    sync.on('change', () => { idle = false; });
    sync.on('denied', () => { denied += 1; });
    sync.on('error', async (err) => {
      clearTimeout(deadline);
      finish({ ok: false, error: { name: err.name, status: err.status }, ids: await ids(), denied });
    });
    // 'paused' also fires when the pull pauses before the push has started
    // (both start paused), so "done" is proved: the gateway's _revs_diff
    // must lack none of the local revisions.
    const pushed = async () => {
      const all = await local.allDocs();
      const revs = {};
      for (const row of all.rows) revs[row.id] = [row.value.rev];
      try {
        return Object.keys(await remote.revsDiff(revs)).length === 0;
      } catch (err) {
        return false;
      }
    };
    const check = async () => {
      const current = await ids();
      if (cfg.expect !== undefined && current.length >= cfg.expect && idle && await pushed()) {
        // Stay a moment so a surplus (another worker's docs) would show up too.
        setTimeout(async () => {
          if (!idle || !(await pushed())) { setTimeout(check, 200); return; }
          clearTimeout(deadline);
          sync.cancel();
          finish({ ok: true, ids: await ids(), denied });
        }, 1500);
        return;
      }
      setTimeout(check, 200);
    };
    check();
    return;
  }
  if (cfg.action === 'feed') {
    // A tablet in the field: live sync of records and a live pull of config,
    // while the test drops new documents into cfg.inbox (one JSON array per
    // file) as a worker would capture them. Writes cfg.status every 300 ms;
    // ends when cfg.inbox/STOP appears.
    const config = new PouchDB(cfg.dir + '-config');
    const remoteConfig = new PouchDB(cfg.url + 'config', remoteOpts);
    const sync = local.sync(remote, { live: true, retry: true, batch_size: opts.batch_size });
    const pull = config.replicate.from(remoteConfig, { live: true, retry: true });
    sync.on('denied', () => { denied += 1; });
    const seen = new Set();
    let lastError = null;
    sync.on('error', (err) => { lastError = { name: err.name, status: err.status }; });
    const tick = async () => {
      for (const name of fs.readdirSync(cfg.inbox).sort()) {
        if (name === 'STOP' || seen.has(name) || !name.endsWith('.json')) continue;
        seen.add(name);
        await local.bulkDocs(JSON.parse(fs.readFileSync(`${cfg.inbox}/${name}`, 'utf8')));
      }
      let manifestSeq = null;
      try { manifestSeq = (await config.get('key-manifest')).seq; } catch (err) { /* not yet */ }
      const status = { ids: await ids(), manifest_seq: manifestSeq, denied, error: lastError };
      fs.writeFileSync(cfg.status + '.tmp', JSON.stringify(status));
      fs.renameSync(cfg.status + '.tmp', cfg.status);
      if (fs.existsSync(`${cfg.inbox}/STOP`)) {
        sync.cancel();
        pull.cancel();
        finish({ ok: lastError === null, ...status });
        return;
      }
      setTimeout(tick, 300);
    };
    tick();
    return;
  }
  if (cfg.action === 'enroll_and_seal') {
    const { secret, fingerprint } = parseEnrollmentCode(cfg.enrollment_code);
    const answer = await fetch(`${cfg.base_url}/devices/enroll`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code: secret }),
    });
    if (answer.status !== 201) {
      finish({ ok: false, error: { name: 'enrollment_refused', status: answer.status }, ids: await ids(), denied });
      return;
    }
    const creds = await answer.json();
    const authed = {
      fetch: (url, opts) => {
        opts.headers.set('Authorization', `Bearer ${creds.token}`);
        return PouchDB.fetch(url, opts);
      },
    };
    const config = new PouchDB(cfg.dir + '-config');
    await config.replicate.from(new PouchDB(`${cfg.base_url}/sync/config`, authed));
    let manifestBody;
    try {
      // The fingerprint is the code's (from the admin's own CLI), never the server's.
      const pinned = await pinSigner(creds.manifest_signing_key, fingerprint);
      manifestBody = await verifyManifest((await config.get('key-manifest')).signed, pinned, { fingerprint });
    } catch (err) {
      finish({ ok: false, refused: err.name, ids: await ids(), denied });
      return;
    }
    const docs = [];
    for (const plain of cfg.plain_docs) {
      const { sealed, envelope } = await sealDocument(plain, { paths: cfg.paths[plain.type], org: cfg.org, manifestBody });
      docs.push(sealed, envelope);
    }
    await local.bulkDocs(docs);
    const rep = local.replicate.to(new PouchDB(`${cfg.base_url}/sync/records`, authed));
    rep.on('denied', () => { denied += 1; });
    const result = await rep;
    const active = manifestBody.keys.find((entry) => entry.status === 'active').kid;
    finish({ ok: result.ok, kid: active, result: { docs_written: result.docs_written }, ids: await ids(), denied });
    return;
  }
  throw new Error(`unknown action ${cfg.action}`);
}

main().catch((err) => finish({ ok: false, error: { name: err.name, status: err.status, message: String(err.message) } }));
