"""Key rotation while two PouchDB 9 tablets sync live through the gateway.

Two workers' tablets keep syncing records (both ways) and pulling config the
whole time, while the admin rotates, a supervisor rewraps and the admin
retires the old key version, all through the real CLI against gunicorn.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import PASSWORD
from tests.integration.conftest import ORG
from tests.support.lifecycle import KEY_PASS, Ceremony, day, sealed_records

pytestmark = pytest.mark.integration

PER_BATCH = 10


def _wait_until(predicate, what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f'timed out waiting for {what}')


class LiveTablet:
    """A tablet process in 'feed' mode: the test drops documents into its inbox."""

    def __init__(self, stack, creds: dict, name: str) -> None:
        self.inbox = stack.tmp_path / f'inbox-{name}'
        self.inbox.mkdir()
        self.status_file = stack.tmp_path / f'status-{name}.json'
        self._batches = 0
        self.process = stack.tablet(creds, 'feed', name=name, background=True,
                                    inbox=str(self.inbox), status=str(self.status_file))

    def capture(self, items) -> None:
        """Save records and their envelopes on the tablet, as a worker would."""
        self._batches += 1
        docs = [doc for _plain, sealed, envelope in items for doc in (sealed, envelope)]
        target = self.inbox / f'{self._batches:04d}.json'
        (self.inbox / 'tmp').write_text(json.dumps(docs))
        (self.inbox / 'tmp').rename(target)

    def status(self) -> dict:
        if not self.status_file.exists():
            return {'ids': [], 'manifest_seq': None, 'denied': 0}
        return json.loads(self.status_file.read_text())

    def stop(self) -> dict:
        (self.inbox / 'STOP').write_text('')
        out, err = self.process.communicate(timeout=60)
        assert out, err.decode()[-2000:]
        return json.loads(out.decode().strip().splitlines()[-1])


def test_rotation_rewrap_retire_while_two_tablets_sync_live(stack, tmp_path):
    services = stack.services
    ceremony = Ceremony(stack.service.url, tmp_path, ORG,
                        lambda name, roles, team: services.accounts.create_user(
                            name, PASSWORD, roles, team=team))
    ceremony.setup(advocates=('adv-1',), supervisors=('sup-1',), workers=())
    for worker in ('w-alice', 'w-bob'):
        services.accounts.create_user(worker, PASSWORD, ['worker'], team='team-a')
    tablets = {worker: LiveTablet(stack, stack.enroll(worker), worker)
               for worker in ('w-alice', 'w-bob')}

    def stored(prefix: str = '') -> set[str]:
        return {row['id'] for row in services.couch.all_docs(services.db('records'))
                if row['id'].startswith(prefix)}

    # Before the rotation: both tablets capture records sealed to oek-1.
    v1 = ceremony.manifest()
    opened_later: list = []
    for worker, tablet in tablets.items():
        batch = sealed_records(ORG, v1, worker, PER_BATCH)
        tablet.capture(batch)
        opened_later += batch
    _wait_until(lambda: len(stored()) == 2 * PER_BATCH, 'the first batches')
    _wait_until(lambda: all(t.status()['manifest_seq'] == 1 for t in tablets.values()),
                'manifest seq 1 on both tablets')

    # Rotation while they sync; oek-1 stops accepting at once (accept_until passed).
    out = ceremony.admin('rotate', '--kid', 'oek-2', '--accept-until', day(-1)).output
    assert 'oek-2 active in manifest seq 2' in out
    _wait_until(lambda: all(t.status()['manifest_seq'] == 2 for t in tablets.values()),
                'the new manifest on both tablets (config sync)')
    v2 = ceremony.manifest()

    # After it: records sealed to oek-2 land; one record per tablet sealed
    # offline to oek-1 after accept_until is refused (its envelope) and quarantined.
    late = {}
    for worker, tablet in tablets.items():
        fresh = sealed_records(ORG, v2, worker, PER_BATCH)
        late[worker] = sealed_records(ORG, v1, worker, 1)[0]
        tablet.capture(fresh + [late[worker]])
        opened_later += fresh
    _wait_until(lambda: all(t.status()['denied'] >= 1 for t in tablets.values()),
                'the late envelopes to be refused')
    _wait_until(lambda: len(stored()) == 4 * PER_BATCH + 2, 'the second batches')
    quarantined = {row['doc']['doc_id'] for row in services.couch.all_docs(
        services.db('quarantine'), include_docs=True)}
    for worker, (_plain, _sealed, envelope) in late.items():
        assert envelope['_id'] in quarantined, worker
        assert services.couch.get_or_none(services.db('keyvault'), envelope['_id']) is None

    # Rewrap on the supervisor's machine while the tablets are still live.
    result = ceremony.run(['keys', '--home', ceremony.homes['sup-1'], 'rewrap', '--from',
                           'oek-1', '--to', 'oek-2', '--no-progress'], f'{KEY_PASS}\n')
    assert f'census after: oek-2={4 * PER_BATCH}' in result.output, result.output
    assert 'oek-1' not in ceremony.census()
    out = ceremony.admin('retire', '--kid', 'oek-1').output
    assert 'oek-1 retired in manifest seq 3' in out
    _wait_until(lambda: all(t.status()['manifest_seq'] == 3 for t in tablets.values()),
                'the retirement manifest on both tablets')

    finals = {worker: tablet.stop() for worker, tablet in tablets.items()}
    for worker, final in finals.items():
        assert final['ok'], final
        own = {sealed['_id'] for _p, sealed, _e in opened_later if sealed['owner'] == worker}
        own.add(late[worker][1]['_id'])
        records_on_tablet = {doc_id for doc_id in final['ids'] if not doc_id.startswith('rk:')}
        assert records_on_tablet == own, worker  # never the other worker's records

    # Every record opens with the advocate's current grants, through the CLI.
    ids_file = tmp_path / 'ids.txt'
    ids_file.write_text('\n'.join(sealed['_id'] for _p, sealed, _e in opened_later))
    out = ceremony.run(['advocate', '--home', ceremony.homes['adv-1'], 'open-many',
                        '--ids-file', str(ids_file), '--purpose', 'rotation check'],
                       f'{KEY_PASS}\n').output
    opened = {doc['_id']: doc for doc in
              (json.loads(line) for line in out.splitlines() if line.startswith('{'))}
    assert len(opened) == len(opened_later)
    for plain, _sealed, _envelope in opened_later:
        assert opened[plain['_id']]['notes'] == plain['notes']
