"""Key lifecycle through the real CLI and real HTTP: rotate, rewrap, retire,
accept_until enforcement (desk intake and sync push), revocation."""

from __future__ import annotations

import base64

import httpx
import pytest

import keys
from sync import key_policy
from tests.support.lifecycle import (
    KEY_PASS,
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
    made.setup(advocates=('adv-1', 'adv-2'))
    return made


def _bearer(token):
    return {'Authorization': f'Bearer {token}'}


def _submit(ceremony, items, token):
    for _plain, sealed, envelope in items:
        answer = httpx.post(ceremony.url + '/records', headers=_bearer(token), timeout=30,
                            json={'document': sealed, 'envelopes': [envelope]})
        assert answer.status_code == 201, answer.text


def _open_all(ceremony, services, items, keyring):
    for plain, sealed, _envelope in items:
        document = services.couch.get(services.db('records'), sealed['_id'])
        envelopes = [services.couch.get(services.db('keyvault'), f'rk:{rkid}')
                     for rkid in document['fle']['keys']]
        opened = opens(document, envelopes, keyring, ceremony.org)
        assert opened['notes'] == plain['notes']
        assert opened['precise_location'] == plain['precise_location']


def _enroll_device(ceremony, worker):
    admin = _bearer(ceremony.token('admin-1'))
    code = httpx.post(ceremony.url + '/devices', json={'worker': worker}, headers=admin,
                      timeout=10).json()['enrollment_code']
    creds = httpx.post(ceremony.url + '/devices/enroll', json={'code': code},
                       timeout=10).json()
    raw = f'{creds["device_id"]}:{creds["secret"]}'.encode()
    return {'Authorization': 'Basic ' + base64.b64encode(raw).decode()}


def test_rotate_rewrap_retire_and_late_envelopes_are_refused(ceremony, services):
    worker = ceremony.token('worker-1')
    v1 = ceremony.manifest()
    before = sealed_records(ceremony.org, v1, 'worker-1', 6)
    _submit(ceremony, before, worker)
    # Sealed offline to v1 now, pushed after accept_until has passed (below).
    late = sealed_records(ceremony.org, v1, 'worker-1', 2)

    # Rotation with an accept_until already in the past: v1 stops accepting at once.
    out = ceremony.admin('rotate', '--kid', 'oek-2', '--accept-until', day(-1)).output
    assert 'oek-2 active in manifest seq 2' in out and 'warning' in out
    v2 = ceremony.manifest()
    assert {(e['kid'], e['status']) for e in v2['keys']} == {
        ('oek-2', 'active'), ('oek-1', 'decrypt-only')}
    grants = {row['id'] for row in services.couch.all_docs(services.db('keyvault'))
              if row['id'].startswith('grant:oek-2:')}
    assert grants == {'grant:oek-2:adv-1', 'grant:oek-2:adv-2', 'grant:oek-2:sup-1',
                      'grant:oek-2:recovery'}
    # The new manifest reaches tablets through the config database.
    device = _enroll_device(ceremony, 'worker-1')
    pulled = httpx.get(ceremony.url + '/sync/config/key-manifest', headers=device, timeout=10)
    assert pulled.status_code == 200 and pulled.json()['seq'] == 2

    after = sealed_records(ceremony.org, v2, 'worker-1', 3)
    _submit(ceremony, after, worker)

    # Desk intake of a record sealed to v1 after accept_until: refused, with the reason.
    refused = httpx.post(ceremony.url + '/records', headers=_bearer(worker), timeout=30,
                         json={'document': late[0][1], 'envelopes': [late[0][2]]})
    assert refused.status_code == 422
    assert 'stopped accepting' in str(refused.json()['fields'])
    # Sync push of the same: the record lands, its envelope is refused and quarantined.
    sealed, envelope = late[1][1], late[1][2]
    docs = [dict(doc, _rev='1-' + 'a' * 32, _revisions={'start': 1, 'ids': ['a' * 32]})
            for doc in (sealed, envelope)]
    pushed = httpx.post(ceremony.url + '/sync/records/_bulk_docs', headers=device, timeout=30,
                        json={'docs': docs, 'new_edits': False})
    assert pushed.status_code == 201, pushed.text
    answers = {entry['id']: entry for entry in pushed.json()}
    assert answers[envelope['_id']]['error'] == 'forbidden'
    assert 'oek-1' in answers[envelope['_id']]['reason']
    quarantined = [row['doc'] for row in services.couch.all_docs(
        services.db('quarantine'), include_docs=True)]
    kept = [q for q in quarantined if q['doc_id'] == envelope['_id']]
    assert len(kept) == 1 and kept[0]['rule'] == 'key_version'
    assert kept[0]['doc']['ct'] == envelope['ct']  # never lost: the whole envelope is kept
    assert services.couch.get_or_none(services.db('keyvault'), envelope['_id']) is None

    # Retire is refused while envelopes are still sealed to v1.
    assert ceremony.admin('retire', '--kid', 'oek-1', ok=False).exit_code != 0
    records_before = {row['id']: row['value']['rev'] for row in services.couch.all_docs(
        services.db('records'))}

    # Rewrap on the supervisor's machine: census of v1 goes to zero.
    result = ceremony.run(['keys', '--home', ceremony.homes['sup-1'], 'rewrap', '--from',
                           'oek-1', '--to', 'oek-2', '--page-size', '4'], f'{KEY_PASS}\n')
    assert 'census before: oek-1=6, oek-2=3' in result.output
    assert 'census after: oek-2=9' in result.output
    assert 'rewrapped 6 envelopes' in result.output
    again = ceremony.run(['keys', '--home', ceremony.homes['sup-1'], 'rewrap', '--from',
                          'oek-1', '--to', 'oek-2', '--no-progress'], f'{KEY_PASS}\n')
    assert 'rewrapped 0 envelopes' in again.output
    # Record documents were never touched.
    assert {row['id']: row['value']['rev'] for row in services.couch.all_docs(
        services.db('records'))} == records_before

    # Retire: grants of v1 gone, v1 retired in manifest seq 3.
    out = ceremony.admin('retire', '--kid', 'oek-1').output
    assert 'oek-1 retired in manifest seq 3' in out
    assert not [row for row in services.couch.all_docs(services.db('keyvault'))
                if row['id'].startswith('grant:oek-1:')]
    v3 = ceremony.manifest()
    assert {(e['kid'], e['status']) for e in v3['keys']} == {
        ('oek-2', 'active'), ('oek-1', 'retired')}
    assert key_policy.check_new_envelope({'kek': 'oek-1'}, v3, 0) is not None

    # Every record still opens, with the advocate's current grants (oek-2 only).
    keyring = ceremony.keyring('adv-1')
    assert keyring.kids == ('oek-2',)
    _open_all(ceremony, services, before + after, keyring)
    # And through the CLI, with a purpose.
    opened = ceremony.run(['advocate', '--home', ceremony.homes['adv-1'], 'open',
                           before[0][1]['_id'], '--purpose', 'supervisor_review'],
                          f'{KEY_PASS}\n')
    assert before[0][0]['notes'] in opened.output

    kinds = [row['doc']['kind'] for row in services.couch.all_docs(
        services.db('audit'), include_docs=True) if row['id'].startswith('event:')]
    for kind in ('key_rotated', 'rewrap_run', 'key_retired', 'grants_deleted',
                 'recovery_key_registered'):
        assert kind in kinds, kind


def test_revoked_advocate_opens_nothing_sealed_after_rotation(ceremony, services):
    worker = ceremony.token('worker-1')
    # adv-2's material as an attacker would have kept it before revocation.
    kept_keyring = ceremony.keyring('adv-2')
    token = ceremony.token('adv-2')
    assert kept_keyring.kids == ('oek-1',)

    result = ceremony.run(['advocate', '--home', ceremony.homes['admin-1'], 'revoke', 'adv-2',
                           '--kid', 'oek-2', '--accept-until', day(7)],
                          'y\n' + 'signer passphrase long enough\n')
    assert 'adv-2 disabled' in result.output and 'oek-2 active' in result.output
    assert not [row for row in services.couch.all_docs(services.db('keyvault'))
                if row['id'].startswith('grant:') and row['id'].endswith(':adv-2')]
    assert services.couch.get(services.db('directory'), 'apk:adv-2')['status'] == 'revoked'

    after = sealed_records(ceremony.org, ceremony.manifest(), 'worker-1', 2)
    _submit(ceremony, after, worker)
    for _plain, sealed, envelope in after:
        assert envelope['kek'] == 'oek-2'
        with pytest.raises(keys.errors.KeysError):
            opens(sealed, [envelope], kept_keyring, ceremony.org)
    # The others still open them.
    _open_all(ceremony, services, after, ceremony.keyring('adv-1'))
    # The server refuses the revoked advocate everything.
    for method, path in (('GET', '/advocates/me'), ('GET', '/auth/me'),
                         ('POST', f'/records/{after[0][1]["_id"]}/open')):
        answer = httpx.request(method, ceremony.url + path, headers=_bearer(token),
                               json={'purpose': 'case_management'} if method == 'POST' else None)
        assert answer.status_code == 401, (path, answer.status_code)
    login = httpx.post(ceremony.url + '/auth/login', timeout=10,
                       json={'username': 'adv-2', 'password': 'correct horse battery staple'})
    assert login.status_code in (401, 403)
    # A second rotation gives the revoked advocate no grant either.
    ceremony.admin('rotate', '--kid', 'oek-3', '--accept-until', day(7))
    assert services.couch.get_or_none(services.db('keyvault'), 'grant:oek-3:adv-2') is None


def test_revoke_asks_for_confirmation(ceremony, services):
    result = ceremony.run(['advocate', '--home', ceremony.homes['admin-1'], 'revoke', 'adv-2',
                           '--kid', 'oek-2', '--accept-until', day(7)], 'n\n', ok=False)
    assert result.exit_code != 0
    assert services.accounts.get_user('adv-2')['disabled'] is False


def test_rotate_refuses_a_bad_date_and_a_known_kid(ceremony):
    assert ceremony.admin('rotate', '--kid', 'oek-9', '--accept-until', '2026-13-01',
                          ok=False).exit_code != 0
    result = ceremony.admin('rotate', '--kid', 'oek-1', '--accept-until', day(3), ok=False)
    assert result.exit_code != 0 and 'already lists' in result.output


def test_retire_refuses_before_accept_until(ceremony):
    ceremony.admin('rotate', '--kid', 'oek-2', '--accept-until', day(30))
    result = ceremony.admin('retire', '--kid', 'oek-1', ok=False)
    assert result.exit_code != 0 and 'accepted until' in result.output
    result = ceremony.admin('retire', '--kid', 'oek-2', ok=False)
    assert result.exit_code != 0 and 'active' in result.output
