"""Throughput of an authenticated JSON endpoint against ``/healthz``.

Both run under the same gunicorn configuration, in the same run, against the
same pouchdb-server, interleaved in rounds so that drift on this shared
machine hits both alike. Prints requests per second and their ratio.

Then the cross-instance revocation latency: a second instance on the same
databases serves a session (so it holds it in memory), the session is
logged out on the first instance, and the second is polled until it answers
401; ``--revocations`` times, p50/p99/max.

    .venv/bin/python bench/api_throughput.py [--requests 2000] [--concurrency 8] [--rounds 3]
                                             [--revocations 100]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import httpx

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.embedded_db import EmbeddedDB, free_port  # noqa: E402

PASSWORD = 'benchmark password 0001'


def start_service(couch_url: str, prefix: str, port: int) -> subprocess.Popen:
    """Start gunicorn with the project's gunicorn.conf.py."""
    env = dict(os.environ, FIELDVAULT_COUCHDB_URL=couch_url, FIELDVAULT_DB_PREFIX=prefix,
               FIELDVAULT_BIND_PORT=str(port), FIELDVAULT_LOG_LEVEL='WARNING')
    process = subprocess.Popen(
        [str(ROOT / '.venv/bin/gunicorn'), '--config', 'gunicorn.conf.py',
         'service.app:create_app()'],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f'http://127.0.0.1:{port}/healthz', timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit('gunicorn did not start')


def measure(url: str, headers: dict, requests: int, concurrency: int) -> float:
    """Return requests per second for ``requests`` GETs over ``concurrency`` threads."""
    per_thread = requests // concurrency

    def worker() -> int:
        ok = 0
        with httpx.Client(timeout=30) as session:
            for _ in range(per_thread):
                if session.get(url, headers=headers).status_code == 200:
                    ok += 1
        return ok

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        done = sum(pool.map(lambda _: worker(), range(concurrency)))
    elapsed = time.perf_counter() - started
    if done != per_thread * concurrency:
        raise SystemExit(f'{per_thread * concurrency - done} requests failed')
    return done / elapsed


def revocation_latencies(first: str, second: str, trials: int) -> list[float]:
    """Return seconds from a logout on ``first`` until ``second`` answers 401, per trial."""
    latencies = []
    with httpx.Client(timeout=30) as client:
        for _ in range(trials):
            token = client.post(f'{first}/auth/login', json={
                'username': 'bench-admin', 'password': PASSWORD}).json()['token']
            auth = {'Authorization': f'Bearer {token}'}
            for _ in range(3):  # the second instance now serves it from memory
                if client.get(f'{second}/auth/me', headers=auth).status_code != 200:
                    raise SystemExit('the second instance refused a live session')
            if client.post(f'{first}/auth/logout', headers=auth).status_code != 200:
                raise SystemExit('logout failed')
            started = time.perf_counter()
            deadline = started + 30
            while client.get(f'{second}/auth/me', headers=auth).status_code == 200:
                if time.perf_counter() > deadline:
                    raise SystemExit('the second instance kept a logged-out session for 30 s')
            latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--requests', type=int, default=2000)
    parser.add_argument('--concurrency', type=int, default=8)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--revocations', type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        couch = EmbeddedDB(free_port(), tmp).start()
        prefix = f'bench{uuid.uuid4().hex[:6]}_'
        port = free_port()
        env = dict(os.environ, FIELDVAULT_COUCHDB_URL=couch.url, FIELDVAULT_DB_PREFIX=prefix)
        subprocess.run([str(ROOT / '.venv/bin/fieldvault'), 'users', 'bootstrap-admin',
                        '--username', 'bench-admin', '--password', PASSWORD],
                       env=env, check=True, capture_output=True)
        service = start_service(couch.url, prefix, port)
        try:
            base = f'http://127.0.0.1:{port}'
            token = httpx.post(f'{base}/auth/login', json={
                'username': 'bench-admin', 'password': PASSWORD}).json()['token']
            auth = {'Authorization': f'Bearer {token}'}
            measure(f'{base}/auth/me', auth, 200, args.concurrency)  # warm-up
            health, authed = [], []
            for _ in range(args.rounds):
                health.append(measure(f'{base}/healthz', {}, args.requests, args.concurrency))
                authed.append(measure(f'{base}/auth/me', auth, args.requests, args.concurrency))
            h, a = statistics.median(health), statistics.median(authed)
            print(f'healthz           {h:8.0f} req/s (median of {args.rounds})')
            print(f'auth/me (bearer)  {a:8.0f} req/s (median of {args.rounds})')
            print(f'ratio auth/me : healthz = {a / h:.2f}')
            second_port = free_port()
            second = start_service(couch.url, prefix, second_port)
            try:
                times = sorted(revocation_latencies(base, f'http://127.0.0.1:{second_port}',
                                                    args.revocations))
            finally:
                second.terminate()
                second.wait(20)
            p99 = times[min(len(times) - 1, max(0, int(0.99 * len(times) + 0.999) - 1))]
            print(f'revocation across instances (logout on one, 401 on the other), '
                  f'{len(times)} trials: p50 {statistics.median(times) * 1000:.1f} ms, '
                  f'p99 {p99 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms')
            print(f'host load average (1 min) at the end: {os.getloadavg()[0]:.2f}')
        finally:
            service.terminate()
            service.wait(20)
            couch.stop()


if __name__ == '__main__':
    main()
