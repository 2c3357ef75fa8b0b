"""Fleet benchmark: hundreds of live PouchDB 9 tablets on the default settings.

For each fleet size in ``--tablets`` (side by side in one run), starts a
fresh pouchdb-server and fieldvault under gunicorn with the deployment's own
``gunicorn.conf.py`` (default worker class and worker count, unless
``--worker-class`` names another to compare), enrolls the tablets and runs
them as real PouchDB 9 tablets in node processes (``bench/fleet.mjs``), each
live-syncing records and live-pulling config (``sync({live: true, retry:
true})``) and capturing a sealed record (with its envelope) every
``--capture-every`` seconds for ``--seconds``. Then the tablets keep syncing
until the server holds every captured record or ``--drain`` seconds pass.

Prints per size: records captured vs stored (and lost: neither stored nor on
the tablet), tablets converged, push (``_bulk_docs``) and long-poll latency
p50/p99 as the tablets saw them, ``/healthz`` p99 during the run, the
service's peak RSS (gunicorn arbiter and workers), the tablets' sync errors,
and the host's load average. Only loopback traffic. A bench, not a test:
nothing here passes or fails on time.

usage: python -m bench.fleet [--tablets 100,300] [--seconds 60] [--per-process 25]
                             [--worker-class gevent|gthread]
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import httpx

from bench.hostile import (
    _drain, _gunicorn, _percentile, _progress, _sample_health, _stored_ids, remove_workdir,
    start_tablets, tablet_outputs, tablet_specs)
from bench.sync import OrgKeys, _cpu_seconds, _tree_cpu_seconds
from service.app import build_services
from service.cli import ensure_databases
from service.config import Config
from service.embedded_db import EmbeddedDB, free_port
from sync.devices import Devices
from tests.integration.conftest import ORG



def _rss_mib(pid: int) -> float:
    """Return the RSS of a process and its children (MiB), from /proc."""
    total = 0
    pids = [pid]
    try:
        children = pathlib.Path(f'/proc/{pid}/task/{pid}/children').read_text().split()
        pids += [int(child) for child in children]
    except OSError:
        pass
    for each in pids:
        try:
            for line in pathlib.Path(f'/proc/{each}/status').read_text().splitlines():
                if line.startswith('VmRSS:'):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _sample_rss(pid: int, stop: threading.Event, peak: list[float]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], _rss_mib(pid))
        stop.wait(1.0)


def _cpu_snapshot(service_pid: int, db_pid: int, clients: list[int]) -> dict[str, float]:
    """Return the CPU seconds used so far by the service, the database and the tablets."""
    return {'service': _tree_cpu_seconds(service_pid) or 0.0,
            'database': _cpu_seconds(db_pid) or 0.0,
            'tablets': sum(_cpu_seconds(pid) or 0.0 for pid in clients),
            'wall': time.monotonic()}


def _ms(values: list[float], fraction: float) -> float | None:
    return round(_percentile(values, fraction), 1) if values else None


def run_one(tablet_count: int, args) -> dict:
    """Run one fleet of ``tablet_count`` tablets and return its figures."""
    workdir = pathlib.Path(tempfile.mkdtemp(prefix='fv-fleet-'))
    couch = EmbeddedDB(free_port(), workdir / 'db').start()
    processes: list[subprocess.Popen] = []
    gunicorn = None
    try:
        prefix = f'f{uuid.uuid4().hex[:8]}_'
        # Workers never log in here: a cheap password hash keeps enrollment short.
        config = Config(couchdb_url=couch.url, db_prefix=prefix, org=ORG,
                        password_hash_memory_kib=1024, password_hash_iterations=1)
        services = build_services(config)
        ensure_databases(services)
        gunicorn, url = _gunicorn(couch.url, prefix, workdir, args.worker_class)
        _progress(f'{tablet_count} tablets: service up; enrolling')
        org_keys = OrgKeys()
        org_keys.publish(url, services)
        devices = Devices(services.couch, services.db('directory'), services.db('config'))
        captures_each = math.ceil(args.seconds / args.capture_every) + 1
        tablets = tablet_specs(url, services, devices, org_keys, workdir, tablet_count,
                               captures_each)
        started, stop_file = start_tablets(url, tablets, workdir, args)
        processes += started
        _progress(f'{tablet_count} tablets started; capturing for {args.seconds} s')
        stop = threading.Event()
        latencies: list[float] = []
        failures: list[str] = []
        peak = [0.0]
        samplers = [threading.Thread(target=_sample_health, args=(url, stop, latencies, failures),
                                     daemon=True),
                    threading.Thread(target=_sample_rss, args=(gunicorn.pid, stop, peak),
                                     daemon=True)]
        for thread in samplers:
            thread.start()
        clients = [process.pid for process in processes]
        cpu_start = _cpu_snapshot(gunicorn.pid, couch.process.pid, clients)
        time.sleep(args.seconds)
        load = os.getloadavg()[0]
        _progress(f'capture over; tablets drain for at most {args.drain} s')
        drained = _drain(services, workdir, args)
        cpu_end = _cpu_snapshot(gunicorn.pid, couch.process.pid, clients)
        stop.set()
        for thread in samplers:
            thread.join(timeout=60)
        outputs = tablet_outputs(processes, stop_file, args)
        states = [state for output in outputs for state in output['tablets']]
        push = [ms for output in outputs for ms in output['timings']['push_ms']]
        longpoll = [ms for output in outputs for ms in output['timings']['longpoll_ms']]
        captured = [doc_id for state in states for doc_id in state['captured']]
        stored = _stored_ids(services, captured)
        kinds: collections.Counter = collections.Counter()
        for state in states:
            kinds.update(state['error_kinds'])
        wall = cpu_end['wall'] - cpu_start['wall']
        # CPU used during capture and drain, in cores (CPU-s per wall-s): the
        # machine has os.cpu_count() of them for everything.
        cores = {part: round((cpu_end[part] - cpu_start[part]) / wall, 2)
                 for part in ('service', 'database', 'tablets')}
        delays = [output.get('loop_delay_ms', {}) for output in outputs]
        return {
            'tablets': len(states), 'seconds': args.seconds,
            'worker_class': args.worker_class or config.web_worker_class,
            'workers': config.web_concurrency,
            'captured': len(captured), 'stored': len(stored),
            'lost': sum(1 for state in states for doc_id in state['gone']
                        if doc_id not in stored),
            'converged': sum(1 for state in states if set(state['captured']) <= stored),
            'drain_seconds': drained,
            'push_p50_ms': _ms(push, 0.5), 'push_p99_ms': _ms(push, 0.99), 'pushes': len(push),
            'longpoll_p50_ms': _ms(longpoll, 0.5), 'longpoll_p99_ms': _ms(longpoll, 0.99),
            'longpolls': len(longpoll),
            'healthz_p50_ms': round(statistics.median(latencies) * 1000, 1),
            'healthz_p99_ms': round(_percentile(latencies, 0.99) * 1000, 1),
            'healthz_failures': len(failures),
            'rss_peak_mib': round(peak[0], 1),
            'errors': sum(state['errors'] for state in states), 'error_kinds': dict(kinds),
            'load_1min': round(load, 2),
            'cores': cores, 'cpu_count': os.cpu_count(), 'node_processes': len(outputs),
            'loop_delay_p99_ms': round(max((d.get('p99', 0) for d in delays), default=0), 1),
            'loop_delay_max_ms': round(max((d.get('max', 0) for d in delays), default=0), 1),
        }
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        if gunicorn is not None:
            gunicorn.terminate()
            try:
                gunicorn.wait(30)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
        couch.stop()
        remove_workdir(workdir)


_ROWS = [
    ('worker class x workers', lambda f: f'{f["worker_class"]} x {f["workers"]}'),
    ('records captured / stored', lambda f: f'{f["captured"]} / {f["stored"]}'),
    ('records lost', lambda f: f['lost']),
    ('tablets converged', lambda f: f'{f["converged"]}/{f["tablets"]}'),
    ('drain after capture (s)', lambda f: f['drain_seconds']),
    ('push p50 / p99 (ms)', lambda f: f'{f["push_p50_ms"]} / {f["push_p99_ms"]}'),
    ('long-poll p50 / p99 (ms)', lambda f: f'{f["longpoll_p50_ms"]} / {f["longpoll_p99_ms"]}'),
    ('/healthz p50 / p99 (ms)', lambda f: f'{f["healthz_p50_ms"]} / {f["healthz_p99_ms"]}'),
    ('/healthz failures', lambda f: f['healthz_failures']),
    ('service peak RSS (MiB)', lambda f: f['rss_peak_mib']),
    ('tablet sync errors', lambda f: f'{f["errors"]} {f["error_kinds"] or ""}'.strip()),
    ('host load (1 min)', lambda f: f['load_1min']),
    ('CPU cores: service / db / tablets',
     lambda f: f'{f["cores"]["service"]} / {f["cores"]["database"]} / {f["cores"]["tablets"]}'),
    ('node processes (tablets each)',
     lambda f: f'{f["node_processes"]} ({math.ceil(f["tablets"] / f["node_processes"])})'),
    ('tablet event-loop delay p99 / max (ms)',
     lambda f: f'{f["loop_delay_p99_ms"]} / {f["loop_delay_max_ms"]}'),
]


def _report(runs: list[dict]) -> None:
    width = max(len(label) for label, _ in _ROWS) + 2
    print(f'fleet bench: {runs[0]["seconds"]} s of capture, gunicorn.conf.py defaults, '
          f'{runs[0]["cpu_count"]} CPU cores for service, database and tablets together')
    print(''.ljust(width) + ''.join(f'{str(f["tablets"]) + " tablets":>22}' for f in runs))
    for label, cell in _ROWS:
        print(label.ljust(width) + ''.join(f'{str(cell(f)):>22}' for f in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--tablets', default='100,300',
                        help='comma-separated fleet sizes, each run on a fresh stack')
    parser.add_argument('--seconds', type=int, default=60, help='seconds of capture')
    parser.add_argument('--per-process', type=int, default=25, help='tablets per node process')
    parser.add_argument('--capture-every', type=float, default=10.0,
                        help='seconds between two captures of one tablet')
    parser.add_argument('--drain', type=int, default=180,
                        help='most seconds the tablets get to converge after the capture')
    parser.add_argument('--worker-class', default=None,
                        help='override gunicorn.conf.py\'s worker class (to compare)')
    parser.add_argument('--json', action='store_true', help='print the figures as JSON too')
    args = parser.parse_args()
    runs = [run_one(int(count), args) for count in args.tablets.split(',')]
    _report(runs)
    if args.json:
        print(json.dumps(runs))


if __name__ == '__main__':
    main()
