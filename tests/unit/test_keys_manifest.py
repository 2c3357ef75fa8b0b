"""Signed key manifests: build, sign, verify, rollback, active key."""

from __future__ import annotations

import copy

import pytest

import keys
from keys import InvalidKeyMaterial, InvalidManifest, OrgKeyPair, SigningKey
from keys._encoding import b64url_decode, canonical_json

pytestmark = pytest.mark.unit

ORG = 'org-acme'
SIGNER = SigningKey.generate()
CURRENT = OrgKeyPair.generate('oek-2026-09')
PREVIOUS = OrgKeyPair.generate('oek-2026-03')


def rotated_body(seq: int = 2) -> dict:
    return keys.build_manifest(ORG, seq, [
        CURRENT.manifest_entry(),
        PREVIOUS.manifest_entry('decrypt-only', accept_until='2026-04-30'),
        {'kid': 'oek-2025-09', 'suite': keys.SUITE, 'status': 'retired'},
    ])


def test_build_sign_verify_round_trip():
    body = rotated_body()
    signed = keys.sign_manifest(body, SIGNER)
    assert set(signed) == {'body', 'sig', 'alg', 'signer'}
    assert signed['alg'] == 'ES256' and signed['signer'] == SIGNER.fingerprint()
    assert len(b64url_decode(signed['sig'])) == 64
    assert body['type'] == 'fle/1/manifest'
    assert keys.verify_manifest(signed, SIGNER.public_b64(), min_seq=2) == body


def test_signatures_are_deterministic_rfc6979():
    body = rotated_body()
    assert keys.sign_manifest(body, SIGNER) == keys.sign_manifest(body, SIGNER)


def test_active_key_is_the_one_to_seal_to():
    assert keys.active_key(rotated_body())['kid'] == CURRENT.kid
    with pytest.raises(InvalidManifest):
        keys.active_key({'type': 'fle/1/manifest', 'org': ORG, 'seq': 1, 'keys': []})


def test_rollback_is_refused_and_equal_seq_accepted():
    signed = keys.sign_manifest(rotated_body(2), SIGNER)
    keys.verify_manifest(signed, SIGNER.public_b64(), min_seq=2)
    with pytest.raises(InvalidManifest):
        keys.verify_manifest(signed, SIGNER.public_b64(), min_seq=3)


def test_a_manifest_signed_by_another_key_is_refused():
    signed = keys.sign_manifest(rotated_body(), SigningKey.generate())
    with pytest.raises(InvalidManifest):
        keys.verify_manifest(signed, SIGNER.public_b64())


@pytest.mark.parametrize('tamper', [
    lambda signed: signed['body'].update(seq=99),
    lambda signed: signed['body']['keys'][0].update(pub=PREVIOUS.public_b64()),
    lambda signed: signed.update(sig=signed['sig'][::-1]),
    lambda signed: signed.update(sig=signed['sig'] + 'A'),
    lambda signed: signed.update(alg='none'),
    lambda signed: signed.update(signer='0000'),
    lambda signed: signed.pop('signer'),
    lambda signed: signed.update(extra=1),
    lambda signed: signed.update(body='not an object'),
], ids=['seq', 'pub swapped', 'sig reversed', 'sig extended', 'alg', 'signer', 'no signer',
        'extra member', 'body type'])
def test_any_tampering_is_the_same_opaque_error(tamper):
    signed = keys.sign_manifest(rotated_body(), SIGNER)
    tamper(signed)
    with pytest.raises(InvalidManifest) as caught:
        keys.verify_manifest(signed, SIGNER.public_b64())
    assert str(caught.value) == InvalidManifest.MESSAGE


def test_a_validly_signed_but_malformed_body_is_refused():
    body = rotated_body()
    body['keys'].append(copy.deepcopy(body['keys'][0]))  # Two active keys, same kid.
    signed = {'body': body, 'sig': SIGNER.sign(body), 'alg': 'ES256',
              'signer': SIGNER.fingerprint()}
    with pytest.raises(InvalidManifest):
        keys.verify_manifest(signed, SIGNER.public_b64())


def test_a_malformed_pinned_key_is_a_configuration_error():
    signed = keys.sign_manifest(rotated_body(), SIGNER)
    with pytest.raises(InvalidKeyMaterial):
        keys.verify_manifest(signed, 'AAAA')


@pytest.mark.parametrize(('org', 'seq', 'entries', 'member'), [
    ('org acme', 1, None, "'org'"),
    (ORG, 0, None, "'seq'"),
    (ORG, True, None, "'seq'"),
    (ORG, 1, [], "'keys'"),
    (ORG, 1, [{'kid': 'k1', 'suite': keys.SUITE, 'status': 'decrypt-only'}], 'exactly one active'),
    (ORG, 1, [{'kid': 'k1', 'suite': 'hpke:0x0020-0x0001-0x0003', 'status': 'active'}], '.suite'),
    (ORG, 1, [{'kid': 'k1', 'suite': keys.SUITE, 'status': 'active'}], '.pub'),
    (ORG, 1, [{'kid': 'k1', 'suite': keys.SUITE, 'status': 'active', 'pub': 'AAAA'}], '.pub'),
    (ORG, 1, [{'kid': 'k1', 'suite': keys.SUITE, 'status': 'paused', 'pub': 'x'}], '.status'),
    (ORG, 1, 'accept_until on active', '.accept_until'),
    (ORG, 1, 'bad accept_until', '.accept_until'),
    (ORG, 1, 'extra member', 'unknown members'),
])
def test_build_manifest_names_the_failing_member(org, seq, entries, member):
    if entries is None:
        entries = [CURRENT.manifest_entry()]
    elif entries == 'accept_until on active':
        entries = [CURRENT.manifest_entry(accept_until='2026-04-30')]
    elif entries == 'bad accept_until':
        entries = [CURRENT.manifest_entry(), PREVIOUS.manifest_entry('decrypt-only', '30/04/2026')]
    elif entries == 'extra member':
        entries = [{**CURRENT.manifest_entry(), 'private': 'x'}]
    with pytest.raises(InvalidKeyMaterial) as caught:
        keys.build_manifest(org, seq, entries)
    assert member in str(caught.value)


def test_manifest_signature_covers_exactly_the_canonical_body():
    body = rotated_body()
    signed = keys.sign_manifest(body, SIGNER)
    reordered = dict(reversed(list(signed['body'].items())))
    assert canonical_json(reordered) == canonical_json(body)
    assert keys.verify_manifest({**signed, 'body': reordered}, SIGNER.public_b64()) == body


@pytest.mark.parametrize(('entry', 'reason'), [
    ('not an object', "manifest 'keys[0]' is not an object"),
    ({'kid': 'k1'}, "manifest 'keys[0]' has missing or unknown members"),
    ({'kid': '-k', 'suite': keys.SUITE, 'status': 'active'},
     "manifest 'keys[0].kid' is not a valid key identifier"),
    ({'kid': 'k1', 'suite': 'x', 'status': 'active'},
     "manifest 'keys[0].suite' is not an allowed suite"),
    ({'kid': 'k1', 'suite': keys.SUITE, 'status': 'x'},
     "manifest 'keys[0].status' is not a known status"),
    ({'kid': 'k1', 'suite': keys.SUITE, 'status': 'active', 'pub': 'AAAA'},
     "'keys[0].pub' is not a P-256 public key"),
    ({'kid': 'k1', 'suite': keys.SUITE, 'status': 'active'},
     "manifest 'keys[0].pub' is required for the active key"),
    ({**CURRENT.manifest_entry(), 'accept_until': '2026-04-30'},
     "manifest 'keys[0].accept_until' is allowed on decrypt-only keys only"),
    ({**CURRENT.manifest_entry('decrypt-only'), 'accept_until': '30/04/2026'},
     "manifest 'keys[0].accept_until' is not a YYYY-MM-DD date"),
])
def test_manifest_entry_reasons_name_the_member(entry, reason):
    with pytest.raises(InvalidKeyMaterial) as caught:
        keys.manifest._check_entry(0, entry)
    assert str(caught.value) == reason
    assert caught.value.__cause__ is None
