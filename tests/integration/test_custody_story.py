"""The custody story under gunicorn, with a PouchDB 9 tablet syncing live and
every key step through the real CLI: the first key, advocate A, records, a
supervisor B certified later, a rotation that seals only to A, A's revocation
refused while A is the only holder, A shares every version with B, A is
revoked (rotation to B), B rewraps and opens every record, and A's kept keys
open nothing sealed after the revocation."""

from __future__ import annotations

import json

import pytest

import keys
from tests.conftest import PASSWORD
from tests.integration.conftest import ORG
from tests.integration.test_rotation_live import LiveTablet, _wait_until
from tests.support.lifecycle import KEY_PASS, SIGNER_PASS, Ceremony, day, opens, sealed_records

pytestmark = pytest.mark.integration

PER_BATCH = 6


def test_supervisor_certified_later_keeps_every_record_open_after_the_advocate_leaves(
        stack, tmp_path):
    services = stack.services
    ceremony = Ceremony(stack.service.url, tmp_path, ORG,
                        lambda name, roles, team: services.accounts.create_user(
                            name, PASSWORD, roles, team=team))
    ceremony.setup(advocates=('adv-a',), supervisors=(), workers=())
    services.accounts.create_user('w-1', PASSWORD, ['worker'], team='team-a')
    tablet = LiveTablet(stack, stack.enroll('w-1'), 'w-1')
    openable: list = []

    def capture(count: int) -> list:
        batch = sealed_records(ORG, ceremony.manifest(), 'w-1', count)
        tablet.capture(batch)
        openable.extend(batch)
        _wait_until(lambda: sum(ceremony.census().values()) == len(openable),
                    'the envelopes in the key vault')
        return batch

    def holders() -> dict:
        out = ceremony.keys_as('admin-1', 'holders').output
        return {line.split(' ')[0]: line for line in out.splitlines()}

    # Records sealed to the first key; then B is certified.
    capture(PER_BATCH)
    ceremony.join('sup-b', ['supervisor'])
    # A rotation seals the new version to holders only: A and the recovery key.
    out = ceremony.admin('rotate', '--kid', 'oek-2', '--accept-until', day(14)).output
    assert 'grants to 1 holders of oek-1 and recovery' in out, out
    capture(PER_BATCH)
    assert services.couch.get_or_none(services.db('keyvault'), 'grant:oek-2:sup-b') is None
    assert 'held by adv-a; recovery key: yes' in holders()['oek-1']
    kept_by_a = ceremony.keyring('adv-a')  # what A could keep before leaving

    # Revoking A now would leave oek-1 and oek-2 to the recovery key alone: refused.
    revoke = ['advocate', '--home', ceremony.homes['admin-1'], 'revoke', 'adv-a', '--kid',
              'oek-3', '--accept-until', day(7), '--yes']
    refused = ceremony.run(revoke, f'{SIGNER_PASS}\n', ok=False)
    assert refused.exit_code != 0 and 'recovery_only' in refused.output
    assert 'oek-1' in refused.output and 'oek-2' in refused.output
    # B cannot rewrap yet, and is told who holds what B lacks.
    lacking = ceremony.keys_as('sup-b', 'rewrap', '--from', 'oek-1', '--to', 'oek-2',
                               '--no-progress', input_text=f'{KEY_PASS}\n', ok=False)
    assert 'you hold no grant of oek-1; it is held by adv-a' in lacking.output

    # A shares on A's own machine; the server only ever sees sealed shares.
    assert 'sup-b needs oek-1 (held by adv-a)' in ceremony.keys_as('adv-a', 'pending').output
    shared = ceremony.keys_as('adv-a', 'share', input_text=f'{KEY_PASS}\n').output
    assert 'shared oek-1 with sup-b' in shared and 'shared oek-2 with sup-b' in shared

    # Now A's revocation goes through and rotates to B.
    out = ceremony.run(revoke, f'{SIGNER_PASS}\n').output
    assert 'adv-a disabled' in out and 'grants to 1 holders of oek-2 and recovery' in out, out
    assert services.couch.get_or_none(services.db('keyvault'), 'grant:oek-3:sup-b')
    after_revocation = capture(PER_BATCH)
    for _plain, sealed, envelope in after_revocation:
        with pytest.raises(keys.errors.KeysError):
            opens(sealed, [envelope], kept_by_a, ORG)

    # B rewraps both old versions onto oek-3.
    for old in ('oek-1', 'oek-2'):
        ceremony.keys_as('sup-b', 'rewrap', '--from', old, '--to', 'oek-3', '--no-progress',
                         input_text=f'{KEY_PASS}\n')
    assert ceremony.census() == {'oek-3': 3 * PER_BATCH}
    census = holders()
    assert 'held by sup-b; recovery key: yes' in census['oek-3']
    assert not any('RECOVERY ONLY' in line for line in census.values())

    # B opens every record through the CLI.
    ids_file = tmp_path / 'ids.txt'
    ids_file.write_text('\n'.join(sealed['_id'] for _p, sealed, _e in openable))
    out = ceremony.run(['advocate', '--home', ceremony.homes['sup-b'], 'open-many',
                        '--ids-file', str(ids_file), '--purpose', 'supervisor_review'],
                       f'{KEY_PASS}\n').output
    opened = {doc['_id']: doc for doc in
              (json.loads(line) for line in out.splitlines() if line.startswith('{'))}
    assert len(opened) == len(openable) == 3 * PER_BATCH
    for plain, _sealed, _envelope in openable:
        assert opened[plain['_id']]['notes'] == plain['notes']
    final = tablet.stop()
    assert final['ok'] and final['denied'] == 0, final
    kinds = [row['doc']['kind'] for row in services.couch.all_docs(
        services.db('audit'), include_docs=True) if row['id'].startswith('event:')]
    assert kinds.count('key_shared') == 2 and 'recovery_only_accepted' not in kinds
