"""fle/1 interoperability with the JavaScript reference sealer (js/fle.mjs).

js/fle.mjs uses only @hpke/core and WebCrypto, as a browser or WebView
tablet would. These tests run it under node:

1. it reproduces every known-answer vector byte for byte (with the fixed
   rng and HPKE ``ekm``), and RFC 9180 A.3.1;
2. Python opens documents it sealed with fresh randomness;
3. it opens documents Python sealed, and refuses tampered ones;
4. it verifies Python's ES256 manifest signatures with WebCrypto;
5. it opens grants Python sealed (APK private key as JWK or raw scalar)
   and refuses bad ones. Wrapped APK blobs stay Python-only (Argon2id);
6. its sealer and opener read and refuse the edges of plaintext JSON as
   Python's do (duplicate names, whitespace, lone surrogates, NaN).
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import shutil
import subprocess

import pytest

import keys
from keys import Keyring, OrgKeyPair, SigningKey
from keys._encoding import b64url_decode, b64url_encode
from keys._primitives import P256_ORDER
from sync import enrollment
from tests.support.sealed import assert_sealed_shape

ROOT = pathlib.Path(__file__).resolve().parents[2]
NODE = shutil.which('node')
SEALER = ROOT / 'js' / 'fle.mjs'

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        NODE is None, reason='node is not installed; the JS interop tests need node 20'),
]

ORG = 'org-acme'
PATHS = ['/full_name', '/phone', '/dob', '/aliases', '/address/street', '/guardian/name']
ORG_KEY = OrgKeyPair.generate('oek-2026-03')
MANIFEST = keys.build_manifest(ORG, 1, [ORG_KEY.manifest_entry()])
DOC = {
    '_id': 'contact:0190f6a2-5b7e-7c1a-9d1e-4b0c2d7f8a11',
    'type': 'contact',
    'region': 'north',
    'full_name': 'José Núñez 🌵',
    'phone': '+1-555-0100',
    'dob': None,
    'aliases': ['JJ', {'nick': 'Pepe', 'since': 2019}],
    'address': {'street': '100 Example Ave', 'city': 'Los Angeles'},
}


def run_node(*args: str, payload: dict | None = None) -> tuple[int, dict]:
    """Run js/fle.mjs; return its exit status and parsed JSON output."""
    completed = subprocess.run(
        [NODE, str(SEALER), *args],
        input=json.dumps(payload) if payload is not None else None,
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert completed.stdout, completed.stderr
    return completed.returncode, json.loads(completed.stdout)


def org_keys_payload(*org_keys: OrgKeyPair) -> list[dict]:
    return [{'kid': org_key.kid, 'private_hex': org_key._scalar().hex()} for org_key in org_keys]


@pytest.mark.parametrize('filename', [
    'fle1_fields.json', 'fle1_envelopes.json', 'fle1_manifest.json', 'fle1_negative.json',
    'rfc9180_a3_1.json',
])
def test_js_reproduces_the_vectors(filename):
    status, result = run_node('vectors', str(ROOT / 'tests' / 'vectors' / filename))
    assert result['failures'] == [], result
    assert status == 0 and result['checked'] > 0


def test_js_vector_runner_reports_a_mismatch(tmp_path):
    data = json.loads((ROOT / 'tests' / 'vectors' / 'fle1_fields.json').read_text(encoding='utf-8'))
    ciphertext = bytearray(b64url_decode(data['cases'][0]['sealed']['ct']))
    ciphertext[0] ^= 1
    data['cases'][0]['sealed']['ct'] = b64url_encode(bytes(ciphertext))
    corrupted = tmp_path / 'corrupted.json'
    corrupted.write_text(json.dumps(data), encoding='utf-8')
    status, result = run_node('vectors', str(corrupted))
    assert status != 0


def test_python_opens_what_js_sealed():
    status, result = run_node('seal', payload={
        'doc': DOC, 'paths': PATHS, 'org': ORG, 'manifest_body': MANIFEST, 'device': 'dev-042'})
    assert status == 0, result
    sealed, envelope = result['sealed'], result['envelope']
    keys.validate_envelope(envelope)
    assert_sealed_shape(sealed, PATHS)
    assert 'Núñez' not in json.dumps(sealed, ensure_ascii=False)
    opened = keys.open_document(sealed, envelopes=[envelope], keyring=Keyring([ORG_KEY]),
                                paths=PATHS, org=ORG)
    assert opened == DOC


def test_js_seals_fresh_randomness_each_time():
    payload = {'doc': DOC, 'paths': PATHS, 'org': ORG, 'manifest_body': MANIFEST}
    first = run_node('seal', payload=payload)[1]
    second = run_node('seal', payload=payload)[1]
    assert first['envelope']['rkid'] != second['envelope']['rkid']
    assert first['envelope']['enc'] != second['envelope']['enc']


def test_js_opens_what_python_sealed():
    sealed, envelope = keys.seal_document(DOC, paths=PATHS, org=ORG, manifest_body=MANIFEST,
                                          device='dev-042')
    updated, second = keys.reseal_fields(sealed, {'/phone': '+1-555-0199'}, org=ORG,
                                         manifest_body=MANIFEST)
    status, result = run_node('open', payload={
        'sealed': updated, 'envelopes': [envelope, second], 'org_keys': org_keys_payload(ORG_KEY),
        'paths': PATHS, 'org': ORG})
    assert status == 0, result
    assert result['doc'] == {**DOC, 'phone': '+1-555-0199'}


@pytest.mark.parametrize('tamper', ['swap fields', 'other org key', 'other org'])
def test_js_refuses_tampered_python_documents(tamper):
    sealed, envelope = keys.seal_document(DOC, paths=PATHS, org=ORG, manifest_body=MANIFEST)
    sealed = copy.deepcopy(sealed)
    org_key, org = ORG_KEY, ORG
    if tamper == 'swap fields':
        sealed['full_name'], sealed['phone'] = sealed['phone'], sealed['full_name']
    elif tamper == 'other org key':
        org_key = OrgKeyPair.generate(ORG_KEY.kid)
    else:
        org = 'org-other'
    status, result = run_node('open', payload={
        'sealed': sealed, 'envelopes': [envelope], 'org_keys': org_keys_payload(org_key),
        'paths': PATHS, 'org': org})
    assert (status, result) == (3, {'error': 'InvalidCiphertext'})


def test_js_verifies_python_manifests_with_webcrypto():
    signer = SigningKey.generate()
    signed = keys.sign_manifest(keys.build_manifest(ORG, 7, [ORG_KEY.manifest_entry()]), signer)
    status, result = run_node('verify-manifest', payload={
        'signed': signed, 'pinned_public': signer.public_b64(), 'min_seq': 7})
    assert status == 0 and result['body'] == signed['body']
    status, result = run_node('verify-manifest', payload={
        'signed': signed, 'pinned_public': signer.public_b64(), 'min_seq': 8})
    assert (status, result) == (3, {'error': 'InvalidManifest'})
    status, result = run_node('verify-manifest', payload={
        'signed': signed, 'pinned_public': SigningKey.generate().public_b64()})
    assert (status, result) == (3, {'error': 'InvalidManifest'})


def test_js_verifies_a_manifest_only_under_the_signer_the_enrollment_code_names():
    signer, operator = SigningKey.generate(), SigningKey.generate()
    signed = keys.sign_manifest(keys.build_manifest(ORG, 3, [ORG_KEY.manifest_entry()]), signer)
    code = enrollment.compose('s' * 43, signer.fingerprint())
    status, result = run_node('verify-manifest', payload={
        'signed': signed, 'pinned_public': signer.public_b64(), 'enrollment_code': code})
    assert status == 0 and result['body'] == signed['body']
    # A manifest the operator signed, checked against the operator's key as
    # the server serves it, under a code naming the real signer: refused.
    forged = keys.sign_manifest(keys.build_manifest(ORG, 4, [ORG_KEY.manifest_entry()]), operator)
    status, result = run_node('verify-manifest', payload={
        'signed': forged, 'pinned_public': operator.public_b64(), 'enrollment_code': code})
    assert (status, result) == (3, {'error': 'InvalidManifest'})


def test_js_vector_runner_skips_only_the_wrapped_apk_cases():
    # Grants are opened in JS now; wrapped APK blobs need Argon2id, which
    # WebCrypto lacks and no installed node package provides.
    status, result = run_node('vectors', str(ROOT / 'tests' / 'vectors' / 'fle1_negative.json'))
    assert status == 0 and result['failures'] == []
    assert result['skipped'] and all(name.startswith('apk:') for name in result['skipped'])


def _advocate_with_scalar() -> tuple[keys.AdvocateKey, bytes]:
    while True:
        scalar = os.urandom(32)
        if 0 < int.from_bytes(scalar, 'big') < P256_ORDER:
            return keys.AdvocateKey._from_scalar('adv-17', 'apk-adv-17-1', scalar), scalar


def _jwk(advocate: keys.AdvocateKey, scalar: bytes) -> dict:
    point = b64url_decode(advocate.public_b64())
    return {'kty': 'EC', 'crv': 'P-256', 'x': b64url_encode(point[1:33]),
            'y': b64url_encode(point[33:]), 'd': b64url_encode(scalar)}


@pytest.mark.parametrize('key_form', ['private_jwk', 'private_hex'])
def test_js_opens_python_grants_then_the_record(key_form):
    advocate, scalar = _advocate_with_scalar()
    signer = SigningKey.generate()
    grant = keys.seal_grant(ORG_KEY, advocate.public_record(), org=ORG, granted_by='admin-2',
                            signing_key=signer)
    sealed, envelope = keys.seal_document(DOC, paths=PATHS, org=ORG, manifest_body=MANIFEST)
    key = _jwk(advocate, scalar) if key_form == 'private_jwk' else scalar.hex()
    payload = {
        'sealed': sealed, 'envelopes': [envelope], 'grants': [grant],
        'pinned_public': signer.public_b64(),
        'advocate': {'advocate': 'adv-17', 'apk': 'apk-adv-17-1', key_form: key},
        'paths': PATHS, 'org': ORG}
    status, result = run_node('open', payload=payload)
    assert status == 0, result
    assert result['doc'] == DOC


@pytest.mark.parametrize('tamper', ['signature', 'ciphertext', 'other admin', 'other org', 'other apk'])
def test_js_refuses_bad_grants(tamper):
    advocate, scalar = _advocate_with_scalar()
    signer = SigningKey.generate()
    grant = keys.seal_grant(ORG_KEY, advocate.public_record(), org=ORG, granted_by='admin-2',
                            signing_key=signer)
    sealed, envelope = keys.seal_document(DOC, paths=PATHS, org=ORG, manifest_body=MANIFEST)
    pinned, org, apk = signer.public_b64(), ORG, 'apk-adv-17-1'
    if tamper == 'signature':
        sig = bytearray(b64url_decode(grant['sig']))
        sig[5] ^= 1
        grant['sig'] = b64url_encode(bytes(sig))
    elif tamper == 'ciphertext':
        ciphertext = bytearray(b64url_decode(grant['ct']))
        ciphertext[0] ^= 1
        grant['ct'] = b64url_encode(bytes(ciphertext))
    elif tamper == 'other admin':
        pinned = SigningKey.generate().public_b64()
    elif tamper == 'other org':
        org = 'org-other'
    else:
        apk = 'apk-adv-17-2'
    payload = {
        'sealed': sealed, 'envelopes': [envelope], 'grants': [grant], 'pinned_public': pinned,
        'advocate': {'advocate': 'adv-17', 'apk': apk, 'private_jwk': _jwk(advocate, scalar)},
        'paths': PATHS, 'org': org}
    assert run_node('open', payload=payload) == (3, {'error': 'InvalidCiphertext'})


def _with_plaintext(sealed: dict, envelope: dict, text: bytes) -> dict:
    """``sealed`` with ``/full_name`` replaced by ``text`` (padded) under the record's own RK."""
    from keys import _primitives
    from keys.fields import derive_record_keys, field_aad, pad

    rk = keys.open_envelope(envelope, Keyring([ORG_KEY]), ORG)
    rkid = envelope['rkid']
    k_enc, _ = derive_record_keys(rk, rkid)
    nonce = os.urandom(12)
    ciphertext = _primitives.aes_gcm_seal(
        k_enc, nonce, pad(text), field_aad(ORG, sealed['_id'], '/full_name', rkid))
    return {**sealed, 'full_name': {'fle': 1, 'rk': rkid, 'n': b64url_encode(nonce),
                                    'ct': b64url_encode(ciphertext)}}


@pytest.mark.parametrize(('text', 'expected'), [
    (b'{"a":1,"a":2}', {'a': 2}),                    # duplicate names: the last one wins
    (b' \n"Jane"\t', 'Jane'),                        # insignificant whitespace
    (b'"\\ud83c\\udf35"', '\U0001f335'),             # an escaped surrogate pair
    (b'1e308', 1e308),                               # a finite double opens
])
def test_python_and_js_openers_read_plaintext_json_alike(text, expected):
    sealed, envelope = keys.seal_document(DOC, paths=PATHS, org=ORG, manifest_body=MANIFEST)
    crafted = _with_plaintext(sealed, envelope, text)
    opened = keys.open_document(crafted, envelopes=[envelope], keyring=Keyring([ORG_KEY]),
                                paths=PATHS, org=ORG)
    assert opened['full_name'] == expected
    status, result = run_node('open', payload={
        'sealed': crafted, 'envelopes': [envelope], 'org_keys': org_keys_payload(ORG_KEY),
        'paths': PATHS, 'org': ORG})
    assert status == 0, result
    assert result['doc']['full_name'] == expected


@pytest.mark.parametrize('value', ['\ud800', ['ok', '\udc00'], {'\ud800': 1}])
def test_python_and_js_sealers_refuse_lone_surrogates(value):
    with pytest.raises(keys.InvalidKeyMaterial):
        keys.seal_document({**DOC, 'full_name': value}, paths=PATHS, org=ORG,
                           manifest_body=MANIFEST)
    status, result = run_node('seal', payload={
        'doc': {**DOC, 'full_name': value}, 'paths': PATHS, 'org': ORG, 'manifest_body': MANIFEST})
    assert status == 2 and result['error'] == 'InvalidKeyMaterial', result


def test_python_sealer_refuses_what_no_json_reader_can_hold():
    for value in (float('nan'), float('inf'), [1, -float('inf')], 10**400, {'n': 10**309}):
        with pytest.raises(keys.InvalidKeyMaterial):
            keys.seal_document({**DOC, 'full_name': value}, paths=PATHS, org=ORG,
                               manifest_body=MANIFEST)


def test_js_sealer_refuses_what_json_cannot_carry():
    # JSON.stringify would write NaN and Infinity as null, drop undefined
    # members and write a function as nothing at all.
    script = """
      import { sealDocument, InvalidKeyMaterial } from "./js/fle.mjs";
      const input = JSON.parse(process.argv[1]);
      const values = [NaN, Infinity, [1, -Infinity], undefined, { a: undefined }, () => 1, 10n,
                      new Date(0), [, 1]];
      const outcomes = [];
      for (const value of values) {
        try {
          await sealDocument({ ...input.doc, full_name: value }, {
            paths: input.paths, org: input.org, manifestBody: input.manifest_body });
          outcomes.push("sealed");
        } catch (error) {
          outcomes.push(error instanceof InvalidKeyMaterial ? "refused" : String(error));
        }
      }
      process.stdout.write(JSON.stringify(outcomes));
    """
    completed = subprocess.run(
        [NODE, '--input-type=module', '-e', script,
         json.dumps({'doc': DOC, 'paths': PATHS, 'org': ORG, 'manifest_body': MANIFEST})],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == ['refused'] * 9
