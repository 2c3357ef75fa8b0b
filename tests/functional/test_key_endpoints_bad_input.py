"""Bad input to every key-distribution and record endpoint: a clear 4xx with
the one error shape, and nothing stored."""

from __future__ import annotations

import pytest

import keys

pytestmark = pytest.mark.functional


@pytest.fixture
def signer(client, users, role_tokens):
    signing_key = keys.SigningKey.generate()
    result = client.simulate_put('/keys/signer', json={'public': signing_key.public_b64()},
                                 headers=users.bearer(role_tokens['admin']))
    assert result.status_code == 201
    return signing_key


@pytest.mark.parametrize('method, path, role, body, status, code', [
    ('PUT', '/keys/signer', 'admin', [], 422, 'validation_failed'),
    ('PUT', '/keys/signer', 'admin', {'public': 'x', 'extra': 1}, 422, 'validation_failed'),
    ('PUT', '/keys/signer', 'admin', {'public': 'not-a-point'}, 422, 'invalid_key_material'),
    ('PUT', '/keys/manifest', 'admin', {}, 422, 'validation_failed'),
    ('POST', '/keys/grants', 'admin', {'grants': []}, 422, 'validation_failed'),
    ('POST', '/advocates/keys', 'advocate', {'public': {}, 'wrapped': {}}, 422,
     'invalid_key_material'),
    ('POST', '/advocates/keys', 'advocate', {'public': 1}, 422, 'validation_failed'),
    ('PUT', '/advocates/keys/advocate-1/certificate', 'admin', {'certificate': {}}, 404,
     'not_found'),
    ('POST', '/records', 'worker', {'document': {}}, 422, 'validation_failed'),
    ('POST', '/records', 'worker', {'document': {'type': 'contact'}, 'envelopes': []}, 422,
     'validation_failed'),
    ('POST', '/records/contact:none/open', 'advocate', {}, 422, 'purpose_required'),
    ('POST', '/records/contact:none/open', 'advocate', {'purpose': 'x'}, 422,
     'purpose_required'),
    ('POST', '/records/contact:none/open', 'advocate', {'purpose': 'case review'}, 422,
     'purpose_required'),
    ('POST', '/records/contact:none/open', 'advocate',
     {'purpose': 'case_management', 'note': 'x'}, 422, 'purpose_required'),
    ('POST', '/records/contact:none/open', 'advocate', {'purpose': 'case_management'}, 404,
     'not_found'),
])
def test_bad_input_is_refused_clearly(client, users, role_tokens, method, path, role, body,
                                      status, code):
    result = client.simulate_request(method, path, json=body,
                                     headers=users.bearer(role_tokens[role]))
    assert result.status_code == status, result.text
    assert result.json['code'] == code, result.json
    assert 'Traceback' not in result.text


def test_manifest_without_a_pinned_signer_is_409(client, users, role_tokens):
    result = client.simulate_put('/keys/manifest', json={'signed': {}},
                                 headers=users.bearer(role_tokens['admin']))
    assert result.status_code == 409 and result.json['code'] == 'no_signer'


def test_manifest_signed_by_another_key_is_refused(client, users, role_tokens, signer):
    body = keys.build_manifest('org-test', 1,
                               [keys.OrgKeyPair.generate('oek-1').manifest_entry('active')])
    forged = keys.sign_manifest(body, keys.SigningKey.generate())
    result = client.simulate_put('/keys/manifest', json={'signed': forged},
                                 headers=users.bearer(role_tokens['admin']))
    assert result.status_code == 422 and result.json['code'] == 'invalid_manifest'
    assert client.simulate_get('/keys/manifest').status_code == 404


def test_manifest_rollback_is_refused(client, users, role_tokens, signer):
    admin = users.bearer(role_tokens['admin'])
    entry = keys.OrgKeyPair.generate('oek-1').manifest_entry('active')
    for seq, expected in ((2, 200), (1, 422), (2, 422), (3, 200)):
        signed = keys.sign_manifest(keys.build_manifest('org-test', seq, [entry]), signer)
        result = client.simulate_put('/keys/manifest', json={'signed': signed}, headers=admin)
        assert result.status_code == expected, (seq, result.text)
    assert client.simulate_get('/keys/manifest').json['signed']['body']['seq'] == 3


def test_second_signer_is_refused(client, users, role_tokens, signer):
    result = client.simulate_put('/keys/signer',
                                 json={'public': keys.SigningKey.generate().public_b64()},
                                 headers=users.bearer(role_tokens['admin']))
    assert result.status_code == 409 and result.json['code'] == 'signer_pinned'


def test_certificate_from_another_signer_is_refused(client, users, role_tokens, signer):
    advocate_key = keys.AdvocateKey.generate('advocate-1')
    wrapped = advocate_key.wrap('a long enough passphrase',
                                params=keys.Argon2Params(memory_kib=1024, iterations=1))
    enrolled = client.simulate_post(
        '/advocates/keys', json={'public': advocate_key.public_record(), 'wrapped': wrapped},
        headers=users.bearer(role_tokens['advocate']))
    assert enrolled.status_code == 201
    forged = keys.certify_advocate_key(advocate_key.public_record(), keys.SigningKey.generate(),
                                       certified_by='admin-1')
    result = client.simulate_put('/advocates/keys/advocate-1/certificate',
                                 json={'certificate': forged},
                                 headers=users.bearer(role_tokens['admin']))
    assert result.status_code == 422 and result.json['code'] == 'invalid_key_material'


def test_an_advocate_cannot_enroll_a_key_for_someone_else(client, users, role_tokens):
    other = keys.AdvocateKey.generate('someone-else')
    wrapped = other.wrap('a long enough passphrase',
                         params=keys.Argon2Params(memory_kib=1024, iterations=1))
    result = client.simulate_post('/advocates/keys',
                                  json={'public': other.public_record(), 'wrapped': wrapped},
                                  headers=users.bearer(role_tokens['advocate']))
    assert result.status_code == 422 and result.json['code'] == 'key_mismatch'
