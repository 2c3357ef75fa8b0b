"""Key custody through the real CLI and real HTTP: the holder census, sharing
a version with staff certified later, rotation to holders only, rewrap by any
custodian holding both versions, the refusals that keep every version held,
and the recovery ceremony (export online, regrant offline, upload online)."""

from __future__ import annotations

import json
import pathlib

import httpx
import pytest

import keys
from fieldvault import cli
from tests.support.lifecycle import (
    KEY_PASS,
    RECOVERY_PASS,
    SIGNER_PASS,
    Ceremony,
    day,
    opens,
    sealed_records,
)

pytestmark = pytest.mark.functional


@pytest.fixture
def ceremony(live, users, tmp_path, test_config):
    made = Ceremony(live.url, tmp_path, test_config.org,
                    lambda name, roles, team: users.create(name, roles, team=team))
    made.setup(advocates=('adv-a',), supervisors=())
    return made


def _bearer(ceremony, name):
    return {'Authorization': f'Bearer {ceremony.token(name)}'}


def _submit(ceremony, count):
    items = sealed_records(ceremony.org, ceremony.manifest(), 'worker-1', count)
    for _plain, sealed, envelope in items:
        answer = httpx.post(ceremony.url + '/records', headers=_bearer(ceremony, 'worker-1'),
                            timeout=30, json={'document': sealed, 'envelopes': [envelope]})
        assert answer.status_code == 201, answer.text
    return items


def _open_all(ceremony, services, items, keyring):
    for plain, sealed, _envelope in items:
        document = services.couch.get(services.db('records'), sealed['_id'])
        envelopes = [services.couch.get(services.db('keyvault'), f'rk:{rkid}')
                     for rkid in document['fle']['keys']]
        assert opens(document, envelopes, keyring, ceremony.org)['notes'] == plain['notes']


def _holders(ceremony, name='admin-1'):
    answer = httpx.get(ceremony.url + '/keys/holders', headers=_bearer(ceremony, name),
                       timeout=30)
    assert answer.status_code == 200, answer.text
    return {entry['kid']: entry for entry in answer.json()['versions']}


def _events(services, kind):
    return [row['doc'] for row in services.couch.all_docs(services.db('audit'),
                                                           include_docs=True)
            if row['id'].startswith('event:') and row['doc']['kind'] == kind]


def test_a_supervisor_certified_later_gets_versions_by_share_and_rewraps(ceremony, services):
    old_records = _submit(ceremony, 3)
    ceremony.admin('rotate', '--kid', 'oek-2', '--accept-until', day(14))
    new_records = _submit(ceremony, 2)
    ceremony.join('sup-b', ['supervisor'])
    # Rotation after B's certification still seals only to holders: B gets nothing.
    ceremony.admin('rotate', '--kid', 'oek-3', '--accept-until', day(14))
    held = {row['id'] for row in services.couch.all_docs(services.db('keyvault'))
            if row['id'].startswith('grant:')}
    assert 'grant:oek-3:adv-a' in held and 'grant:oek-3:recovery' in held
    assert not {grant for grant in held if grant.endswith(':sup-b')}

    # The certification recorded what B needs.
    certified = [event for event in _events(services, 'advocate_key_certified')
                 if event['subject'] == 'user:sup-b']
    assert certified[0]['details']['needs'] == ['oek-1', 'oek-2']
    census = _holders(ceremony)
    assert census['oek-1']['envelopes'] == 3 and census['oek-2']['envelopes'] == 2
    assert [item['user'] for item in census['oek-1']['holders']] == ['adv-a']
    assert census['oek-1']['recovery'] is True and census['oek-1']['recovery_only'] is False
    listed = ceremony.keys_as('sup-b', 'holders').output
    assert 'oek-1 (decrypt-only): 3 envelopes; held by adv-a; recovery key: yes' in listed

    # B's rewrap is refused, naming the version B lacks and who holds it.
    refused = ceremony.keys_as('sup-b', 'rewrap', '--from', 'oek-1', '--to', 'oek-3',
                               '--no-progress', input_text=f'{KEY_PASS}\n', ok=False)
    assert refused.exit_code != 0
    assert 'you hold no grant of oek-1; it is held by adv-a' in refused.output
    assert 'keys share --to sup-b --kid oek-1' in refused.output

    # A's queue: B needs every live version; A shares all of them on A's machine.
    queue = ceremony.keys_as('adv-a', 'pending').output
    for kid in ('oek-1', 'oek-2', 'oek-3'):
        assert f'sup-b needs {kid} (held by adv-a)' in queue
    shared = ceremony.keys_as('adv-a', 'share', '--to', 'sup-b', input_text=f'{KEY_PASS}\n')
    assert 'stored 3' in shared.output
    assert 'nothing pending' in ceremony.keys_as('adv-a', 'pending').output
    stored = services.couch.get(services.db('keyvault'), 'grant:oek-1:sup-b')
    assert stored['type'] == 'share' and stored['shared_by'] == 'adv-a'
    assert stored['via'] == 'share' and 'sig' not in stored
    events = _events(services, 'key_shared')
    assert sorted(event['details']['kek'] for event in events) == ['oek-1', 'oek-2', 'oek-3']
    assert {(event['actor'], event['subject']) for event in events} == {
        ('user:adv-a', 'user:sup-b')}

    # B rewraps both old versions and opens every record with B's own keys.
    for old in ('oek-1', 'oek-2'):
        out = ceremony.keys_as('sup-b', 'rewrap', '--from', old, '--to', 'oek-3',
                               '--no-progress', input_text=f'{KEY_PASS}\n').output
        assert 'unopenable 0' in out and 'rewrapped 0 envelopes' not in out
    assert ceremony.census() == {'oek-3': 5}
    keyring = ceremony.keyring('sup-b')
    assert set(keyring.kids) == {'oek-1', 'oek-2', 'oek-3'}
    _open_all(ceremony, services, old_records + new_records, keyring)
    opened = ceremony.run(['advocate', '--home', ceremony.homes['sup-b'], 'open',
                           old_records[0][1]['_id'], '--purpose', 'supervisor_review'],
                          f'{KEY_PASS}\n')
    assert old_records[0][0]['notes'] in opened.output


def test_nobody_shares_what_they_do_not_hold_or_to_themselves(ceremony, services):
    _submit(ceremony, 1)
    ceremony.join('sup-b', ['supervisor'])
    ceremony.join('adv-c', ['advocate'])
    manifest = ceremony.manifest()
    public = {name: services.couch.get(services.db('directory'), f'apk:{name}')['public']
              for name in ('sup-b', 'adv-c')}
    # A key of B's own making, under the live kid: B cannot hold oek-1 this way.
    made_up = keys.OrgKeyPair.generate('oek-1')
    forged_manifest = json.loads(json.dumps(manifest))
    forged_manifest['keys'][0]['pub'] = made_up.public_b64()

    def share(to, by='sup-b', via='share'):
        return keys.seal_share(made_up, public[to], org=ceremony.org, shared_by=by,
                               manifest_body=forged_manifest, via=via)

    to_self = httpx.post(ceremony.url + '/keys/shares', headers=_bearer(ceremony, 'sup-b'),
                         json={'shares': [share('sup-b')]}, timeout=30)
    assert to_self.status_code == 403 and to_self.json()['code'] == 'self_share'
    to_other = httpx.post(ceremony.url + '/keys/shares', headers=_bearer(ceremony, 'sup-b'),
                          json={'shares': [share('adv-c')]}, timeout=30)
    assert to_other.status_code == 403 and to_other.json()['code'] == 'not_a_holder'
    # In a holder's name: still refused, the caller is not adv-a.
    in_name = httpx.post(ceremony.url + '/keys/shares', headers=_bearer(ceremony, 'sup-b'),
                         json={'shares': [share('adv-c', by='adv-a')]}, timeout=30)
    assert in_name.status_code == 403 and in_name.json()['code'] == 'not_a_holder'
    # An admin cannot use the recovery path while a holder remains.
    recovery = httpx.post(ceremony.url + '/keys/shares', headers=_bearer(ceremony, 'admin-1'),
                          json={'shares': [share('adv-c', by='recovery', via='recovery')]},
                          timeout=30)
    assert recovery.status_code == 409 and recovery.json()['code'] == 'holders_remain'
    assert services.couch.get_or_none(services.db('keyvault'), 'grant:oek-1:adv-c') is None
    assert services.couch.get_or_none(services.db('keyvault'), 'grant:oek-1:sup-b') is None
    # The CLI refuses a share to oneself before asking for anything.
    result = ceremony.keys_as('adv-a', 'share', '--to', 'adv-a', ok=False)
    assert result.exit_code != 0 and 'themselves' in result.output
    # An admin's grant to a person who holds nothing is refused too: that is a share.
    signing = keys.SigningKey.from_pem(
        open(f'{ceremony.homes["admin-1"]}/signing-key.pem', 'rb').read(), SIGNER_PASS)
    grant = keys.seal_grant(made_up, public['adv-c'], org=ceremony.org, granted_by='admin-1',
                            signing_key=signing)
    planted = httpx.post(ceremony.url + '/keys/grants', headers=_bearer(ceremony, 'admin-1'),
                         json={'grants': [grant]}, timeout=30)
    assert planted.status_code == 409 and planted.json()['code'] == 'not_a_holder'
    assert planted.json()['fields'] == {'advocates': ['adv-c']}
    assert services.couch.get_or_none(services.db('keyvault'), 'grant:oek-1:adv-c') is None


def test_a_share_the_server_planted_does_not_open(ceremony, services):
    ceremony.join('sup-b', ['supervisor'])
    public = services.couch.get(services.db('directory'), 'apk:sup-b')['public']
    made_up = keys.OrgKeyPair.generate('oek-1')
    forged = json.loads(json.dumps(ceremony.manifest()))
    forged['keys'][0]['pub'] = made_up.public_b64()
    services.couch.put(services.db('keyvault'), keys.seal_share(
        made_up, public, org=ceremony.org, shared_by='adv-a', manifest_body=forged))
    with pytest.raises(keys.errors.InvalidCiphertext):
        ceremony.keyring('sup-b')


@pytest.mark.parametrize('change', [
    {'disabled': True}, {'roles': ['worker']}, {'roles': ['admin']}, {'team': 'team-b'},
])
def test_a_change_that_leaves_a_version_recovery_only_is_refused(ceremony, services, change):
    _submit(ceremony, 2)
    admin = _bearer(ceremony, 'admin-1')
    refused = httpx.patch(ceremony.url + '/users/adv-a', headers=admin, json=change, timeout=30)
    assert refused.status_code == 409, refused.text
    assert refused.json()['code'] == 'recovery_only'
    assert refused.json()['fields'] == {'versions': ['oek-1']}
    assert 'oek-1' in refused.json()['description']
    user = services.accounts.get_user('adv-a')
    assert user['disabled'] is False and user['roles'] == ['advocate']
    assert user['team'] == 'team-a'
    # Harmless changes pass: a role kept, a password.
    kept = httpx.patch(ceremony.url + '/users/adv-a', headers=admin,
                       json={'roles': ['advocate', 'worker']}, timeout=30)
    assert kept.status_code == 200, kept.text
    # Accepted explicitly: done, and audited with the versions.
    accepted = httpx.patch(ceremony.url + '/users/adv-a?accept_recovery_only=true',
                           headers=admin, json=change, timeout=30)
    assert accepted.status_code == 200, accepted.text
    [event] = _events(services, 'recovery_only_accepted')
    assert event['details'] == {'versions': ['oek-1'], 'action': 'user_update'}
    assert event['subject'] == 'user:adv-a'
    census = _holders(ceremony)
    if 'team' in change:
        # Still a holder, of another team now: the records' team has nobody left.
        assert [(h['user'], h['team']) for h in census['oek-1']['holders']] == [
            ('adv-a', 'team-b')]
    else:
        assert census['oek-1']['holders'] == [] and census['oek-1']['recovery_only'] is True


def test_revoking_the_last_holder_is_refused_until_shared(ceremony, services):
    _submit(ceremony, 2)
    revoke = ['advocate', '--home', ceremony.homes['admin-1'], 'revoke', 'adv-a', '--kid',
              'oek-2', '--accept-until', day(7), '--yes']
    refused = ceremony.run(revoke, f'{SIGNER_PASS}\n', ok=False)
    assert refused.exit_code != 0 and 'recovery_only' in refused.output
    assert 'oek-1' in refused.output
    assert services.accounts.get_user('adv-a')['disabled'] is False
    # The grant deletion alone is refused too.
    deleted = httpx.delete(ceremony.url + '/advocates/keys/adv-a/grants',
                           headers=_bearer(ceremony, 'admin-1'), timeout=30)
    assert deleted.status_code == 409 and deleted.json()['fields'] == {'versions': ['oek-1']}
    assert services.couch.get_or_none(services.db('keyvault'), 'grant:oek-1:adv-a')
    # Once a second person holds it, the revocation goes through and rotates to them.
    ceremony.join('sup-b', ['supervisor'])
    ceremony.keys_as('adv-a', 'share', input_text=f'{KEY_PASS}\n')
    out = ceremony.run(revoke, f'{SIGNER_PASS}\n').output
    assert 'adv-a disabled' in out and 'grants to 1 holders of oek-1 and recovery' in out
    assert services.couch.get_or_none(services.db('keyvault'), 'grant:oek-2:sup-b')
    assert not _events(services, 'recovery_only_accepted')


def test_recovery_ceremony_regrants_offline_when_no_holder_remains(ceremony, services,
                                                                    tmp_path):
    items = _submit(ceremony, 3)
    out = ceremony.run(['advocate', '--home', ceremony.homes['admin-1'], 'revoke', 'adv-a',
                        '--kid', 'oek-2', '--accept-until', day(7), '--yes',
                        '--accept-recovery-only'], f'{SIGNER_PASS}\n').output
    assert 'grants to 0 holders of oek-1 and recovery' in out
    assert sorted(event['details']['action'] for event in _events(
        services, 'recovery_only_accepted')) == ['manifest_activation', 'user_update']
    ceremony.join('sup-b', ['supervisor'])
    more = _submit(ceremony, 1)
    census = _holders(ceremony)
    assert census['oek-1']['recovery_only'] and census['oek-2']['recovery_only']
    assert 'RECOVERY ONLY' in ceremony.keys_as('admin-1', 'holders').output
    assert 'sup-b needs oek-1 (held by nobody' in ceremony.keys_as('admin-1', 'pending').output

    # Online, an admin: export.
    exported = tmp_path / 'export.json'
    out = ceremony.run(['recovery', 'export', '--home', ceremony.homes['admin-1'], '--out',
                        str(exported)]).output
    assert 'versions with no active holder: oek-2, oek-1' in out
    # Offline, the trustees: a wrong fingerprint stops everything.
    shares_file = tmp_path / 'shares.json'
    regrant = ['recovery', 'regrant', '--in', str(exported), '--recovery',
               str(ceremony.recovery_file), '--out', str(shares_file), '--fingerprint']
    bad = ceremony.run([*regrant, '0' * 64], f'{RECOVERY_PASS}\n', ok=False)
    assert bad.exit_code != 0 and 'does not match' in bad.output and not shares_file.exists()
    out = ceremony.run([*regrant, ceremony.signer_fingerprint], f'{RECOVERY_PASS}\n').output
    assert 'sealed oek-1 to sup-b' in out and 'sealed oek-2 to sup-b' in out
    assert oct(shares_file.stat().st_mode & 0o777) == '0o600'
    # Online, an admin: upload. The recipient cannot upload their own shares.
    refused = ceremony.run(['recovery', 'upload', str(shares_file), '--home',
                            ceremony.homes['sup-b']], ok=False)
    assert refused.exit_code != 0 and 'self_share' in refused.output
    out = ceremony.run(['recovery', 'upload', str(shares_file), '--home',
                        ceremony.homes['admin-1']]).output
    assert 'stored 2' in out
    events = _events(services, 'key_shared')
    assert {(e['details']['kek'], e['details']['via'], e['subject']) for e in events} == {
        ('oek-1', 'recovery', 'user:sup-b'), ('oek-2', 'recovery', 'user:sup-b')}
    assert _events(services, 'recovery_exported')

    census = _holders(ceremony)
    assert not census['oek-1']['recovery_only'] and not census['oek-2']['recovery_only']
    # Nor can anyone but an admin, and not once a holder exists.
    ceremony.join('adv-c', ['advocate'])
    refused = ceremony.run(['recovery', 'upload', str(shares_file), '--home',
                            ceremony.homes['adv-c']], ok=False)
    assert refused.exit_code != 0 and 'recovery_upload' in refused.output
    refused = ceremony.run(['recovery', 'upload', str(shares_file), '--home',
                            ceremony.homes['admin-1']], ok=False)
    assert refused.exit_code != 0 and 'holders_remain' in refused.output
    ceremony.keys_as('sup-b', 'rewrap', '--from', 'oek-1', '--to', 'oek-2', '--no-progress',
                     input_text=f'{KEY_PASS}\n')
    assert ceremony.census() == {'oek-2': 4}
    _open_all(ceremony, services, items + more, ceremony.keyring('sup-b'))
    # Nothing left to recover.
    again = ceremony.run(['recovery', 'export', '--home', ceremony.homes['admin-1'], '--out',
                          str(tmp_path / 'again.json')]).output
    assert 'no recovery needed' in again


def test_shares_go_only_to_certified_keys_the_sharer_verified(ceremony, services):
    _submit(ceremony, 1)
    # Enrolled but not certified: no share, whoever seals it.
    home = ceremony.login('adv-d', ['advocate'])
    ceremony.run(['advocate', '--home', home, 'enroll'], f'{KEY_PASS}\n{KEY_PASS}\n')
    assert 'nothing pending' in ceremony.keys_as('adv-a', 'pending').output
    holder = keys.AdvocateKey.unwrap(
        services.couch.get(services.db('directory'), 'apk:adv-a')['wrapped'], KEY_PASS)
    pinned = services.couch.get(services.db('config'), 'org-signer')['public']
    manifest = ceremony.manifest()
    keyring = keys.open_holdings(
        [services.couch.get(services.db('keyvault'), 'grant:oek-1:adv-a')], holder,
        org=ceremony.org, pinned_public_b64=pinned, manifest_body=manifest)
    uncertified = services.couch.get(services.db('directory'), 'apk:adv-d')['public']
    share = keys.seal_share(keyring.get('oek-1'), uncertified, org=ceremony.org,
                            shared_by='adv-a', manifest_body=manifest)
    answer = httpx.post(ceremony.url + '/keys/shares', headers=_bearer(ceremony, 'adv-a'),
                        json={'shares': [share]}, timeout=30)
    assert answer.status_code == 422 and answer.json()['code'] == 'not_certified_staff'
    assert services.couch.get_or_none(services.db('keyvault'), 'grant:oek-1:adv-d') is None

    # A server that swaps a certified person's key for its own: the sharer's
    # CLI checks the certificate against its pinned signer and shares nothing.
    ceremony.join('sup-b', ['supervisor'])
    doc = services.couch.get(services.db('directory'), 'apk:sup-b')
    swapped = keys.AdvocateKey.generate('sup-b', doc['public']['apk']).public_record()
    services.couch.put(services.db('directory'), dict(doc, public=swapped))
    result = ceremony.keys_as('adv-a', 'share', input_text=f'{KEY_PASS}\n', ok=False)
    assert result.exit_code != 0 and 'not the certified one' in result.output
    assert services.couch.get_or_none(services.db('keyvault'), 'grant:oek-1:sup-b') is None


def test_the_operator_command_refuses_too(ceremony, services, env):
    _submit(ceremony, 1)
    refused = ceremony.runner.invoke(cli, ['users', 'set', 'adv-a', '--disable'], env=env)
    assert refused.exit_code != 0 and 'oek-1' in refused.output
    assert services.accounts.get_user('adv-a')['disabled'] is False
    done = ceremony.runner.invoke(cli, ['users', 'set', 'adv-a', '--disable',
                                        '--accept-recovery-only'], env=env)
    assert done.exit_code == 0, done.output
    [event] = _events(services, 'recovery_only_accepted')
    assert event['actor'] == 'cli:operator' and event['details']['versions'] == ['oek-1']


def test_the_active_version_needs_a_holder_before_its_first_envelope(ceremony, services):
    # No record yet: oek-1, the active version, has no envelope. Tablets seal
    # every new record to it, so its last holder cannot leave unnoticed.
    assert not _holders(ceremony).get('oek-1', {}).get('envelopes')
    admin = _bearer(ceremony, 'admin-1')
    refused = httpx.patch(ceremony.url + '/users/adv-a', headers=admin,
                          json={'disabled': True}, timeout=30)
    assert refused.status_code == 409, refused.text
    assert refused.json()['fields'] == {'versions': ['oek-1']}
    assert services.couch.get(services.db('directory'), 'user:adv-a').get('disabled') is not True


def _signed_rotation(ceremony, new_kid):
    """A manifest making ``new_kid`` active, signed with the admin's own signing key."""
    pem = (pathlib.Path(ceremony.homes['admin-1']) / 'signing-key.pem').read_bytes()
    signing_key = keys.SigningKey.from_pem(pem, SIGNER_PASS)
    current = ceremony.manifest()
    entries = [keys.OrgKeyPair.generate(new_kid).manifest_entry('active')]
    for entry in current['keys']:
        entry = dict(entry)
        if entry['status'] == 'active':
            entry['status'] = 'decrypt-only'
            entry['accept_until'] = day(7)
        entries.append(entry)
    body = keys.build_manifest(current['org'], current['seq'] + 1, entries)
    return keys.sign_manifest(body, signing_key)


def test_a_rotation_to_a_version_no_active_staff_holds_is_refused(ceremony, services):
    _submit(ceremony, 1)
    admin = _bearer(ceremony, 'admin-1')
    # The server: a signed manifest whose new active version nobody holds.
    signed = _signed_rotation(ceremony, 'oek-9')
    refused = httpx.put(ceremony.url + '/keys/manifest', headers=admin,
                        json={'signed': signed}, timeout=30)
    assert refused.status_code == 409, refused.text
    assert refused.json()['code'] == 'recovery_only'
    assert refused.json()['fields'] == {'versions': ['oek-9']}
    assert ceremony.manifest()['seq'] == 1
    # The last holder leaves, explicitly accepted; the next rotation would
    # grant the new version to the recovery key alone: the CLI refuses it.
    accepted = httpx.patch(ceremony.url + '/users/adv-a?accept_recovery_only=true',
                           headers=admin, json={'disabled': True}, timeout=30)
    assert accepted.status_code == 200, accepted.text
    rotate = ['oek-2', '--accept-until', day(7)]
    out = ceremony.run(['keys', '--home', ceremony.homes['admin-1'], 'rotate', '--kid', *rotate],
                       f'{SIGNER_PASS}\n', ok=False)
    assert out.exit_code != 0 and 'no active staff holds oek-1' in out.output
    assert [entry['kid'] for entry in ceremony.manifest()['keys']] == ['oek-1']
    assert services.couch.get_or_none(services.db('keyvault'), 'grant:oek-2:recovery') is None
    # Accepted explicitly: done, and audited as an activation.
    out = ceremony.run(['keys', '--home', ceremony.homes['admin-1'], 'rotate', '--kid', *rotate,
                        '--accept-recovery-only'], f'{SIGNER_PASS}\n').output
    assert 'org key oek-2 active' in out
    events = _events(services, 'recovery_only_accepted')
    assert {'versions': ['oek-2'], 'action': 'manifest_activation'} in [
        event['details'] for event in events]
    assert _holders(ceremony)['oek-2']['recovery'] is True
