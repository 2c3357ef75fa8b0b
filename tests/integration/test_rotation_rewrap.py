"""Rewrap under gunicorn, with the CLI as a subprocess killed by SIGKILL at
three random points, then run again: every record opens, and no envelope is
lost or duplicated."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import ORG, ROOT
from tests.support.lifecycle import KEY_PASS, Ceremony, day, load_records, opens, sealed_records

pytestmark = pytest.mark.integration

RECORDS = 1500


def _rewrap_process(home: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, '-m', 'fieldvault', 'keys', '--home', home, 'rewrap', '--from',
         'oek-1', '--to', 'oek-2', '--page-size', '25', '--no-progress'],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, 'PYTHONUNBUFFERED': '1'})


def test_rewrap_killed_three_times_then_rerun_loses_nothing(stack):
    services = stack.services
    ceremony = Ceremony(stack.service.url, stack.tmp_path, ORG,
                        lambda name, roles, team: services.accounts.create_user(
                            name, 'correct horse battery staple', list(roles), team=team))
    ceremony.setup()
    items = sealed_records(ORG, ceremony.manifest(), 'worker-1', RECORDS)
    load_records(services.couch, services.db('records'), services.db('keyvault'), items)
    ceremony.admin('rotate', '--kid', 'oek-2', '--accept-until', day(14))
    ids = sorted(envelope['_id'] for _p, _s, envelope in items)
    assert ceremony.census() == {'oek-1': RECORDS}

    # Seeded, so a failing run's kill delays can be replayed (the seed is in
    # every assertion message below).
    seed = int(os.environ.get('FIELDVAULT_TEST_SEED', '20261202'))
    rng = random.Random(seed)
    home = ceremony.homes['sup-1']
    progress = []
    for _kill in range(3):
        process = _rewrap_process(home)
        process.stdin.write(f'{KEY_PASS}\n'.encode())
        process.stdin.flush()
        # Wait until this run has started writing, then kill at a random moment.
        start_count = ceremony.census().get('oek-2', 0)
        deadline = time.monotonic() + 60
        while ceremony.census().get('oek-2', 0) == start_count:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        census = ceremony.census()
        # Nothing lost, nothing duplicated, at every kill point.
        assert sum(census.values()) == RECORDS, (seed, census)
        progress.append(census.get('oek-2', 0))
        assert 0 < census.get('oek-2', 0) < RECORDS, (seed, census)
    assert progress == sorted(progress), (seed, progress)

    process = _rewrap_process(home)
    out, err = process.communicate(f'{KEY_PASS}\n'.encode(), timeout=600)
    assert process.returncode == 0, err.decode()[-2000:]
    assert 'census after: oek-2=1500' in out.decode()
    assert ceremony.census() == {'oek-2': RECORDS}

    stored = [row['doc'] for row in services.couch.all_docs(
        services.db('keyvault'), include_docs=True) if row['id'].startswith('rk:')]
    assert sorted(doc['_id'] for doc in stored) == ids
    by_id = {doc['_id']: doc for doc in stored}
    keyring = ceremony.keyring('adv-1')
    for plain, sealed, envelope in items:
        document = services.couch.get(services.db('records'), sealed['_id'])
        assert document['_rev'].startswith('1-')  # records were never touched
        opened = opens(document, [by_id[envelope['_id']]], keyring, ORG)
        assert opened['notes'] == plain['notes']
    # The audit log has the runs: three started and killed, one finished.
    runs = [row['doc']['details']['phase'] for row in services.couch.all_docs(
        services.db('audit'), include_docs=True)
        if row['id'].startswith('event:') and row['doc']['kind'] == 'rewrap_run']
    assert runs.count('started') == 4 and runs.count('finished') == 1
