"""Key ceremonies that cannot be misfired, and an audit that says what
happened: a second `keys init`, a foreign org, a reused or dropped key id, a
replaced or planted grant are refused; a stray grant is removable and
ignored; a failed local open is reported as such. Through the real CLI, the
real HTTP API and the real database."""

from __future__ import annotations

import json
import pathlib

import httpx
import pytest

import keys
from tests.support.lifecycle import (
    KEY_PASS,
    SIGNER_PASS,
    Ceremony,
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


def _audit(services, kind):
    return [row['doc'] for row in services.couch.all_docs(services.db('audit'), include_docs=True)
            if row['doc'].get('kind') == kind]


def _signing_key(ceremony):
    pem = (pathlib.Path(ceremony.homes['admin-1']) / 'signing-key.pem').read_bytes()
    return keys.SigningKey.from_pem(pem, SIGNER_PASS)


def _grant_doc(services, kid, advocate):
    return services.couch.get_or_none(services.db('keyvault'), f'grant:{kid}:{advocate}')


def _submit(ceremony, count=1):
    items = sealed_records(ceremony.org, ceremony.manifest(), 'worker-1', count)
    for _plain, sealed, envelope in items:
        answer = httpx.post(ceremony.url + '/records', timeout=30,
                            headers=_bearer(ceremony.token('worker-1')),
                            json={'document': sealed, 'envelopes': [envelope]})
        assert answer.status_code == 201, answer.text
    return items


# -- keys init ---------------------------------------------------------------------

def test_keys_init_refuses_once_a_manifest_exists(ceremony, services):
    grant = _grant_doc(services, 'oek-1', 'adv-1')
    for kid in ('oek-1b', 'oek-1'):
        result = ceremony.run(['keys', '--home', ceremony.homes['admin-1'], 'init', '--kid', kid,
                               '--org', ceremony.org, '--recovery', str(ceremony.recovery_file)],
                              f'{SIGNER_PASS}\n', ok=False)
        assert result.exit_code != 0 and 'keys rotate' in result.output, result.output
    manifest = ceremony.manifest()
    assert manifest['seq'] == 1 and [entry['kid'] for entry in manifest['keys']] == ['oek-1']
    assert _grant_doc(services, 'oek-1', 'adv-1') == grant
    assert _grant_doc(services, 'oek-1b', 'adv-1') is None


def test_keys_init_refuses_an_org_other_than_the_services(live, users, tmp_path, test_config,
                                                          services):
    ceremony = Ceremony(live.url, tmp_path, test_config.org,
                        lambda name, roles, team: users.create(name, roles, team=team))
    ceremony.login('admin-1', ['admin'])
    ceremony.run(['admin', '--home', ceremony.homes['admin-1'], 'init-signer'],
                 f'{SIGNER_PASS}\n{SIGNER_PASS}\n')
    recovery = tmp_path / 'recovery.json'
    ceremony.run(['recovery', 'create', '--out', str(recovery)], 'recovery pass long enough\n' * 2)
    args = ['keys', '--home', ceremony.homes['admin-1'], 'init', '--kid', 'oek-1',
            '--recovery', str(recovery)]
    result = ceremony.run([*args, '--org', 'acme'], f'{SIGNER_PASS}\n', ok=False)
    assert result.exit_code != 0 and "not this service's org" in result.output
    assert services.couch.get_or_none(services.db('config'), 'key-manifest') is None
    assert not list(services.couch.iter_prefix(services.db('keyvault'), 'grant:'))
    ceremony.run([*args, '--org', test_config.org], f'{SIGNER_PASS}\n')
    assert ceremony.manifest()['org'] == test_config.org


# -- the server's manifest rules ----------------------------------------------------------

def test_the_server_refuses_a_manifest_that_changes_org_drops_or_reuses_a_key_id(ceremony):
    signing_key = _signing_key(ceremony)
    admin = _bearer(ceremony.token('admin-1'))
    current = ceremony.manifest()
    oek1 = current['keys'][0]
    fresh_key = keys.OrgKeyPair.generate('oek-2')
    fresh = fresh_key.manifest_entry('active')
    demoted = dict(oek1, status='decrypt-only', accept_until='2999-01-01')

    def publish(org, entries, seq=2):
        body = keys.build_manifest(org, seq, entries)
        return httpx.put(ceremony.url + '/keys/manifest', headers=admin, timeout=10,
                         json={'signed': keys.sign_manifest(body, signing_key)})

    cases = [
        ('org_mismatch', 'acme', [fresh, demoted]),
        ('kid_dropped', ceremony.org, [fresh]),
        ('kid_reused', ceremony.org,
         [keys.OrgKeyPair.generate('oek-1').manifest_entry('active')]),
        ('kid_reused', ceremony.org, [fresh, dict(demoted, pub=fresh['pub'])]),
    ]
    for code, org, entries in cases:
        answer = publish(org, entries)
        assert answer.status_code in (409, 422) and answer.json()['code'] == code, code
    assert ceremony.manifest() == current
    # A proper rotation's manifest is accepted once a holder has the new
    # version; a version never goes back to active.
    grant = keys.seal_grant(fresh_key, _adv_public(ceremony, 'adv-1'), org=ceremony.org,
                            granted_by='admin-1', signing_key=signing_key)
    stored = httpx.post(ceremony.url + '/keys/grants', headers=admin, timeout=10,
                        json={'grants': [grant]})
    assert stored.status_code == 201, stored.text
    assert publish(ceremony.org, [fresh, demoted]).status_code == 200
    back = publish(ceremony.org, [dict(fresh, status='decrypt-only', accept_until='2999-01-01'),
                                  dict(oek1, status='active')], seq=3)
    assert back.status_code == 409 and back.json()['code'] == 'status_regressed'
    retired = {'kid': 'oek-1', 'suite': oek1['suite'], 'status': 'retired'}
    assert publish(ceremony.org, [fresh, retired], seq=3).status_code == 200
    revived = publish(ceremony.org, [fresh, dict(oek1, status='decrypt-only',
                                                 accept_until='2999-01-01')], seq=4)
    assert revived.status_code == 409 and revived.json()['code'] in ('kid_reused',
                                                                     'status_regressed')


# -- grants ---------------------------------------------------------------------------

def _adv_public(ceremony, name):
    mine = httpx.get(ceremony.url + '/advocates/me', headers=_bearer(ceremony.token(name)),
                     timeout=10).json()
    return mine['public']


def test_grants_signed_by_another_key_are_refused(ceremony, services):
    public = _adv_public(ceremony, 'adv-1')
    planted = keys.seal_grant(keys.OrgKeyPair.generate('oek-9'), public, org=ceremony.org,
                              granted_by='admin-1', signing_key=keys.SigningKey.generate())
    answer = httpx.post(ceremony.url + '/keys/grants', timeout=10,
                        headers=_bearer(ceremony.token('admin-1')), json={'grants': [planted]})
    assert answer.status_code == 422 and 'org signer' in answer.json()['description']
    assert _grant_doc(services, 'oek-9', 'adv-1') is None
    # adv-1's keyring still loads and opens.
    items = _submit(ceremony)
    opened = ceremony.run(['advocate', '--home', ceremony.homes['adv-1'], 'open',
                           items[0][1]['_id'], '--purpose', 'case_management'], f'{KEY_PASS}\n')
    assert items[0][0]['notes'] in opened.output


def test_a_grant_is_never_replaced_with_another_key_and_an_admin_can_remove_one(
        ceremony, services):
    signing_key = _signing_key(ceremony)
    admin = _bearer(ceremony.token('admin-1'))
    stored = _grant_doc(services, 'oek-1', 'adv-2')
    other = keys.seal_grant(keys.OrgKeyPair.generate('oek-1'), _adv_public(ceremony, 'adv-2'),
                            org=ceremony.org, granted_by='admin-1', signing_key=signing_key)
    answer = httpx.post(ceremony.url + '/keys/grants', headers=admin, timeout=10,
                        json={'grants': [other]})
    assert answer.status_code == 409 and answer.json()['code'] == 'grant_exists'
    assert _grant_doc(services, 'oek-1', 'adv-2') == stored
    # The same grant again is no change.
    same = {k: v for k, v in stored.items() if k != '_rev'}
    assert httpx.post(ceremony.url + '/keys/grants', headers=admin, timeout=10,
                      json={'grants': [same]}).status_code == 201
    assert _grant_doc(services, 'oek-1', 'adv-2')['_rev'] == stored['_rev']

    # Removing one grant: the CLI asks, the server deletes and audits it.
    result = ceremony.run(['keys', '--home', ceremony.homes['admin-1'], 'remove-grant', '--kid',
                           'oek-1', '--advocate', 'adv-2'], 'n\n', ok=False)
    assert result.exit_code != 0 and _grant_doc(services, 'oek-1', 'adv-2') is not None
    ceremony.run(['keys', '--home', ceremony.homes['admin-1'], 'remove-grant', '--kid', 'oek-1',
                  '--advocate', 'adv-2', '--yes'])
    assert _grant_doc(services, 'oek-1', 'adv-2') is None
    assert _grant_doc(services, 'oek-1', 'adv-1') is not None
    events = _audit(services, 'grant_removed')
    assert [(e['actor'], e['subject'], e['details']) for e in events] == [
        ('user:admin-1', 'user:adv-2', {'kek': 'oek-1'})]
    gone = httpx.delete(ceremony.url + '/keys/grants/oek-1/adv-2', headers=admin, timeout=10)
    assert gone.status_code == 404
    # The admin alone cannot grant the version back: adv-2 no longer holds it,
    # and a new holder needs a second person (a holder's share).
    again = httpx.post(ceremony.url + '/keys/grants', headers=admin, timeout=10,
                       json={'grants': [same]})
    assert again.status_code == 409 and again.json()['code'] == 'not_a_holder'


# -- the advocate's client ------------------------------------------------------------

def test_open_ignores_a_stray_grant_of_a_version_the_manifest_does_not_list(ceremony, services):
    items = _submit(ceremony)
    # A stray grant, as a botched ceremony left them: signed, but of an unlisted version
    # and unopenable by adv-1 (it is sealed to another key).
    stray = keys.seal_grant(keys.OrgKeyPair.generate('oek-1b'),
                            keys.AdvocateKey.generate('adv-1').public_record(),
                            org=ceremony.org, granted_by='admin-1',
                            signing_key=_signing_key(ceremony))
    stray['apk'] = _adv_public(ceremony, 'adv-1')['apk']
    stray['sig'] = _signing_key(ceremony).sign({k: v for k, v in stray.items() if k != 'sig'})
    services.couch.put(services.db('keyvault'), stray)
    opened = ceremony.run(['advocate', '--home', ceremony.homes['adv-1'], 'open',
                           items[0][1]['_id'], '--purpose', 'case_management'], f'{KEY_PASS}\n')
    assert items[0][0]['notes'] in opened.output


def test_open_tells_a_wrong_passphrase_from_a_missing_grant_and_reports_failures(
        ceremony, services, users):
    items = _submit(ceremony)
    record_id = items[0][1]['_id']
    # Certified after oek-1 existed: holds no grant of it.
    home = ceremony.login('adv-late', ['advocate'])
    out = ceremony.run(['advocate', '--home', home, 'enroll'], f'{KEY_PASS}\n{KEY_PASS}\n').output
    ceremony.run(['admin', '--home', ceremony.homes['admin-1'], 'certify', 'adv-late',
                  '--fingerprint', out.split('admin: ')[1].strip()], f'{SIGNER_PASS}\n')
    ceremony.run(['pin', '--home', home, '--fingerprint', ceremony.signer_fingerprint])

    wrong = ceremony.run(['advocate', '--home', home, 'open', record_id, '--purpose',
                          'case_management'], 'not my passphrase at all\n', ok=False)
    assert wrong.exit_code != 0 and 'wrong passphrase' in wrong.output
    missing = ceremony.run(['advocate', '--home', home, 'open', record_id, '--purpose',
                            'case_management'], f'{KEY_PASS}\n', ok=False)
    assert missing.exit_code != 0
    assert 'you hold no grant of oek-1' in missing.output
    assert 'wrong passphrase' not in missing.output

    # The server released the ciphertext once (the wrong passphrase stopped before it)
    # and heard of the failure, as a code.
    released = [e for e in _audit(services, 'record_released') if e['actor'] == 'user:adv-late']
    failed = _audit(services, 'record_open_failed')
    assert [(e['subject'], e['details']['purpose']) for e in released] == [
        (record_id, 'case_management')]
    assert [(e['actor'], e['subject'], e['details']) for e in failed] == [
        ('user:adv-late', record_id, {'code': 'no_grant'})]
    assert items[0][0]['notes'] not in json.dumps(failed)


def test_open_failure_reports_take_codes_only_and_keep_to_the_team(ceremony, services, users):
    items = _submit(ceremony)
    record_id = items[0][1]['_id']
    url = f'{ceremony.url}/records/{record_id}/open-failures'
    mine = _bearer(ceremony.token('adv-1'))
    for body in ({}, {'code': 'oops'}, {'code': 'no_grant', 'note': items[0][0]['notes']},
                 {'code': items[0][0]['notes']}, ['no_grant']):
        answer = httpx.post(url, headers=mine, json=body, timeout=10)
        assert answer.status_code == 422, body
        assert items[0][0]['notes'] not in answer.text
    users.create('adv-b', ['advocate'], team='team-b')
    other = users.token('adv-b')
    assert httpx.post(url, headers=_bearer(other), json={'code': 'no_grant'},
                      timeout=10).status_code == 404
    assert httpx.post(url, headers=_bearer(ceremony.token('worker-1')),
                      json={'code': 'no_grant'}, timeout=10).status_code == 403
    assert httpx.post(url, headers=mine, json={'code': 'record_unopenable'},
                      timeout=10).status_code == 201
    assert [e['details'] for e in _audit(services, 'record_open_failed')] == [
        {'code': 'record_unopenable'}]


def test_open_refuses_a_record_sealed_to_a_version_the_manifest_does_not_list(
        ceremony, services):
    # A grant and a record of a version the signed manifest never listed (as a
    # botched or forged ceremony would leave them): the client does not use it.
    signing_key = _signing_key(ceremony)
    unlisted = keys.OrgKeyPair.generate('oek-1b')
    grant = keys.seal_grant(unlisted, _adv_public(ceremony, 'adv-1'), org=ceremony.org,
                            granted_by='admin-1', signing_key=signing_key)
    services.couch.put(services.db('keyvault'), grant)
    body = keys.build_manifest(ceremony.org, 1, [unlisted.manifest_entry('active')])
    (_plain, sealed, envelope), = sealed_records(ceremony.org, body, 'worker-1', 1)
    services.couch.put(services.db('records'), sealed)
    services.couch.put(services.db('keyvault'), envelope)
    result = ceremony.run(['advocate', '--home', ceremony.homes['adv-1'], 'open',
                           sealed['_id'], '--purpose', 'case_management'], f'{KEY_PASS}\n',
                          ok=False)
    assert result.exit_code != 0 and 'you hold no grant of oek-1b' in result.output
    assert _plain['notes'] not in result.output
