"""Load benchmark: a fleet of live-syncing tablets while one hostile device attacks.

Starts a pouchdb-server and fieldvault under gunicorn on loopback, publishes
a key manifest, enrolls ``--tablets`` devices (one worker each) and runs them
as real PouchDB 9 tablets, ``--per-process`` to a node process
(``bench/fleet.mjs``), each live-syncing records and live-pulling config
(``sync({live: true, retry: true})``) and capturing a sealed record (with its
envelope) every ``--capture-every`` seconds for ``--seconds``. Meanwhile one
hostile device (and its unauthenticated twin at the login) sends every attack
of the gateway hardening in a loop from ``--hostile-threads`` threads, and
``/healthz`` is sampled. Afterwards the tablets keep syncing until every
captured record is on the server or ``--drain`` seconds pass.

Prints ``/healthz`` p50/p99 during the attack, the tablets' error counts,
records captured vs stored, whether any record was lost, and what each attack
was answered. Only loopback traffic. A bench, not a test: nothing here passes
or fails on time.

usage: python -m bench.hostile [--seconds 120] [--tablets 50] [--per-process 10]
                               [--worker-class gthread] [--hostile-threads 24] [--skip NAME,...]
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import httpx

from bench.sync import OrgKeys, _enroll
from service.app import build_services
from service.cli import ensure_databases
from service.config import Config
from service.embedded_db import EmbeddedDB, free_port
from sync.devices import Devices
from sync.errors import DatabaseUnavailable
from tests.integration.conftest import ORG, ROOT
from tests.integration.records import sealed_contact

FLEET = ROOT / 'bench' / 'fleet.mjs'


def _gunicorn(couch_url: str, prefix: str, workdir: pathlib.Path,
              worker_class: str | None) -> tuple[subprocess.Popen, str]:
    """Start fieldvault with the deployment's gunicorn.conf.py; return it and its URL."""
    port = free_port()
    env = {**os.environ, 'FIELDVAULT_COUCHDB_URL': couch_url, 'FIELDVAULT_DB_PREFIX': prefix,
           'FIELDVAULT_ORG': ORG, 'FIELDVAULT_LOG_LEVEL': 'WARNING',
           'FIELDVAULT_PASSWORD_HASH_MEMORY_KIB': '1024',
           'FIELDVAULT_PASSWORD_HASH_ITERATIONS': '1'}
    if worker_class:
        env['FIELDVAULT_WEB_WORKER_CLASS'] = worker_class
    log = open(workdir / 'gunicorn.log', 'wb')  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [sys.executable, '-m', 'gunicorn', '--config', 'gunicorn.conf.py',
         '--bind', f'127.0.0.1:{port}', 'service.app:create_app()'],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + '/healthz', timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError('gunicorn did not start')


class Hostile:
    """One enrolled device (and an anonymous client) sending every attack in a loop.

    Args:
        url: The service.
        creds: The hostile device's credentials.
        foreign: ``(id, rev)`` of another worker's stored record.
        envelope: A valid envelope of the hostile device (sent with extras).
    """

    def __init__(self, url: str, creds: dict, foreign: tuple[str, str], envelope: dict,
                 skip: set[str]) -> None:
        self._url = url
        self._auth = (creds['device_id'], creds['secret'])
        self._foreign = foreign
        self._envelope = envelope
        self.answers: dict[str, collections.Counter] = collections.defaultdict(
            collections.Counter)
        self._lock = threading.Lock()
        self.attacks = [(name, attack) for name, attack in self._all() if name not in skip]

    def _all(self):
        sync = '/sync/records'
        crash = {'new_edits': False, 'docs': [{
            '_id': 'contact:00000000-0000-4000-8000-000000000001', '_deleted': True,
            '_rev': '1-abc', '_revisions': {'start': 'x', 'ids': 5}}]}
        foreign_id, foreign_rev = self._foreign
        rkid = uuid.uuid4().hex
        return [
            ('longpoll_heartbeat', lambda c: c.get(
                sync + '/_changes', params={'feed': 'longpoll', 'since': 'now',
                                            'heartbeat': '10000'})),
            ('empty_bulk_get', lambda c: c.post(sync + '/_bulk_get', json={'docs': []})),
            ('bad_revisions_push', lambda c: c.post(sync + '/_bulk_docs', json=crash)),
            ('refusal_amplification', lambda c: c.post(sync + '/_bulk_docs',
                                                       json={'docs': [{}] * 500})),
            ('tombstone_plaintext', lambda c: c.post(sync + '/_bulk_docs', json={'docs': [{
                '_id': f'contact:{uuid.uuid4()}', '_deleted': True, 'notes': 'Jane Doe'}]})),
            ('envelope_shaped_plaintext', lambda c: c.post(sync + '/_bulk_docs', json={'docs': [{
                '_id': f'rk:{rkid}', 'type': 'rk', 'client_name': 'Jane Doe'}]})),
            ('envelope_attachments', lambda c: c.post(sync + '/_bulk_docs', json={'docs': [dict(
                self._envelope, _attachments={'x': {'content_type': 'text/plain',
                                                    'data': 'SmFuZSBEb2U='}})]})),
            ('envelope_rev_object', lambda c: c.post(sync + '/_bulk_docs', json={
                'new_edits': False, 'docs': [dict(self._envelope, _rev={'a': 1})]})),
            # httpx resolves a literal ``..`` in the URL itself; the encoded
            # forms reach the service as sent.
            ('dot_dot_id', lambda c: c.get('/sync/config/%2e%2e')),
            ('dot_id', lambda c: c.get('/sync/config/%2E')),
            ('foreign_open_revs', lambda c: c.get(f'{sync}/{foreign_id}',
                                                  params={'open_revs': 'all'})),
            ('foreign_bulk_get', lambda c: c.post(sync + '/_bulk_get', json={
                'docs': [{'id': foreign_id, 'rev': foreign_rev}]})),
            ('bad_params', lambda c: c.get(sync + '/_changes?limit=%C2%B2')),
            ('huge_heartbeat', lambda c: c.get(sync + '/_changes', params={
                'feed': 'longpoll', 'since': '0', 'heartbeat': '99999999999999999999'})),
            ('nan_local', lambda c: c.put(sync + '/_local/x', content=b'{"a":NaN,"b":1e999}',
                                          headers={'Content-Type': 'application/json'})),
            ('login_parallel', lambda c: c.post('/auth/login', auth=None, json={
                'username': 'bench-admin', 'password': 'not the password'})),
            ('login_surrogate', lambda c: c.post('/auth/login', auth=None, content=(
                b'{"username":"\\ud800","password":"x"}'),
                headers={'Content-Type': 'application/json'})),
        ]

    def run(self, stop: threading.Event, offset: int) -> None:
        """Send the attacks in turn until ``stop`` is set."""
        with httpx.Client(base_url=self._url, auth=self._auth, timeout=60) as client:
            index = offset
            while not stop.is_set():
                name, attack = self.attacks[index % len(self.attacks)]
                index += 1
                try:
                    answer = f'{attack(client).status_code}'
                except httpx.HTTPError as ex:
                    answer = type(ex).__name__
                with self._lock:
                    self.answers[name][answer] += 1
                if answer == '429':
                    # A well-behaved client would wait Retry-After; a hostile
                    # one does not, but a spin loop would only measure this
                    # process's CPU.
                    time.sleep(0.05)


def _sample_health(url: str, stop: threading.Event, latencies: list[float],
                   failures: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                status = client.get('/healthz').status_code
                if status != 200:
                    failures.append(str(status))
            except httpx.HTTPError as ex:
                failures.append(type(ex).__name__)
            latencies.append(time.perf_counter() - started)
            stop.wait(0.2)


def _progress(message: str) -> None:
    print(f'[{time.strftime("%H:%M:%S")}] {message}', file=sys.stderr, flush=True)


def _drain(services, workdir: pathlib.Path, args) -> float:
    """Wait until the server holds every captured record (or ``--drain`` passes).

    Returns:
        Seconds the drain took.
    """
    started = time.monotonic()
    while time.monotonic() - started < args.drain:
        captured = []
        for path in workdir.glob('status-*.json'):
            try:
                captured += [doc_id for ids in json.loads(path.read_text())['captured']
                             for doc_id in ids]
            except (OSError, ValueError):
                continue
        if captured and len(_stored_ids(services, captured)) == len(captured):
            break
        time.sleep(2)
    return round(time.monotonic() - started, 1)


def tablet_specs(url: str, services, devices, org_keys, workdir: pathlib.Path, count: int,
                 captures_each: int) -> list[dict]:
    """Enroll ``count`` workers' tablets and seal the records each will capture."""
    tablets = []
    for index in range(count):
        worker = f'w-fleet-{index}'
        creds = _enroll(url, services, devices, worker)
        captures = [list(sealed_contact(worker, ORG, manifest_body=org_keys.body))
                    for _ in range(captures_each)]
        tablets.append({'name': worker, 'dir': str(workdir / f'tablet-{index}'),
                        'auth': {'username': creds['device_id'], 'password': creds['secret']},
                        'captures': captures})
    return tablets


def start_tablets(url: str, tablets: list[dict], workdir: pathlib.Path,
                  args) -> tuple[list[subprocess.Popen], pathlib.Path]:
    """Start the node processes (``--per-process`` tablets each) that run the tablets.

    Returns:
        The processes, and the file whose creation tells them to stop.
    """
    processes = []
    stop_file = workdir / 'STOP'
    for start in range(0, len(tablets), args.per_process):
        path = workdir / f'fleet-{start}.json'
        path.write_text(json.dumps({
            'url': url + '/sync/', 'capture_seconds': args.seconds,
            'capture_every_ms': int(args.capture_every * 1000), 'drain_seconds': args.drain,
            'status': str(workdir / f'status-{start}.json'), 'stop': str(stop_file),
            'tablets': tablets[start:start + args.per_process]}))
        processes.append(subprocess.Popen(['node', str(FLEET), str(path)], cwd=ROOT,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    return processes, stop_file


def tablet_outputs(processes: list[subprocess.Popen], stop_file: pathlib.Path,
                   args) -> list[dict]:
    """Tell the tablets' processes to stop and return what each reported."""
    stop_file.touch()
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=args.drain + 300)
        if not out.strip():
            raise RuntimeError(f'a node process failed: {err.decode()[-2000:]}')
        outputs.append(json.loads(out.decode().strip().splitlines()[-1]))
    return outputs


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def _stored_ids(services, ids: list[str]) -> set[str]:
    found = set()
    for start in range(0, len(ids), 500):
        rows = services.couch.all_docs(services.db('records'), keys=ids[start:start + 500])
        found.update(row['id'] for row in rows
                     if isinstance(row.get('value'), dict) and not row['value'].get('deleted'))
    return found


def run(args) -> dict:
    """Run the bench once and return its figures."""
    workdir = pathlib.Path(tempfile.mkdtemp(prefix='fv-hostile-'))
    couch = EmbeddedDB(free_port(), workdir / 'db').start()
    processes: list[subprocess.Popen] = []
    gunicorn = None
    try:
        prefix = f'h{uuid.uuid4().hex[:8]}_'
        config = Config(couchdb_url=couch.url, db_prefix=prefix, org=ORG,
                        password_hash_memory_kib=1024, password_hash_iterations=1)
        services = build_services(config)
        ensure_databases(services)
        gunicorn, url = _gunicorn(couch.url, prefix, workdir, args.worker_class)
        _progress('service up; enrolling tablets and sealing their captures')
        org_keys = OrgKeys()
        org_keys.publish(url, services)
        devices = Devices(services.couch, services.db('directory'), services.db('config'))
        captures_each = math.ceil(args.seconds / args.capture_every) + 1
        tablets = tablet_specs(url, services, devices, org_keys, workdir, args.tablets,
                               captures_each)
        hostile_creds = _enroll(url, services, devices, 'w-hostile')
        foreign, _ = sealed_contact('w-fleet-0', ORG, manifest_body=org_keys.body)
        foreign_rev = services.couch.put(services.db('records'), foreign)
        _own, envelope = sealed_contact('w-hostile', ORG, manifest_body=org_keys.body)
        hostile = Hostile(url, hostile_creds, (foreign['_id'], foreign_rev), envelope,
                          set(filter(None, args.skip.split(','))))

        started, stop_file = start_tablets(url, tablets, workdir, args)
        processes += started
        _progress(f'{len(tablets)} tablets started; attacking for {args.seconds} s')
        stop = threading.Event()
        latencies: list[float] = []
        failures: list[str] = []
        threads = [threading.Thread(target=_sample_health, args=(url, stop, latencies, failures),
                                    daemon=True)]
        threads += [threading.Thread(target=hostile.run, args=(stop, index), daemon=True)
                    for index in range(args.hostile_threads)]
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        _progress(f'attack over; tablets drain for at most {args.drain} s')
        drained = _drain(services, workdir, args)
        outputs = tablet_outputs(processes, stop_file, args)
        states = [state for output in outputs for state in output['tablets']]
        captured = [doc_id for state in states for doc_id in state['captured']]
        try:
            stored = _stored_ids(services, captured)
        except DatabaseUnavailable:
            raise RuntimeError('the database is gone after the run: an attack crashed it '
                               f'(pouchdb-server exit code {couch.process.poll()})') from None
        pending = set(captured) - stored
        converged = sum(1 for state in states if set(state['captured']) <= stored)
        kinds: collections.Counter = collections.Counter()
        for state in states:
            kinds.update(state['error_kinds'])
        return {
            'tablets': len(states), 'processes': len(processes), 'seconds': args.seconds,
            'worker_class': args.worker_class or Config.from_env().web_worker_class,
            'healthz': {'samples': len(latencies),
                        'p50_ms': round(statistics.median(latencies) * 1000, 1),
                        'p99_ms': round(_percentile(latencies, 0.99) * 1000, 1),
                        'max_ms': round(max(latencies) * 1000, 1), 'failures': len(failures)},
            'tablet_errors': sum(state['errors'] for state in states),
            'tablet_error_kinds': dict(kinds),
            'tablets_with_errors': sum(1 for state in states if state['errors']),
            'denied': sum(state['denied'] for state in states),
            'converged': converged, 'drain_seconds': drained,
            'captured': len(captured), 'stored': len(stored), 'pending': len(pending),
            # Lost: captured, not on the server, and gone from the tablet too.
            'lost': sorted(doc_id for state in states for doc_id in state['gone']
                           if doc_id not in stored),
            'hostile': {name: dict(counter) for name, counter in hostile.answers.items()},
        }
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        if gunicorn is not None:
            gunicorn.terminate()
            try:
                gunicorn.wait(20)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
        couch.stop()
        remove_workdir(workdir)



def remove_workdir(workdir: pathlib.Path) -> None:
    """Remove a run's files (hundreds of MB at 500 tablets); keep them when it failed.

    Call from the run's ``finally``: a run that raised keeps its service log
    and tablet files for reading, and says where.
    """
    if sys.exc_info()[0] is None:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f'the run failed; its logs and files are in {workdir}', file=sys.stderr)

def _report(figures: dict) -> None:
    health = figures['healthz']
    print(f'hostile bench: {figures["tablets"]} tablets in {figures["processes"]} node '
          f'processes, {figures["seconds"]} s under attack, gunicorn.conf.py with '
          f'{figures["worker_class"]} workers')
    print(f'/healthz during the attack: {health["samples"]} samples, p50 {health["p50_ms"]} ms, '
          f'p99 {health["p99_ms"]} ms, max {health["max_ms"]} ms, failures {health["failures"]}')
    print(f'tablets: {figures["tablet_errors"]} sync errors on {figures["tablets_with_errors"]} '
          f'tablets {figures["tablet_error_kinds"]}, {figures["denied"]} denied, '
          f'{figures["converged"]}/{figures["tablets"]} converged (every captured record '
          f'stored) {figures["drain_seconds"]} s after the attack')
    print(f'records: captured {figures["captured"]}, stored {figures["stored"]}, pending on '
          f'tablets {figures["pending"]}, lost {len(figures["lost"])}')
    print('hostile device, answers per attack:')
    for name, answers in sorted(figures['hostile'].items()):
        errors = sum(count for status, count in answers.items()
                     if not status.isdigit() or int(status) >= 500)
        print(f'  {name:28s} {dict(sorted(answers.items()))}  5xx/failed: {errors}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=int, default=120, help='seconds of capture and attack')
    parser.add_argument('--tablets', type=int, default=50)
    parser.add_argument('--per-process', type=int, default=10, help='tablets per node process')
    parser.add_argument('--capture-every', type=float, default=10.0,
                        help='seconds between two captures of one tablet')
    parser.add_argument('--drain', type=int, default=120,
                        help='most seconds the tablets get to converge after the attack')
    parser.add_argument('--worker-class', default=None,
                        help='gunicorn worker class to compare (default: the deployment\'s, '
                             'from gunicorn.conf.py)')
    parser.add_argument('--hostile-threads', type=int, default=24)
    parser.add_argument('--skip', default='', help='comma-separated attack names to leave out')
    parser.add_argument('--json', action='store_true', help='print the figures as JSON too')
    args = parser.parse_args()
    figures = run(args)
    _report(figures)
    if args.json:
        print(json.dumps(figures))


if __name__ == '__main__':
    main()
