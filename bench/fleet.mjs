// Several tablets in one node process: each an unmodified PouchDB 9 that
// live-syncs its records and live-pulls config against the gateway, and
// captures records on a schedule, as a worker in the field would.
// Driven by bench/hostile.py and bench/fleet.py.
//
// usage: node bench/fleet.mjs <config.json>
// config: {url, capture_seconds, capture_every_ms, drain_seconds, status, stop,
//          tablets: [{name, dir, auth: {username, password}, captures: [[doc, envelope], ...]}]}
// Captures one pair (a sealed record and its rk: envelope) per tablet every
// capture_every_ms for capture_seconds, writing the captured ids to
// cfg.status every second, and keeps syncing until the file cfg.stop
// appears. Prints one JSON line: per tablet the captured ids, those no
// longer on the tablet, the errors seen while syncing (paused with an
// error, or 'error') and the denied documents, and per process the
// milliseconds each push (_bulk_docs) and each long-poll (_changes with
// feed=longpoll) took from request to the end of its body, how late its event
// loop ran (p50/p99/max ms) and the CPU seconds it used.
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import PouchDB from 'pouchdb';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

const timings = { push_ms: [], longpoll_ms: [] };
// How late this process's event loop ran its callbacks: when it is busy
// (its tablets' own CPU), every latency measured here grows by that much,
// whatever the service does.
const loopDelay = monitorEventLoopDelay({ resolution: 20 });
loopDelay.enable();

// PouchDB's own fetch, timed to the end of the body (a long-poll's headers
// come early when it streams heartbeats).
function timedFetch(url, options) {
  const kind = url.includes('/_bulk_docs') ? 'push_ms'
    : (url.includes('/_changes') && url.includes('feed=longpoll')) ? 'longpoll_ms' : null;
  const started = Date.now();
  return PouchDB.fetch(url, options).then((response) => {
    if (!kind) return response;
    for (const method of ['json', 'text']) {
      const read = response[method].bind(response);
      response[method] = () => read().then((value) => {
        timings[kind].push(Date.now() - started);
        return value;
      });
    }
    return response;
  });
}

function tablet(spec) {
  const opts = { auth: spec.auth, fetch: timedFetch };
  const local = new PouchDB(spec.dir);
  const config = new PouchDB(spec.dir + '-config');
  const remote = new PouchDB(cfg.url + 'records', opts);
  const remoteConfig = new PouchDB(cfg.url + 'config', opts);
  const state = { name: spec.name, captured: [], errors: 0, error_kinds: {}, denied: 0,
                  converged: false };
  const noteError = (err) => {
    if (!err) return;
    state.errors += 1;
    const kind = String(err.status || err.name || 'unknown');
    state.error_kinds[kind] = (state.error_kinds[kind] || 0) + 1;
  };
  const sync = local.sync(remote, { live: true, retry: true, batch_size: 100 });
  const pull = config.replicate.from(remoteConfig, { live: true, retry: true });
  for (const feed of [sync, pull]) {
    feed.on('paused', noteError);
    feed.on('error', noteError);
    feed.on('denied', () => { state.denied += 1; });
  }
  let next = 0;
  const capture = async () => {
    if (next >= spec.captures.length) return;
    const [doc, envelope] = spec.captures[next];
    next += 1;
    await local.bulkDocs([doc, envelope]);
    state.captured.push(doc._id);
  };
  const gone = async () => {
    const rows = (await local.allDocs({ keys: state.captured })).rows;
    return rows.filter((row) => !row.value || row.value.deleted).map((row) => row.key);
  };
  const stop = () => { sync.cancel(); pull.cancel(); };
  return { state, capture, gone, stop };
}

const tablets = cfg.tablets.map(tablet);
const started = Date.now();
// Spread the captures so the tablets do not all write in the same instant.
const timers = tablets.map((t, index) => setTimeout(function tick() {
  if (Date.now() - started >= cfg.capture_seconds * 1000) return;
  t.capture().catch(() => { t.state.errors += 1; });
  timers[index] = setTimeout(tick, cfg.capture_every_ms);
}, Math.floor((index * cfg.capture_every_ms) / tablets.length)));

function writeStatus(phase) {
  const status = { phase, captured: tablets.map((t) => t.state.captured) };
  fs.writeFileSync(cfg.status + '.tmp', JSON.stringify(status));
  fs.renameSync(cfg.status + '.tmp', cfg.status);
}

let finished = false;
async function finish() {
  if (finished) return;
  finished = true;
  for (const t of tablets) t.stop();
  for (const t of tablets) t.state.gone = await t.gone();
  loopDelay.disable();
  const usage = process.cpuUsage();
  const payload = {
    tablets: tablets.map((t) => t.state), timings,
    loop_delay_ms: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6,
                     max: loopDelay.max / 1e6 },
    cpu_s: (usage.user + usage.system) / 1e6,
  };
  process.stdout.write(JSON.stringify(payload) + '\n', () => process.exit(0));
}

// Status every second; the driver ends the run by creating cfg.stop (once
// the server holds every captured record, or its drain time is over).
setInterval(() => {
  const capturing = Date.now() - started < cfg.capture_seconds * 1000;
  writeStatus(capturing ? 'capture' : 'drain');
  if (fs.existsSync(cfg.stop)) finish();
}, 1000);
// A last resort if the driver is gone.
setTimeout(finish, (cfg.capture_seconds + cfg.drain_seconds + 120) * 1000);
