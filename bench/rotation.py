"""Benchmark of key rotation's rewrap.

For each N: a fresh deployment (pouchdb-server + fieldvault under gunicorn),
N ``rk:`` envelopes sealed to oek-1 loaded with ``_bulk_docs`` directly, a
manifest with oek-2 active and oek-1 decrypt-only. Then, in the same run:

1. plain: page through the same envelopes with ``_all_docs`` and write them
   back unchanged with ``_bulk_docs``, straight to CouchDB (no crypto, no
   service), with the same page size as the rewrap: the floor any rewrap is
   compared with;
2. rewrap: ``fieldvault_client.cli.lifecycle.rewrap`` (the code ``fieldvault keys
   rewrap`` runs) in a child process, through the service's endpoints, HPKE
   open + seal per envelope;
3. plain again, after the rewrap.

Plain runs before and after the rewrap because every pass writes one more
revision of each envelope, and pouchdb-server gets slower with each (a
20,000-envelope plain pass repeated four times: 4,425, 4,273, 3,952,
3,684/s). Plain before alone would write revision 2 and be compared with a
rewrap writing revision 3; the two plain passes (revisions 2 and 4) bracket
it. The ratio uses both plain passes together; the ratio against plain
before alone is printed too.

Prints throughput of all three, the ratio rewrap/plain (goal >= 0.5), and
peak memory of the rewrap client per N (goal: flat).

Memory is the child's own ``VmHWM`` (Linux ``/proc/self/status``), not
``getrusage().ru_maxrss``: on Linux, exec carries the spawning process's
high-water mark into the child's ``ru_maxrss``, so that figure was the bench
parent's memory (which grows with the N it loaded and paged), never below
it. The child also reports its RSS when the first batch is written and
when the last one is, so growth during the run shows apart from start-up.
``--trace-memory`` runs the child under ``tracemalloc`` and adds its peak of
Python-level live memory; tracing slows the client, so throughput of such a
run is not comparable: measure it separately.

usage: python -m bench.rotation [--sizes 10000,100000] [--page-size 500] [--trace-memory]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import uuid

import httpx

import keys
from keys.envelopes import seal_rk
from service.app import build_services
from service.cli import ensure_databases
from service.config import Config
from service.embedded_db import EmbeddedDB, free_port
from tests.integration.conftest import ORG, Service

PASSWORD = 'correct horse battery staple'


def _load(services, old: keys.OrgKeyPair, count: int, batch: int = 2000) -> None:
    db = services.db('keyvault')
    public = old.public_b64()
    for start in range(0, count, batch):
        docs = []
        for _index in range(start, min(start + batch, count)):
            rkid = secrets.token_hex(16)
            docs.append(seal_rk(secrets.token_bytes(32), org=ORG, doc_id=f'contact:{uuid.uuid4()}',
                                rkid=rkid, kid=old.kid, public_b64=public, device='dev-1',
                                at='2026-03-02T10:15:00Z'))
        services.couch.bulk_docs(db, docs)


def _plain(services, page_size: int) -> tuple[int, float]:
    db = services.db('keyvault')
    started = time.perf_counter()
    done, start, skip = 0, 'rk:', 0
    while True:
        rows = services.couch.all_docs(db, include_docs=True, start_key=start,
                                       end_key='rk:\ufff0', limit=page_size, skip=skip)
        if not rows:
            break
        services.couch.bulk_docs(db, [row['doc'] for row in rows])
        done += len(rows)
        start, skip = rows[-1]['id'], 1
        if len(rows) < page_size:
            break
    return done, time.perf_counter() - started


def _status_kib(field: str) -> int:
    """Return a ``kB`` field of this process's ``/proc/self/status`` (Linux)."""
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'no {field} in /proc/self/status')


def _child(args) -> None:
    """Run the real rewrap client; print JSON with time and memory figures."""
    from fieldvault_client.api import Api
    from fieldvault_client.cli.lifecycle import rewrap
    from fieldvault_client.home import Home

    spec = json.loads(sys.stdin.read())
    old = keys.OrgKeyPair._from_scalar('oek-1', bytes.fromhex(spec['scalar']))
    home = Home(spec['home'])
    home.write('session.json', json.dumps({'server': spec['url'], 'token': spec['token']}))
    api, keyring = Api(home), keys.Keyring([old])
    rss_kib: list[int] = []

    def sample(_count: int) -> None:
        # One read of /proc per batch written (200 for 100,000 envelopes).
        rss_kib.append(_status_kib('VmRSS'))

    if args.trace_memory:
        import tracemalloc
        tracemalloc.start()
    started = time.perf_counter()
    stats = rewrap(api, keyring, old='oek-1', new='oek-2', new_public=spec['new_public'],
                   org=ORG, page_size=spec['page_size'], on_batch=sample)
    elapsed = time.perf_counter() - started
    traced_peak_kib = None
    if args.trace_memory:
        traced_peak_kib = tracemalloc.get_traced_memory()[1] // 1024
        tracemalloc.stop()
    print(json.dumps({'rewrapped': stats.rewrapped, 'seconds': elapsed,
                      'peak_kib': _status_kib('VmHWM'),
                      'rss_first_batch_kib': rss_kib[0] if rss_kib else None,
                      'rss_last_batch_kib': rss_kib[-1] if rss_kib else None,
                      'inherited_maxrss_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      'traced_peak_kib': traced_peak_kib,
                      'conflicts': stats.conflicts, 'failed': stats.failed}))


def _run(couch_url: str, workdir: pathlib.Path, count: int, page_size: int,
         trace_memory: bool) -> dict:
    prefix = f'b{uuid.uuid4().hex[:10]}_'
    config = Config(couchdb_url=couch_url, db_prefix=prefix, org=ORG,
                    password_hash_memory_kib=1024, password_hash_iterations=1)
    services = build_services(config)
    ensure_databases(services)
    signer = keys.SigningKey.generate()
    old, new = keys.OrgKeyPair.generate('oek-1'), keys.OrgKeyPair.generate('oek-2')
    config_db = services.db('config')
    services.couch.put(config_db, {'_id': 'org-signer', 'type': 'org-signer',
                                   'public': signer.public_b64(),
                                   'fingerprint': signer.fingerprint()})
    body = keys.build_manifest(ORG, 2, [new.manifest_entry('active'),
                                        old.manifest_entry('decrypt-only', '2999-12-31')])
    services.couch.put(config_db, {'_id': 'key-manifest', 'type': 'key-manifest', 'seq': 2,
                                   'signed': keys.sign_manifest(body, signer)})
    services.accounts.create_user('sup-bench', PASSWORD, ['supervisor'], team='team-a')
    t0 = time.perf_counter()
    _load(services, old, count)
    load_s = time.perf_counter() - t0
    service = Service(couch_url, prefix, workdir).start()
    try:
        token = httpx.post(service.url + '/auth/login', timeout=30, json={
            'username': 'sup-bench', 'password': PASSWORD}).json()['token']
        plain_n, plain_s = _plain(services, page_size)
        spec = {'scalar': old._scalar().hex(), 'home': str(workdir / f'home-{count}'),
                'url': service.url, 'token': token, 'new_public': new.public_b64(),
                'page_size': page_size}
        command = [sys.executable, '-m', 'bench.rotation', '--child']
        if trace_memory:
            command.append('--trace-memory')
        child = subprocess.run(command,
                               input=json.dumps(spec).encode(), capture_output=True,
                               check=True, timeout=7200)
        result = json.loads(child.stdout.decode().strip().splitlines()[-1])
        census = httpx.get(service.url + '/keys/census', timeout=600, headers={
            'Authorization': f'Bearer {token}'}).json()['census']
        after_n, after_s = _plain(services, page_size)
    finally:
        service.stop()
        for name in ('records', 'keyvault', 'directory', 'config', 'audit', 'quarantine'):
            services.couch.delete_db(services.db(name))
        services.couch.close()
    return {'n': count, 'load_s': load_s, 'plain_n': plain_n, 'plain_s': plain_s,
            'plain_after_n': after_n, 'plain_after_s': after_s, 'census_after': census,
            **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='10000,100000')
    parser.add_argument('--page-size', type=int, default=500)
    parser.add_argument('--trace-memory', action='store_true',
                        help='Trace the client with tracemalloc (slower: throughput not '
                             'comparable).')
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    sizes = [int(size) for size in args.sizes.split(',')]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp)
        couch = EmbeddedDB(free_port(), workdir / 'pouchdb').start()
        try:
            results = [_run(couch.url, workdir, size, args.page_size, args.trace_memory)
                       for size in sizes]
        finally:
            couch.stop()
    print(f'cores: {os.cpu_count()}, page size {args.page_size}'
          + (', tracemalloc on (throughput not comparable)' if args.trace_memory else ''))
    for r in results:
        before_rate = r['plain_n'] / r['plain_s']
        after_rate = r['plain_after_n'] / r['plain_after_s']
        plain_rate = (r['plain_n'] + r['plain_after_n']) / (r['plain_s'] + r['plain_after_s'])
        rate = r['rewrapped'] / r['seconds']
        traced = (f", tracemalloc peak {r['traced_peak_kib'] / 1024:.1f} MiB"
                  if r['traced_peak_kib'] is not None else '')
        print(f"N={r['n']:>7}: rewrap {r['rewrapped']} in {r['seconds']:.1f} s = {rate:,.0f}/s; "
              f"plain bulk read+write {r['plain_n']} in {r['plain_s']:.1f} s = "
              f"{before_rate:,.0f}/s before, {r['plain_after_n']} in {r['plain_after_s']:.1f} s "
              f"= {after_rate:,.0f}/s after, both {plain_rate:,.0f}/s; "
              f"ratio {rate / plain_rate:.2f} (goal >= 0.5; against plain before only "
              f"{rate / before_rate:.2f}); "
              f"rewrap client peak RSS {r['peak_kib'] / 1024:.1f} MiB "
              f"(RSS at first batch {r['rss_first_batch_kib'] / 1024:.1f}, at last "
              f"{r['rss_last_batch_kib'] / 1024:.1f}{traced}; getrusage ru_maxrss, which "
              f"includes the spawning bench process, {r['inherited_maxrss_kib'] / 1024:.1f}); "
              f"census after {r['census_after']}; conflicts {r['conflicts']}, "
              f"failed {r['failed']}")
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(f"peak RSS N={last['n']} / N={first['n']}: "
              f"{last['peak_kib'] / first['peak_kib']:.2f} (goal: flat, ~1.0)")
        if last['traced_peak_kib'] and first['traced_peak_kib']:
            print(f"tracemalloc peak N={last['n']} / N={first['n']}: "
                  f"{last['traced_peak_kib'] / first['traced_peak_kib']:.2f}")

if __name__ == '__main__':
    main()
