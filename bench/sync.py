"""Benchmark of the sync gateway.

1. Push throughput: a PouchDB 9 tablet (node) pushes N sealed records through
   the gateway, and the same N straight into the same pouchdb-server, in one
   run. Prints docs/s of each and the ratio (goal >= 0.8).
2. Incremental pull: one device pulls 10 new changes of its own while the
   records database holds SMALL vs LARGE records of other workers (loaded
   with ``_bulk_docs`` directly), five times each. Prints the medians and
   their ratio (goal <= 1.5).

Every gateway deployment runs as deployed: an admin has pinned an org signer
and published a key manifest through the API, and the payload is sealed to
that manifest, so the gateway applies its key policy to every envelope.

usage: python -m bench.sync [--records 5000] [--small 1000] [--large 100000]
                            [--rounds 3] [--push-only]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import tempfile
import time
import uuid

import httpx

import keys
from service.app import build_services
from service.cli import ensure_databases
from service.config import Config
from service.embedded_db import EmbeddedDB, free_port
from sync.devices import Devices
from tests.integration.conftest import ORG, TABLET, Service
from tests.integration.records import sealed_contact


def _cpu_seconds(pid: int | None) -> float | None:
    """Return the CPU time (user + system) a process has used, or None off Linux."""
    if pid is None:
        return None
    try:
        with open(f'/proc/{pid}/stat', encoding='ascii') as stat:
            fields = stat.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3 of stat(5), utime 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def _tree_cpu_seconds(pid: int | None) -> float | None:
    """Return the CPU time of a process and its live children (gunicorn's workers)."""
    if pid is None:
        return None
    try:
        children = pathlib.Path(f'/proc/{pid}/task/{pid}/children').read_text().split()
    except OSError:
        return None
    times = [_cpu_seconds(pid)] + [_cpu_seconds(int(child)) for child in children]
    return sum(value for value in times if value is not None)


def _tablet(workdir: pathlib.Path, config: dict) -> dict:
    path = workdir / f'bench-{time.time_ns()}.json'
    path.write_text(json.dumps(config))
    out = subprocess.run(['node', str(TABLET), str(path)], capture_output=True, check=True,
                         timeout=3600).stdout
    result = json.loads(out.decode().strip().splitlines()[-1])
    if not result.get('ok'):
        raise RuntimeError(f'tablet failed: {result}')
    return result


class OrgKeys:
    """One org signing key and key manifest, published in every deployment.

    A deployment without a manifest is not what tablets meet: its gateway
    has no key policy to apply to envelopes, and reads for the missing
    manifest on every envelope batch. So each bench deployment pins this
    signer and publishes this manifest through the admin API, and the
    payload is sealed to it, as a tablet seals to the manifest it fetched.
    """

    def __init__(self) -> None:
        self.signer = keys.SigningKey.generate()
        org_key = keys.OrgKeyPair.generate('oek-bench')
        self.body = keys.build_manifest(ORG, 1, [org_key.manifest_entry('active')])

    def publish(self, url: str, services) -> None:
        """Pin the signer and publish the manifest as an admin of ``url``."""
        services.accounts.create_user('bench-admin', _PASSWORD, ['admin'])
        token = httpx.post(url + '/auth/login', timeout=10, json={
            'username': 'bench-admin', 'password': _PASSWORD}).json()['token']
        headers = {'Authorization': f'Bearer {token}'}
        httpx.put(url + '/keys/signer', headers=headers, timeout=10,
                  json={'public': self.signer.public_b64()}).raise_for_status()
        httpx.put(url + '/keys/manifest', headers=headers, timeout=10, json={
            'signed': keys.sign_manifest(self.body, self.signer)}).raise_for_status()


_PASSWORD = 'correct horse battery staple'


def _sealed(worker: str, count: int, manifest_body: dict | None = None,
            ) -> tuple[list[dict], list[dict]]:
    docs, envelopes = [], []
    for _index in range(count):
        doc, envelope = sealed_contact(worker, ORG, manifest_body=manifest_body)
        docs.append(doc)
        envelopes.append(envelope)
    return docs, envelopes


def _load_others(services, count: int, batch: int = 5000) -> None:
    """Write ``count`` records of other workers straight into the database."""
    template, _envelope = sealed_contact('w-other', ORG)
    for start in range(0, count, batch):
        docs = []
        for index in range(start, min(start + batch, count)):
            doc = dict(template, _id=f'contact:{uuid.uuid4()}', owner=f'w-other-{index % 50}')
            docs.append(doc)
        services.couch.bulk_docs(services.db('records'), docs)


def _enroll(stack_url: str, services, devices: Devices, worker: str) -> dict:
    try:
        services.accounts.create_user(worker, _PASSWORD, ['worker'])
    except Exception:  # noqa: BLE001 - exists
        pass
    code = devices.register(worker)['enrollment_code']
    return httpx.post(stack_url + '/devices/enroll', json={'code': code}, timeout=10).json()


def _deployment(couch_url: str, workdir: pathlib.Path, org_keys: OrgKeys):
    prefix = f'b{uuid.uuid4().hex[:8]}_'
    config = Config(couchdb_url=couch_url, db_prefix=prefix, org=ORG,
                    password_hash_memory_kib=1024, password_hash_iterations=1)
    services = build_services(config)
    ensure_databases(services)
    service = Service(couch_url, prefix, workdir).start()
    org_keys.publish(service.url, services)
    devices = Devices(services.couch, services.db('directory'), services.db('config'))
    return services, service, devices


def bench_push(couch_url: str, workdir: pathlib.Path, org_keys: OrgKeys, count: int,
               rounds: int = 3, db_pid: int | None = None) -> dict:
    """Push the same payload through the gateway and straight in, ``rounds`` times.

    Rounds alternate which path goes first (the machine is shared and
    pouchdb-server warms up), and the figures are medians of the rounds.
    Every push goes from a fresh tablet into fresh databases: the direct
    push into a new database, the gateway push into a new deployment (new
    database prefix, its own gunicorn and device). Reusing a deleted and
    re-created database name is not the same: pouchdb-server answered
    later rounds on it ~1.5x slower, which the direct path, writing to new
    names, never paid. Both paths talk to the same single pouchdb-server
    process; the gateway runs as the integration tests run it (gunicorn
    with the deployment's ``gunicorn.conf.py``, one worker; a PouchDB push
    sends one request at a time, so more workers would not help).

    With ``db_pid`` (the pouchdb-server process), it also reports the CPU
    time the database used during each push (``/proc/<pid>/stat``), per
    1,000 records against the direct push, the gateway's own CPU time
    (gunicorn's arbiter and workers) against the database's, and an upper
    bound on
    the ratio that no gateway code could beat: a push is a chain of
    requests, each waiting for the one before, so the direct path's time is
    the database's work plus everything else in the chain (the tablet,
    loopback); through the gateway the database's work grows to what the
    gateway's rules make it do, the rest of the chain is at least as long,
    and the gateway's own Python comes on top. So
    ``ratio <= direct_time / (direct_time - direct_db_cpu + gateway_db_cpu)``.
    """
    docs, envelopes = _sealed('w-bench', count, org_keys.body)
    payload = docs + envelopes
    gw_rates, direct_rates, ratios, bounds = [], [], [], []
    db_cpu: dict[str, list[float]] = {'gateway': [], 'direct': []}
    gateway_cpu: list[float] = []

    def timed_tablet(path: str, config: dict, service_pid: int | None = None) -> float:
        """Run the tablet; return its push time in seconds, note the CPU spent."""
        before = _cpu_seconds(db_pid)
        service_before = _tree_cpu_seconds(service_pid)
        result = _tablet(workdir, config)
        after = _cpu_seconds(db_pid)
        service_after = _tree_cpu_seconds(service_pid)
        if before is not None and after is not None:
            db_cpu[path].append(after - before)
        if service_before is not None and service_after is not None:
            gateway_cpu.append(service_after - service_before)
        return result['elapsed_ms'] / 1000

    for round_no in range(rounds):
        def gateway_push():
            services, service, devices = _deployment(couch_url, workdir, org_keys)
            try:
                creds = _enroll(service.url, services, devices, 'w-bench')
                return len(payload) / timed_tablet('gateway', {
                    'dir': str(workdir / f'push-gw-{round_no}'), 'url': service.url + '/sync/',
                    'db': 'records', 'action': 'push', 'docs': payload,
                    'auth': {'username': creds['device_id'], 'password': creds['secret']}},
                    service.process.pid)
            finally:
                service.stop()
                services.couch.close()

        def direct_push():
            direct_db = f'bench_direct_{uuid.uuid4().hex[:8]}'
            client = httpx.Client(base_url=couch_url)
            client.put(f'/{direct_db}').raise_for_status()
            client.close()
            return len(payload) / timed_tablet('direct', {
                'dir': str(workdir / f'push-direct-{round_no}'), 'url': couch_url + '/',
                'db': direct_db, 'action': 'push', 'docs': payload})

        if round_no % 2:
            direct_rate = direct_push()
            gw_rate = gateway_push()
        else:
            gw_rate = gateway_push()
            direct_rate = direct_push()
        gw_rates.append(gw_rate)
        direct_rates.append(direct_rate)
        ratios.append(gw_rate / direct_rate)
        if len(db_cpu['direct']) == len(db_cpu['gateway']) == round_no + 1:
            direct_time = len(payload) / direct_rate
            bounds.append(direct_time / (direct_time - db_cpu['direct'][-1]
                                         + db_cpu['gateway'][-1]))
    cpu = ({path: round(statistics.median(values), 2) for path, values in db_cpu.items()}
           if bounds else None)
    per_k = 1000 / count
    cpu_figures = None
    if bounds:
        # Per round, then the median: each round's figures come from the
        # same minutes of the shared machine.
        cpu_figures = {
            'db_per_1000': {path: round(statistics.median(values) * per_k, 3)
                            for path, values in db_cpu.items()},
            'db_ratio': round(statistics.median(
                gw / direct for gw, direct in zip(db_cpu['gateway'], db_cpu['direct'])), 3),
            'db_ratios': [round(gw / direct, 3)
                          for gw, direct in zip(db_cpu['gateway'], db_cpu['direct'])],
        }
        if len(gateway_cpu) == len(db_cpu['gateway']):
            cpu_figures['gateway_per_1000'] = round(statistics.median(gateway_cpu) * per_k, 3)
            cpu_figures['gateway_vs_db'] = round(statistics.median(
                gw / db for gw, db in zip(gateway_cpu, db_cpu['gateway'])), 3)
            cpu_figures['gateway_vs_db_rounds'] = [
                round(gw / db, 3) for gw, db in zip(gateway_cpu, db_cpu['gateway'])]
    return {'documents': len(payload), 'records': count, 'rounds': rounds, 'db_cpu_s': cpu,
            'cpu': cpu_figures,
            'bound': round(statistics.median(bounds), 3) if bounds else None,
            'gateway_docs_per_s': round(statistics.median(gw_rates), 1),
            'direct_docs_per_s': round(statistics.median(direct_rates), 1),
            'ratio': round(statistics.median(ratios), 3),
            'ratios': [round(ratio, 3) for ratio in ratios]}


def bench_incremental_pull(couch_url: str, workdir: pathlib.Path, org_keys: OrgKeys,
                           others: int, repeats: int = 5) -> float:
    """Median time of ``repeats`` incremental pulls of 10 new own changes.

    The device first pulls everything (its checkpoint then lies past the
    ``others`` records of other workers); each repeat writes 10 new records
    of its worker straight into the database and times one pull by the
    same tablet (inside node, around ``replicate.from``).
    """
    services, service, devices = _deployment(couch_url, workdir, org_keys)
    try:
        creds = _enroll(service.url, services, devices, 'w-pull')
        auth = {'username': creds['device_id'], 'password': creds['secret']}
        _load_others(services, others)
        tablet_dir = str(workdir / f'pull-{others}')
        base = {'dir': tablet_dir, 'url': service.url + '/sync/', 'db': 'records',
                'action': 'pull', 'auth': auth}
        _tablet(workdir, base)  # initial pull: sets the checkpoint past the others
        times = []
        for _repeat in range(repeats):
            services.couch.bulk_docs(services.db('records'),
                                     _sealed('w-pull', 10, org_keys.body)[0])
            times.append(_tablet(workdir, base)['elapsed_ms'])
        return statistics.median(times)
    finally:
        service.stop()
        services.couch.close()


def _report_push(push: dict) -> None:
    print(f'push {push["documents"]} docs (records + envelopes), median of '
          f'{push["rounds"]} alternating rounds: gateway {push["gateway_docs_per_s"]} docs/s, '
          f'direct {push["direct_docs_per_s"]} docs/s, ratio {push["ratio"]} '
          f'(rounds {push["ratios"]}; goal >= 0.8)', flush=True)
    if push['db_cpu_s']:
        print(f'pouchdb-server CPU per push (median): gateway {push["db_cpu_s"]["gateway"]} s, '
              f'direct {push["db_cpu_s"]["direct"]} s; so even a gateway whose own code '
              f'took no time could reach at most ratio {push["bound"]}', flush=True)
    cpu = push.get('cpu')
    if cpu:
        print(f'database CPU-s per 1,000 records (each with its envelope): gateway '
              f'{cpu["db_per_1000"]["gateway"]}, direct {cpu["db_per_1000"]["direct"]}; '
              f'ratio {cpu["db_ratio"]} (rounds {cpu["db_ratios"]}; goal <= 1.2)', flush=True)
        if 'gateway_vs_db' in cpu:
            print(f'gateway CPU-s per 1,000 records {cpu["gateway_per_1000"]} '
                  f'(gunicorn arbiter + workers); gateway CPU / database CPU '
                  f'{cpu["gateway_vs_db"]} (rounds {cpu["gateway_vs_db_rounds"]}; '
                  f'goal <= 1.0)', flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--records', type=int, default=5000)
    parser.add_argument('--small', type=int, default=1000)
    parser.add_argument('--large', type=int, default=100_000)
    parser.add_argument('--rounds', type=int, default=3,
                        help='push rounds, alternating which path goes first (medians)')
    parser.add_argument('--push-only', action='store_true', help='skip the pull benchmark')
    parser.add_argument('--pull-only', action='store_true', help='skip the push benchmark')
    parser.add_argument('--couchdb-url', default=None,
                        help='use this server instead of starting pouchdb-server')
    args = parser.parse_args()
    print(f'load average at the start: {" ".join(f"{v:.2f}" for v in os.getloadavg())}',
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp)
        server = None
        couch_url = args.couchdb_url
        if couch_url is None:
            server = EmbeddedDB(free_port(), workdir / 'pouchdb').start()
            couch_url = server.url
        org_keys = OrgKeys()
        try:
            if not args.pull_only:
                _report_push(bench_push(couch_url, workdir, org_keys, args.records, args.rounds,
                                        db_pid=server.process.pid if server else None))
            if not args.push_only:
                small = bench_incremental_pull(couch_url, workdir, org_keys, args.small)
                large = bench_incremental_pull(couch_url, workdir, org_keys, args.large)
                print(f'incremental pull of 10 changes (median of 5 pulls each): {small:.0f} '
                      f'ms with {args.small} other records, {large:.0f} ms with {args.large}; '
                      f'ratio {large / small:.2f} (goal <= 1.5)')
        finally:
            if server is not None:
                server.stop()
            print(f'load average at the end: {" ".join(f"{v:.2f}" for v in os.getloadavg())}',
                  flush=True)


if __name__ == '__main__':
    main()
