"""Key rotation while two PouchDB 9 tablets sync live through the gateway.

Two workers' tablets keep syncing records (both ways) and pulling config the
whole time, while the admin rotates (oek-1 -> oek-2, accept_until in the
future), the tablets keep pushing records sealed to the new key and, from
offline capture, to the old one; a supervisor rewraps oek-1 away; a second
rotation (oek-2 -> oek-3, accept_until already past) makes a late envelope
sealed to oek-2 refused and quarantined; oek-2 is rewrapped and retired; and
every record opens. All key operations go through the real CLI against
gunicorn.
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
    openable: list = []   # every record that must open at the end

    def stored() -> set[str]:
        return {row['id'] for row in services.couch.all_docs(services.db('records'))
                if not row['id'].startswith('_design/')}

    def capture(manifest_body: dict, count: int) -> list:
        """Each tablet captures ``count`` records sealed to that manifest's active key."""
        captured = []
        for worker, tablet in tablets.items():
            batch = sealed_records(ORG, manifest_body, worker, count)
            tablet.capture(batch)
            captured += batch
        return captured

    def manifest_on_tablets(seq: int, what: str) -> None:
        _wait_until(lambda: all(t.status()['manifest_seq'] == seq for t in tablets.values()),
                    f'manifest seq {seq} on both tablets ({what})')

    def rewrap(old: str, new: str) -> None:
        ceremony.run(['keys', '--home', ceremony.homes['sup-1'], 'rewrap', '--from', old,
                      '--to', new, '--no-progress'], f'{KEY_PASS}\n')

    # 1. Before any rotation: both tablets capture records sealed to oek-1.
    v1 = ceremony.manifest()
    openable += capture(v1, PER_BATCH)
    _wait_until(lambda: len(stored()) == len(openable), 'the first batches')
    manifest_on_tablets(1, 'the first key')

    # 2. The admin rotates while both tablets sync; oek-1 stays accepted for two weeks.
    out = ceremony.admin('rotate', '--kid', 'oek-2', '--accept-until', day(14)).output
    assert 'oek-2 active in manifest seq 2' in out, out
    manifest_on_tablets(2, 'config sync after the rotation')
    v2 = ceremony.manifest()

    # 3. Records sealed to the new key, and records sealed offline to the old
    # key before accept_until, both land; nothing is refused.
    openable += capture(v2, PER_BATCH)
    openable += capture(v1, PER_BATCH // 2)
    _wait_until(lambda: len(stored()) == len(openable), 'new-key and old-key records')
    _wait_until(lambda: ceremony.census() == {'oek-1': 3 * PER_BATCH, 'oek-2': 2 * PER_BATCH},
                'every envelope in the key vault')
    assert all(t.status()['denied'] == 0 for t in tablets.values())

    # 4. A supervisor rewraps on their own machine while the tablets stay live.
    rewrap('oek-1', 'oek-2')
    assert ceremony.census() == {'oek-2': 5 * PER_BATCH}  # oek-1: zero
    refused = ceremony.admin('retire', '--kid', 'oek-1', ok=False)
    assert refused.exit_code != 0 and f'accepted until {day(14)}' in refused.output

    # 5. accept_until passes: the next rotation makes oek-2 decrypt-only with
    # a past accept_until. One record per tablet sealed offline to oek-2 now
    # has its envelope refused and quarantined; new-key records still land.
    out = ceremony.admin('rotate', '--kid', 'oek-3', '--accept-until', day(-1)).output
    assert 'oek-3 active in manifest seq 3' in out and 'already past' in out, out
    manifest_on_tablets(3, 'config sync after the second rotation')
    v3 = ceremony.manifest()
    late = {worker: sealed_records(ORG, v2, worker, 1)[0] for worker in tablets}
    fresh = []
    for worker, tablet in tablets.items():
        batch = sealed_records(ORG, v3, worker, PER_BATCH)
        tablet.capture(batch + [late[worker]])
        fresh += batch
    openable += fresh
    _wait_until(lambda: all(t.status()['denied'] == 1 for t in tablets.values()),
                'the late envelopes to be refused')
    _wait_until(lambda: len(stored()) == len(openable) + len(late), 'the third batches')
    quarantined = {row['doc']['doc_id']: row['doc'] for row in services.couch.all_docs(
        services.db('quarantine'), include_docs=True)}
    assert len(quarantined) == len(late)
    for worker, (_plain, _sealed, envelope) in late.items():
        entry = quarantined[envelope['_id']]
        assert entry['rule'] == 'key_version' and entry['worker'] == worker
        assert f'oek-2 stopped accepting new envelopes after {day(-1)}' in entry['reason']
        assert entry['doc']['kek'] == 'oek-2'  # kept whole: never lost
        assert services.couch.get_or_none(services.db('keyvault'), envelope['_id']) is None

    # 6. Rewrap oek-2 onto oek-3, then retire oek-2 (census zero, accept_until past).
    rewrap('oek-2', 'oek-3')
    assert ceremony.census() == {'oek-3': len(openable)}
    out = ceremony.admin('retire', '--kid', 'oek-2').output
    assert 'oek-2 retired in manifest seq 4' in out, out
    assert {entry['kid']: entry['status'] for entry in ceremony.manifest()['keys']} == {
        'oek-1': 'decrypt-only', 'oek-2': 'retired', 'oek-3': 'active'}
    manifest_on_tablets(4, 'the retirement manifest')

    finals = {worker: tablet.stop() for worker, tablet in tablets.items()}
    for worker, final in finals.items():
        assert final['ok'] and final['denied'] == 1, final
        own = {sealed['_id'] for _p, sealed, _e in openable if sealed['owner'] == worker}
        own.add(late[worker][1]['_id'])
        records_on_tablet = {doc_id for doc_id in final['ids'] if not doc_id.startswith('rk:')}
        assert records_on_tablet == own, worker  # never the other worker's records

    # 7. Every record opens with the advocate's current grants, through the CLI.
    ids_file = tmp_path / 'ids.txt'
    ids_file.write_text('\n'.join(sealed['_id'] for _p, sealed, _e in openable))
    out = ceremony.run(['advocate', '--home', ceremony.homes['adv-1'], 'open-many',
                        '--ids-file', str(ids_file), '--purpose', 'supervisor_review'],
                       f'{KEY_PASS}\n').output
    opened = {doc['_id']: doc for doc in
              (json.loads(line) for line in out.splitlines() if line.startswith('{'))}
    assert len(opened) == len(openable) == 7 * PER_BATCH
    for plain, _sealed, _envelope in openable:
        assert opened[plain['_id']]['notes'] == plain['notes']
