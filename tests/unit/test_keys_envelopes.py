"""RK envelopes: validation, opening on their own, and rewrap for rotation."""

from __future__ import annotations

import copy

import pytest

import keys
from keys import InvalidCiphertext, InvalidKeyMaterial, Keyring, OrgKeyPair
from keys._encoding import b64url_decode, b64url_encode

pytestmark = pytest.mark.unit

ORG = 'org-acme'
PATHS = ['/full_name']
OLD_KEY = OrgKeyPair.generate('oek-2026-03')
NEW_KEY = OrgKeyPair.generate('oek-2026-09')
MANIFEST = keys.build_manifest(ORG, 1, [OLD_KEY.manifest_entry()])
DOC = {'_id': 'contact:1', 'type': 'contact', 'full_name': 'Jane Q. Example'}


def sealed_pair():
    return keys.seal_document(DOC, paths=PATHS, org=ORG, manifest_body=MANIFEST, device='dev-7')


def test_open_envelope_returns_the_record_key():
    sealed, envelope = sealed_pair()
    rk = keys.open_envelope(envelope, Keyring([OLD_KEY]), ORG)
    assert len(rk) == 32


@pytest.mark.parametrize('change', [
    {'doc': 'contact:2'}, {'rkid': '0' * 32}, {'kek': 'oek-2026-09'}, {'org': 'org-other'},
    {'suite': 'hpke:0x0010-0x0001-0x0001'}, {'ct': 'AAAA'}, {'enc': 'AAAA'}, {'type': 'grant'},
])
def test_open_envelope_fails_opaquely_on_any_change(change):
    _, envelope = sealed_pair()
    keyring = Keyring([OLD_KEY, NEW_KEY])
    with pytest.raises(InvalidCiphertext):
        keys.open_envelope({**envelope, **change}, keyring, ORG)


def test_open_envelope_of_another_org_fails():
    _, envelope = sealed_pair()
    with pytest.raises(InvalidCiphertext):
        keys.open_envelope(envelope, Keyring([OLD_KEY]), 'org-other')


def test_validate_envelope_accepts_couchdb_members():
    _, envelope = sealed_pair()
    keys.validate_envelope(
        {**envelope, '_rev': '1-abc', '_revisions': {'start': 1, 'ids': ['abc']}})


@pytest.mark.parametrize(('change', 'member'), [
    ({'_id': 'rk:other'}, "'_id'"),
    ({'type': 'rk2'}, "'type'"),
    ({'org': 'bad org'}, "'org'"),
    ({'kek': ''}, "'kek'"),
    ({'doc': '_design/x'}, "'doc'"),
    ({'rkid': 'ABC'}, "'rkid'"),
    ({'suite': 'hpke:0x0020-0x0001-0x0003'}, "'suite'"),
    ({'enc': 'not base64!'}, "'enc'"),
    ({'ct': 'AAAA'}, "'ct'"),
    ({'dev': 'dev 7'}, "'dev'"),
    ({'at': 'yesterday'}, "'at'"),
    ({'_attachments': {}}, 'unknown member'),
    ({'extra': 1}, 'unknown member'),
])
def test_validate_envelope_names_the_failing_member(change, member):
    _, envelope = sealed_pair()
    with pytest.raises(InvalidKeyMaterial) as caught:
        keys.validate_envelope({**envelope, **change})
    assert member in str(caught.value)


def test_validate_envelope_refuses_missing_members_and_off_curve_points():
    _, envelope = sealed_pair()
    without = dict(envelope)
    del without['enc']
    with pytest.raises(InvalidKeyMaterial, match="'enc' is missing"):
        keys.validate_envelope(without)
    point = bytearray(b64url_decode(envelope['enc']))
    point[-1] ^= 1
    with pytest.raises(InvalidKeyMaterial, match='not a valid P-256 point'):
        keys.validate_envelope({**envelope, 'enc': b64url_encode(bytes(point))})
    with pytest.raises(InvalidKeyMaterial):
        keys.validate_envelope(['not', 'an', 'object'])


def test_rewrap_moves_an_envelope_to_the_new_key_version_in_place():
    sealed, envelope = sealed_pair()
    stored = {**envelope, '_rev': '3-abc'}
    before_record = copy.deepcopy(sealed)
    rewrapped = keys.rewrap_envelope(
        stored, keyring=Keyring([OLD_KEY]), new_key_public_b64=NEW_KEY.public_b64(),
        new_kid=NEW_KEY.kid, org=ORG)
    assert rewrapped['_id'] == stored['_id'] and rewrapped['_rev'] == '3-abc'
    assert rewrapped['kek'] == NEW_KEY.kid
    assert {rewrapped[name] for name in ('doc', 'rkid', 'dev', 'at')} == {
        stored[name] for name in ('doc', 'rkid', 'dev', 'at')}
    assert rewrapped['enc'] != stored['enc'] and rewrapped['ct'] != stored['ct']
    keys.validate_envelope(rewrapped)
    # Only the new version opens it; the record document is untouched.
    assert keys.open_envelope(rewrapped, Keyring([NEW_KEY]), ORG) == keys.open_envelope(
        stored, Keyring([OLD_KEY]), ORG)
    with pytest.raises(InvalidCiphertext):
        keys.open_envelope(rewrapped, Keyring([OLD_KEY]), ORG)
    assert sealed == before_record
    opened = keys.open_document(sealed, envelopes=[rewrapped], keyring=Keyring([NEW_KEY]),
                                paths=PATHS, org=ORG)
    assert opened == DOC


def test_rewrap_refuses_without_the_old_key_or_with_a_bad_new_key():
    _, envelope = sealed_pair()
    with pytest.raises(InvalidCiphertext):
        keys.rewrap_envelope(envelope, keyring=Keyring([NEW_KEY]),
                             new_key_public_b64=NEW_KEY.public_b64(), new_kid=NEW_KEY.kid, org=ORG)
    with pytest.raises(InvalidKeyMaterial):
        keys.rewrap_envelope(envelope, keyring=Keyring([OLD_KEY]),
                             new_key_public_b64='AAAA', new_kid=NEW_KEY.kid, org=ORG)
    with pytest.raises(InvalidKeyMaterial):
        keys.rewrap_envelope(envelope, keyring=Keyring([OLD_KEY]),
                             new_key_public_b64=NEW_KEY.public_b64(), new_kid='bad kid', org=ORG)
