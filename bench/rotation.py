"""Benchmark of key rotation's rewrap (issue 5).

For each N: a fresh deployment (pouchdb-server + fieldvault under gunicorn),
N ``rk:`` envelopes sealed to oek-1 loaded with ``_bulk_docs`` directly, a
manifest with oek-2 active and oek-1 decrypt-only. Then, in the same run:

1. plain: page through the same envelopes with ``_all_docs`` and write them
   back unchanged with ``_bulk_docs``, straight to CouchDB (no crypto, no
   service): the floor any rewrap is compared with;
2. rewrap: ``service.cli_lifecycle.rewrap`` (the code ``fieldvault keys
   rewrap`` runs) in a child process, through the service's endpoints, HPKE
   open + seal per envelope. The child reports its peak RSS (getrusage).

Prints throughput of both, the ratio rewrap/plain (goal >= 0.5), and peak
memory of the rewrap client per N (goal: flat).

usage: python -m bench.rotation [--sizes 10000,100000] [--page-size 500]
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


def _child(args) -> None:
    """Run the real rewrap client; print JSON with time and peak RSS."""
    from service.cli_lifecycle import rewrap
    from service.cli_staff import Api, Home

    spec = json.loads(sys.stdin.read())
    old = keys.OrgKeyPair._from_scalar('oek-1', bytes.fromhex(spec['scalar']))
    home = Home(spec['home'])
    home.write('session.json', json.dumps({'server': spec['url'], 'token': spec['token']}))
    started = time.perf_counter()
    stats = rewrap(Api(home), keys.Keyring([old]), old='oek-1', new='oek-2',
                   new_public=spec['new_public'], org=ORG, page_size=spec['page_size'])
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({'rewrapped': stats.rewrapped, 'seconds': elapsed, 'peak_kib': peak_kib,
                      'conflicts': stats.conflicts, 'failed': stats.failed}))


def _run(couch_url: str, workdir: pathlib.Path, count: int, page_size: int) -> dict:
    prefix = f'b{uuid.uuid4().hex[:10]}_'
    config = Config({}, couchdb_url=couch_url, db_prefix=prefix, org=ORG,
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
        child = subprocess.run([sys.executable, '-m', 'bench.rotation', '--child'],
                               input=json.dumps(spec).encode(), capture_output=True,
                               check=True, timeout=7200)
        result = json.loads(child.stdout.decode().strip().splitlines()[-1])
        census = httpx.get(service.url + '/keys/census', timeout=600, headers={
            'Authorization': f'Bearer {token}'}).json()['census']
    finally:
        service.stop()
        for name in ('records', 'keyvault', 'directory', 'config', 'audit', 'quarantine'):
            services.couch.delete_db(services.db(name))
        services.couch.close()
    return {'n': count, 'load_s': load_s, 'plain_n': plain_n, 'plain_s': plain_s,
            'census_after': census, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='10000,100000')
    parser.add_argument('--page-size', type=int, default=500)
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
            results = [_run(couch.url, workdir, size, args.page_size) for size in sizes]
        finally:
            couch.stop()
    print(f'cores: {os.cpu_count()}, page size {args.page_size}')
    for r in results:
        plain_rate = r['plain_n'] / r['plain_s']
        rate = r['rewrapped'] / r['seconds']
        print(f"N={r['n']:>7}: rewrap {r['rewrapped']} in {r['seconds']:.1f} s = {rate:,.0f}/s; "
              f"plain bulk read+write {r['plain_n']} in {r['plain_s']:.1f} s = "
              f"{plain_rate:,.0f}/s; ratio {rate / plain_rate:.2f} (goal >= 0.5); "
              f"rewrap client peak RSS {r['peak_kib'] / 1024:.1f} MiB; "
              f"census after {r['census_after']}; conflicts {r['conflicts']}, "
              f"failed {r['failed']}")
    if len(results) > 1:
        print(f"peak RSS N={results[-1]['n']} / N={results[0]['n']}: "
              f"{results[-1]['peak_kib'] / results[0]['peak_kib']:.2f} (goal: flat, ~1.0)")


if __name__ == '__main__':
    main()
