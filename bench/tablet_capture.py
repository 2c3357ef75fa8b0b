"""Benchmark of the tablet app in headless chromium.

1. Load size: the bytes of every file the app's service worker caches, raw and
   gzip-compressed (what a tablet downloads once, then opens offline).
2. Capture: the app enrolled, offline; N screenings captured through the form
   (each one validated with ajv, sealed with WebCrypto/@hpke/core, written to
   IndexedDB). Prints the median time of one capture.
3. Capture-to-synced: back online, the time until the app shows nothing
   pending, i.e. all N records (and their envelopes) pushed through the
   gateway and acknowledged.

A fresh pouchdb-server, the service under gunicorn, a published signer and
manifest; Debian's chromium through Playwright.

usage: python -m bench.tablet_capture [--records 100]
"""

from __future__ import annotations

import argparse
import gzip
import json
import pathlib
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid

import keys
from service.app import build_services
from service.cli import ensure_databases
from service.config import Config
from service.embedded_db import EmbeddedDB, free_port
from sync.devices import Devices
from tests.integration.conftest import ORG, ROOT, Service


def load_size() -> dict:
    """Raw and gzip bytes of the files the service worker caches."""
    dist = ROOT / 'tablet' / 'dist'
    build = json.loads((dist / 'build.json').read_text())
    files = sorted(name for name in build['sizes'] if name != 'build.json')
    raw = {name: (dist / name).stat().st_size for name in files}
    packed = {name: len(gzip.compress((dist / name).read_bytes(), 9)) for name in files}
    return {'raw_bytes': sum(raw.values()), 'gzip_bytes': sum(packed.values()),
            'app_js_raw': raw['app.js'], 'app_js_gzip': packed['app.js']}


def _deployment(couch_url: str, workdir: pathlib.Path):
    prefix = f'b{uuid.uuid4().hex[:8]}_'
    config = Config(couchdb_url=couch_url, db_prefix=prefix, org=ORG,
                    password_hash_memory_kib=1024, password_hash_iterations=1)
    services = build_services(config)
    ensure_databases(services)
    signer = keys.SigningKey.generate()
    org_key = keys.OrgKeyPair.generate('oek-1')
    config_db = services.db('config')
    services.couch.put(config_db, {'_id': 'org-signer', 'type': 'org-signer',
                                   'public': signer.public_b64(),
                                   'fingerprint': signer.fingerprint()})
    body = keys.build_manifest(ORG, 1, [org_key.manifest_entry('active')])
    services.couch.put(config_db, {'_id': 'key-manifest', 'type': 'key-manifest', 'seq': 1,
                                   'signed': keys.sign_manifest(body, signer)})
    services.accounts.create_user('worker-bench', 'correct horse battery staple', ['worker'])
    secret = Devices(services.couch, services.db('directory'),
                     services.db('config')).register('worker-bench')['enrollment_code']
    code = f'fve1.{secret}.{signer.fingerprint().replace(" ", "").lower()}'
    service = Service(couch_url, prefix, workdir).start()
    return services, service, code


def capture(service_url: str, code: str, count: int) -> dict:
    from playwright.sync_api import sync_playwright
    chromium = shutil.which('chromium')
    if chromium is None:
        raise SystemExit("Debian's chromium is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=['--no-sandbox'])
        context = browser.new_context()
        page = context.new_page()
        page.goto(service_url + '/app/')
        page.fill('#enroll-code', code)
        page.click('#enroll-button')
        page.wait_for_function("document.querySelector('#save') && "
                               "!document.querySelector('#save').disabled", timeout=60_000)
        context.set_offline(True)
        times = []
        for index in range(count):
            page.click('#new-code')
            youth = page.input_value('#youth-code')
            page.check('#confidentiality')
            page.select_option('#answer-QYIT_1', 'yes')
            page.fill('#note-QYIT_1', f'benchmark note {index}')
            started = time.perf_counter()
            page.click('#save')
            page.wait_for_selector(f'#saved:has-text("{youth}")')
            times.append(time.perf_counter() - started)
        page.wait_for_function(
            f"document.querySelector('#status-pending')?.dataset.count === '{count}'")
        context.set_offline(False)
        started = time.perf_counter()
        page.evaluate("window.dispatchEvent(new Event('online'))")
        page.wait_for_function("document.querySelector('#status-pending')?.dataset.count === '0'",
                               timeout=600_000, polling=50)
        synced = time.perf_counter() - started
        browser.close()
    return {'capture_median_ms': statistics.median(times) * 1000,
            'capture_total_s': sum(times), 'synced_s': synced}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--records', type=int, default=100)
    args = parser.parse_args()
    subprocess.run(['node', 'tablet/build.mjs'], cwd=ROOT, check=True, capture_output=True)
    sizes = load_size()
    print(f'load size: {sizes["raw_bytes"]:,} bytes ({sizes["gzip_bytes"]:,} gzip); '
          f'app.js {sizes["app_js_raw"]:,} ({sizes["app_js_gzip"]:,} gzip)', flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp)
        server = EmbeddedDB(free_port(), workdir / 'pouchdb').start()
        try:
            services, service, code = _deployment(server.url, workdir)
            try:
                result = capture(service.url, code, args.records)
                stored = [row for row in services.couch.all_docs(services.db('records'))
                          if row['id'].startswith('screening:')]
            finally:
                service.stop()
                services.couch.close()
        finally:
            server.stop()
    assert len(stored) == args.records, len(stored)
    print(f'capture offline: {args.records} screenings, '
          f'median {result["capture_median_ms"]:.0f} ms each (validate + seal + IndexedDB), {result["capture_total_s"]:.1f} s in all')
    print(f'capture-to-synced: {args.records} records + envelopes on the server '
          f'{result["synced_s"]:.2f} s after the tablet came back online')


if __name__ == '__main__':
    main()
