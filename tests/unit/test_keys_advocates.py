"""Advocate keys, certificates, grants and the keyring."""

from __future__ import annotations

import re

import pytest

import keys
from keys import (
    AdvocateKey,
    Argon2Params,
    InvalidCiphertext,
    InvalidKeyMaterial,
    Keyring,
    OrgKeyPair,
    SigningKey,
    WeakPassphrase,
)
from keys._encoding import b64url_decode, b64url_encode

pytestmark = pytest.mark.unit

ORG = 'org-acme'
PASSPHRASE = 'correct horse battery staple'
#: Cheap Argon2id for tests that wrap many times; one test below uses the defaults.
CHEAP = Argon2Params(memory_kib=64, iterations=1)
ADMIN = SigningKey.generate()
ADVOCATE = AdvocateKey.generate('adv-17', 'apk-adv-17-1')
ORG_KEY = OrgKeyPair.generate('oek-2026-03')


def grant_for(advocate: AdvocateKey = ADVOCATE, org_key: OrgKeyPair = ORG_KEY,
              signer: SigningKey = ADMIN) -> dict:
    return keys.seal_grant(org_key, advocate.public_record(), org=ORG, granted_by='admin-2',
                           signing_key=signer)


# -- Advocate keys ------------------------------------------------------------


def test_public_record_and_fingerprint():
    record = ADVOCATE.public_record()
    assert record == {'advocate': 'adv-17', 'apk': 'apk-adv-17-1', 'suite': keys.SUITE,
                      'pub': ADVOCATE.public_b64(), 'fingerprint': ADVOCATE.fingerprint()}
    assert len(b64url_decode(record['pub'])) == 65
    assert re.fullmatch(r'([0-9a-f]{4} ){15}[0-9a-f]{4}', record['fingerprint'])
    assert keys.fingerprint(record['pub']) == record['fingerprint']


def test_generated_key_ids_are_random():
    first, second = AdvocateKey.generate('adv-1'), AdvocateKey.generate('adv-1')
    assert first.key_id != second.key_id and first.key_id.startswith('apk-')


def test_wrap_unwrap_with_the_default_parameters():
    blob = ADVOCATE.wrap(PASSPHRASE)
    assert (blob['kdf'], blob['m'], blob['t'], blob['p']) == ('argon2id', 19456, 2, 1)
    assert set(blob) == {'v', 'kdf', 'm', 't', 'p', 'salt', 'n', 'ct', 'advocate', 'apk', 'pub'}
    unwrapped = AdvocateKey.unwrap(blob, PASSPHRASE)
    assert unwrapped.public_record() == ADVOCATE.public_record()


def test_wrapped_blob_holds_no_private_key_bytes():
    blob = ADVOCATE.wrap(PASSPHRASE, params=CHEAP)
    scalar = b64url_encode(
        ADVOCATE._private_key.private_numbers().private_value.to_bytes(32, 'big'))
    assert scalar not in str(blob)


def test_passphrases_are_compared_after_nfc_normalisation():
    composed, decomposed = 'contrase\u00f1a segura 2026', 'contrasen\u0303a segura 2026'
    blob = ADVOCATE.wrap(composed, params=CHEAP)
    assert AdvocateKey.unwrap(blob, decomposed).public_b64() == ADVOCATE.public_b64()


def test_short_passphrases_are_refused():
    with pytest.raises(WeakPassphrase):
        ADVOCATE.wrap('short pass', params=CHEAP)
    with pytest.raises(WeakPassphrase):
        ADMIN.to_pem('11 chars!!!')


@pytest.mark.parametrize('tamper', [
    lambda blob: blob,  # with the wrong passphrase below
    lambda blob: {**blob, 'ct': b64url_encode(bytes(48))},
    lambda blob: {**blob, 'salt': b64url_encode(bytes(16))},
    lambda blob: {**blob, 'advocate': 'adv-18'},
    lambda blob: {**blob, 'apk': 'apk-other'},
    lambda blob: {**blob, 'pub': AdvocateKey.generate('x').public_b64()},
    lambda blob: {**blob, 'm': 2**31},
    lambda blob: {**blob, 't': 0},
    lambda blob: {**blob, 'p': True},
    lambda blob: {**blob, 'kdf': 'scrypt'},
    lambda blob: {**blob, 'v': 2},
    lambda blob: {**blob, 'n': 'AAAA'},
    lambda blob: {key: value for key, value in blob.items() if key != 'pub'},
    lambda blob: 'not a blob',
], ids=['wrong passphrase', 'ct', 'salt', 'advocate', 'apk', 'pub', 'memory bound',
        'iterations bound', 'lanes type', 'kdf', 'version', 'nonce', 'missing member', 'type'])
def test_unwrap_fails_opaquely(tamper):
    blob = ADVOCATE.wrap(PASSPHRASE, params=CHEAP)
    passphrase = PASSPHRASE + '!' if tamper(blob) is blob else PASSPHRASE
    with pytest.raises(InvalidCiphertext):
        AdvocateKey.unwrap(tamper(blob), passphrase)


def test_recovery_key_is_an_advocate_key():
    recovery = AdvocateKey.generate(keys.RECOVERY_ADVOCATE)
    grant = grant_for(recovery)
    assert grant['_id'] == f'grant:{ORG_KEY.kid}:recovery'
    opened = keys.open_grant(grant, recovery, org=ORG, pinned_public_b64=ADMIN.public_b64())
    assert opened.public_b64() == ORG_KEY.public_b64()


# -- Certificates -------------------------------------------------------------


def test_certificate_round_trip():
    cert = keys.certify_advocate_key(ADVOCATE.public_record(), ADMIN, certified_by='admin-2')
    body = keys.verify_certificate(cert, ADMIN.public_b64())
    assert body['type'] == 'fle/1/cert' and body['certified_by'] == 'admin-2'
    assert body['pub'] == ADVOCATE.public_b64()


def test_certificate_with_a_lying_fingerprint_is_not_issued():
    record = {**ADVOCATE.public_record(), 'fingerprint': AdvocateKey.generate('x').fingerprint()}
    with pytest.raises(InvalidKeyMaterial, match='fingerprint'):
        keys.certify_advocate_key(record, ADMIN, certified_by='admin-2')


@pytest.mark.parametrize('tamper', [
    lambda cert: cert['body'].update(pub=AdvocateKey.generate('x').public_b64()),
    lambda cert: cert['body'].update(advocate='adv-18'),
    lambda cert: cert.update(sig=cert['sig'][::-1]),
    lambda cert: cert.update(alg='ES384'),
], ids=['pub swapped', 'advocate', 'signature', 'alg'])
def test_tampered_certificates_are_refused(tamper):
    cert = keys.certify_advocate_key(ADVOCATE.public_record(), ADMIN, certified_by='admin-2')
    tamper(cert)
    with pytest.raises(InvalidKeyMaterial, match='certificate is not valid'):
        keys.verify_certificate(cert, ADMIN.public_b64())


def test_a_manifest_signature_does_not_verify_as_a_certificate():
    body = keys.build_manifest(ORG, 1, [ORG_KEY.manifest_entry()])
    with pytest.raises(InvalidKeyMaterial):
        keys.verify_certificate(keys.sign_manifest(body, ADMIN), ADMIN.public_b64())


# -- Grants and the keyring ---------------------------------------------------


def test_grant_shape_and_round_trip():
    grant = grant_for()
    assert set(grant) == {'_id', 'type', 'kek', 'advocate', 'apk', 'suite', 'enc', 'ct',
                          'granted_by', 'sig'}
    assert grant['_id'] == 'grant:oek-2026-03:adv-17' and grant['type'] == 'grant'
    assert len(b64url_decode(grant['ct'])) == 48
    keys.validate_grant({**grant, '_rev': '1-a'})
    org_key = keys.open_grant(grant, ADVOCATE, org=ORG, pinned_public_b64=ADMIN.public_b64())
    assert (org_key.kid, org_key.public_b64()) == (ORG_KEY.kid, ORG_KEY.public_b64())


def test_a_grant_opened_key_opens_documents():
    manifest = keys.build_manifest(ORG, 1, [ORG_KEY.manifest_entry()])
    doc = {'_id': 'contact:9', 'full_name': 'Jane Q. Example'}
    sealed, envelope = keys.seal_document(
        doc, paths=['/full_name'], org=ORG, manifest_body=manifest)
    keyring = Keyring.from_grants([grant_for()], ADVOCATE, org=ORG,
                                  pinned_public_b64=ADMIN.public_b64())
    assert keyring.kids == (ORG_KEY.kid,) and ORG_KEY.kid in keyring and len(keyring) == 1
    assert keys.open_document(sealed, envelopes=[envelope], keyring=keyring,
                              paths=['/full_name'], org=ORG) == doc


@pytest.mark.parametrize('case', [
    'planted by the server', 'signature', 'ct after signing', 'kek relabelled',
    'another advocate', 'another apk', 'wrong org', 'malformed',
])
def test_grants_fail_opaquely(case):
    grant, advocate, org = grant_for(), ADVOCATE, ORG
    if case == 'planted by the server':
        grant = grant_for(signer=SigningKey.generate())
    elif case == 'signature':
        grant['sig'] = grant['sig'][::-1]
    elif case == 'ct after signing':
        grant['ct'] = grant_for()['ct']  # A fresh, valid ciphertext the admin never signed.
    elif case == 'kek relabelled':
        grant['kek'] = 'oek-2026-09'
    elif case == 'another advocate':
        advocate = AdvocateKey.generate('adv-18', 'apk-adv-17-1')
    elif case == 'another apk':
        advocate = AdvocateKey.generate('adv-17', 'apk-adv-17-2')
    elif case == 'wrong org':
        org = 'org-other'
    elif case == 'malformed':
        grant = {'type': 'grant'}
    with pytest.raises(InvalidCiphertext):
        keys.open_grant(grant, advocate, org=org, pinned_public_b64=ADMIN.public_b64())


def test_grant_to_an_uncertifiable_record_is_refused():
    with pytest.raises(InvalidKeyMaterial):
        keys.seal_grant(ORG_KEY, {'advocate': 'adv-17'}, org=ORG, granted_by='admin-2',
                        signing_key=ADMIN)


@pytest.mark.parametrize(('change', 'member'), [
    ({'_id': 'grant:x:y'}, "'_id'"), ({'suite': 'x'}, "'suite'"), ({'enc': 'AAAA'}, "'enc'"),
    ({'ct': 'AAAA'}, "'ct'"), ({'sig': 'AAAA'}, "'sig'"), ({'type': 'rk'}, "'type'"),
    ({'extra': 1}, 'unknown members'),
])
def test_validate_grant_names_the_member(change, member):
    with pytest.raises(InvalidKeyMaterial) as caught:
        keys.validate_grant({**grant_for(), **change})
    assert member in str(caught.value)


def test_keyring_refuses_empty_and_duplicate_kids():
    with pytest.raises(InvalidKeyMaterial):
        Keyring([])
    with pytest.raises(InvalidKeyMaterial):
        Keyring([ORG_KEY, OrgKeyPair.generate(ORG_KEY.kid)])
    with pytest.raises(InvalidKeyMaterial):
        Keyring(['not a key'])


def test_keyring_from_grants_fails_on_any_bad_grant():
    bad = grant_for()
    bad['sig'] = bad['sig'][::-1]
    with pytest.raises(InvalidCiphertext):
        Keyring.from_grants([grant_for(), bad], ADVOCATE, org=ORG,
                            pinned_public_b64=ADMIN.public_b64())


def test_reprs_never_show_key_material():
    for value in (ADVOCATE, ORG_KEY, ADMIN, Keyring([ORG_KEY])):
        text = repr(value)
        assert 'private' not in text.lower()
        assert ORG_KEY.public_b64() not in text
