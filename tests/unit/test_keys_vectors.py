"""Known-answer vectors in ``tests/vectors/`` (see tests/vectors/README.md).

Each file is loaded with :func:`json_parametrize`, one test case per vector,
named after it. The generator is checked too: regenerating must reproduce
the committed files exactly.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import pathlib

import pytest

import keys
from keys import (
    AdvocateKey,
    InvalidCiphertext,
    InvalidKeyMaterial,
    InvalidManifest,
    Keyring,
    OrgKeyPair,
    SigningKey,
)
from keys import _primitives
from keys._encoding import b64url_decode, canonical_json
from keys.advocates import certify_advocate_key
from keys.envelopes import envelope_info, open_rk, seal_rk
from keys.fields import (
    _reseal_fields_with,
    _seal_document_with,
    derive_record_keys,
    encode_value,
    field_aad,
    open_value,
    pad,
    seal_value,
)
from keys.grants import _seal_grant_with, grant_info
from keys.passwords import Argon2Params
from tests.support.sealed import assert_sealed_shape

pytestmark = pytest.mark.unit

ROOT = pathlib.Path(__file__).resolve().parents[2]
VECTORS = ROOT / 'tests' / 'vectors'
EXPECTED_ERRORS = {
    'InvalidCiphertext': InvalidCiphertext,
    'InvalidManifest': InvalidManifest,
    'InvalidKeyMaterial': InvalidKeyMaterial,
}


def load_vectors(filename: str) -> dict:
    return json.loads((VECTORS / filename).read_text(encoding='utf-8'))


def json_parametrize(filename: str, section: str = 'cases'):
    """Parametrize a test with ``vector`` over one section of a vector file."""
    cases = load_vectors(filename)[section]
    return pytest.mark.parametrize('vector', cases, ids=[case['name'] for case in cases])


def chunk_rng(hex_chunks: list[str]):
    """An rng that replays recorded chunks and insists on the draw order."""
    queue = [bytes.fromhex(chunk) for chunk in hex_chunks]

    def rng(length: int) -> bytes:
        chunk = queue.pop(0)
        assert len(chunk) == length, 'vector rng out of step'
        return chunk
    return rng


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ').replace(
        tzinfo=datetime.timezone.utc)


def org_key(entry: dict) -> OrgKeyPair:
    return OrgKeyPair._from_scalar(entry['kid'], bytes.fromhex(entry['private_hex']))


# -- Generator ----------------------------------------------------------------


def test_vector_files_are_up_to_date():
    spec = importlib.util.spec_from_file_location(
        'make_vectors', ROOT / 'tools' / 'make_vectors.py')
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    for filename, data in generator.build_all().items():
        assert (VECTORS / filename).read_text(encoding='utf-8') == generator.render(data), filename


# -- Fields -------------------------------------------------------------------


@json_parametrize('fle1_fields.json')
def test_field_vector(vector):
    rk = bytes.fromhex(vector['rk_hex'])
    k_enc, commit = derive_record_keys(rk, vector['rkid'])
    assert k_enc.hex() == vector['k_enc_hex']
    assert commit.hex() == vector['commit_hex']
    aad = field_aad(vector['org'], vector['doc_id'], vector['pointer'], vector['rkid'])
    assert aad.hex() == vector['aad_hex']
    assert encode_value(vector['value']).decode('utf-8') == vector['json']
    assert pad(encode_value(vector['value'])).hex() == vector['padded_plaintext_hex']
    sealed = seal_value(vector['value'], rk=rk, rkid=vector['rkid'], org=vector['org'],
                        doc_id=vector['doc_id'], pointer=vector['pointer'],
                        nonce=bytes.fromhex(vector['nonce_hex']))
    assert sealed == vector['sealed']
    assert open_value(vector['sealed'], rk=rk, org=vector['org'], doc_id=vector['doc_id'],
                      pointer=vector['pointer']) == vector['value']


# -- Envelopes, grants, documents --------------------------------------------


@json_parametrize('fle1_envelopes.json', 'rk_envelopes')
def test_rk_envelope_vector(vector):
    info = envelope_info(vector['org'], vector['kek'], vector['doc_id'], vector['rkid'])
    assert info.hex() == vector['info_hex']
    envelope = vector['envelope']
    recomputed = seal_rk(
        bytes.fromhex(vector['rk_hex']), org=vector['org'], doc_id=vector['doc_id'],
        rkid=vector['rkid'], kid=vector['kek'], public_b64=vector['recipient_public'],
        device=envelope.get('dev'), at=envelope.get('at'),
        ephemeral_ikm=bytes.fromhex(vector['ekm_hex']))
    assert recomputed == envelope
    # Decrypt known-answer through pyca's own HPKE (the production path).
    recipient = OrgKeyPair._from_scalar(
        vector['kek'], bytes.fromhex(vector['recipient_private_hex']))
    assert recipient.public_b64() == vector['recipient_public']
    rk = open_rk(envelope, Keyring([recipient]), org=vector['org'], doc_id=vector['doc_id'],
                 rkid=vector['rkid'])
    assert rk.hex() == vector['rk_hex']
    assert keys.open_envelope(envelope, Keyring([recipient]), vector['org']) == rk
    keys.validate_envelope(envelope)


@json_parametrize('fle1_envelopes.json', 'grants')
def test_grant_vector(vector):
    record = vector['advocate_record']
    advocate = AdvocateKey._from_scalar(
        record['advocate'], record['apk'], bytes.fromhex(vector['advocate_private_hex']))
    assert advocate.public_record() == record
    assert grant_info(vector['org'], vector['org_key']['kid'], record['advocate'],
                      record['apk']).hex() == vector['info_hex']
    signing_key = SigningKey._from_scalar(bytes.fromhex(
        load_vectors('fle1_manifest.json')['signing_private_hex']))
    assert signing_key.public_b64() == vector['signing_public']
    recomputed = _seal_grant_with(
        org_key(vector['org_key']), record, org=vector['org'],
        granted_by=vector['grant']['granted_by'], signing_key=signing_key,
        ephemeral_ikm=bytes.fromhex(vector['ekm_hex']))
    assert recomputed == vector['grant']
    opened = keys.open_grant(vector['grant'], advocate, org=vector['org'],
                             pinned_public_b64=vector['signing_public'])
    assert opened._scalar().hex() == vector['org_key']['private_hex']


@json_parametrize('fle1_envelopes.json', 'documents')
def test_document_vector(vector):
    sealed, envelope = _seal_document_with(
        vector['doc'], paths=vector['paths'], org=vector['org'],
        manifest_body=vector['manifest_body'], device=vector['device'],
        rng=chunk_rng(vector['rng_hex']), now=parse_time(vector['now']))
    assert sealed == vector['sealed']
    assert envelope == vector['envelope']
    opened = keys.open_document(
        vector['sealed'], envelopes=[vector['envelope']],
        keyring=Keyring([org_key(vector['org_key'])]),
        paths=vector['paths'], org=vector['org'])
    assert opened == vector['doc']
    assert_sealed_shape(vector['sealed'], vector['paths'])


@json_parametrize('fle1_envelopes.json', 'reseals')
def test_reseal_vector(vector):
    updated, envelope = _reseal_fields_with(
        vector['base_sealed'], vector['new_values'], org=vector['org'],
        manifest_body=vector['manifest_body'], device=vector['device'],
        rng=chunk_rng(vector['rng_hex']), now=parse_time(vector['now']))
    assert updated == vector['sealed']
    assert envelope == vector['envelopes'][1]
    opened = keys.open_document(
        vector['sealed'], envelopes=vector['envelopes'],
        keyring=Keyring([org_key(vector['org_key'])]),
        paths=vector['paths'], org=vector['org'])
    assert opened == vector['plaintext']


# -- Manifests and certificates ----------------------------------------------


MANIFEST_FILE = load_vectors('fle1_manifest.json')
VECTOR_SIGNER = SigningKey._from_scalar(bytes.fromhex(MANIFEST_FILE['signing_private_hex']))


def test_vector_signing_key():
    assert VECTOR_SIGNER.public_b64() == MANIFEST_FILE['signing_public']
    assert VECTOR_SIGNER.fingerprint() == MANIFEST_FILE['fingerprint']


@json_parametrize('fle1_manifest.json', 'manifests')
def test_manifest_vector(vector):
    assert canonical_json(vector['body']).decode('utf-8') == vector['canonical']
    assert keys.sign_manifest(vector['body'], VECTOR_SIGNER) == vector['signed']
    assert keys.verify_manifest(vector['signed'], MANIFEST_FILE['signing_public'],
                                min_seq=vector['body']['seq']) == vector['body']


@json_parametrize('fle1_manifest.json', 'certificates')
def test_certificate_vector(vector):
    cert = certify_advocate_key(
        vector['record'], VECTOR_SIGNER, certified_by=vector['certified_by'])
    assert cert == vector['signed']
    assert canonical_json(cert['body']).decode('utf-8') == vector['canonical']
    assert keys.verify_certificate(vector['signed'], MANIFEST_FILE['signing_public'])


# -- Wrapped advocate keys ----------------------------------------------------


@json_parametrize('fle1_apk.json')
def test_wrapped_apk_vector(vector):
    blob = vector['blob']
    params = Argon2Params(blob['m'], blob['t'], blob['p'])
    advocate = AdvocateKey._from_scalar(
        blob['advocate'], blob['apk'], bytes.fromhex(vector['private_hex']))
    salt, nonce = b64url_decode(blob['salt']), b64url_decode(blob['n'])
    assert advocate._wrap_with(vector['passphrase'], params=params,
                               rng=chunk_rng([salt.hex(), nonce.hex()])) == blob
    kek = _primitives.argon2id(bytes.fromhex(vector['passphrase_nfc_hex']), salt=salt,
                               memory_kib=params.memory_kib, iterations=params.iterations,
                               lanes=params.lanes)
    assert kek.hex() == vector['kek_hex']
    assert AdvocateKey.unwrap(blob, vector['passphrase']).public_b64() == blob['pub']


# -- Negative vectors: every case fails with the one opaque error -------------


def _attempt(vector: dict) -> None:
    kind = vector['kind']
    if kind == 'document':
        keyring = Keyring([org_key(entry) for entry in vector['org_keys']])
        keys.open_document(vector['sealed'], envelopes=vector['envelopes'], keyring=keyring,
                           paths=vector['paths'], org=vector['org'])
    elif kind == 'envelope':
        keyring = Keyring([org_key(entry) for entry in vector['org_keys']])
        keys.open_envelope(vector['envelope'], keyring, vector['org'])
    elif kind == 'grant':
        who = vector['advocate']
        advocate = AdvocateKey._from_scalar(
            who['advocate'], who['apk'], bytes.fromhex(who['private_hex']))
        keys.open_grant(vector['grant'], advocate, org=vector['org'],
                        pinned_public_b64=vector['pinned_public'])
    elif kind == 'apk':
        AdvocateKey.unwrap(vector['blob'], vector['passphrase'])
    elif kind == 'manifest':
        keys.verify_manifest(vector['signed'], vector['pinned_public'], min_seq=vector['min_seq'])
    elif kind == 'certificate':
        keys.verify_certificate(vector['signed'], vector['pinned_public'])
    elif kind == 'paths':
        _attempt_paths(vector)
    else:  # pragma: no cover
        raise AssertionError(f'unknown kind {kind}')


def _attempt_paths(vector: dict) -> None:
    """Malformed identifying paths: refused by sealing and by opening alike."""
    with pytest.raises(InvalidKeyMaterial):
        keys.seal_document(vector['doc'], paths=vector['paths'], org=vector['org'],
                           manifest_body=vector['manifest_body'])
    keyring = Keyring([org_key(entry) for entry in vector['org_keys']])
    keys.open_document(vector['sealed'], envelopes=vector['envelopes'], keyring=keyring,
                       paths=vector['paths'], org=vector['org'])


@json_parametrize('fle1_negative.json')
def test_negative_vector(vector):
    expected = EXPECTED_ERRORS[vector['expect']]
    with pytest.raises(expected) as caught:
        _attempt(vector)
    assert type(caught.value) is expected
    message = getattr(expected, 'MESSAGE', vector.get('message'))
    if message is not None:
        assert str(caught.value) == message


def test_negative_vectors_cover_every_required_failure_mode():
    names = ' | '.join(case['name'] for case in load_vectors('fle1_negative.json')['cases'])
    for mode in ('wrong org key', 'tampered field ciphertext', 'moved to another field',
                 'moved to another document', 'wrong rkid', 'commitment mismatch',
                 'unknown fle version', 'unknown suite', 'truncated value', 'not on the curve',
                 'rollback', 'manifest: bad signature', 'malformed base64',
                 'padding: 32 trailing zeros', 'padding: no 80', 'plaintext: NaN',
                 'plaintext: 1e999', 'plaintext: escaped lone surrogate', 'plaintext: byte order',
                 'ct base64url with non-zero trailing bits', 'commit with non-zero trailing bits',
                 'enc with non-zero trailing bits', 'n in the standard base64 alphabet',
                 'rkid in uppercase', 'sealed value: extra member', 'header entry: extra member',
                 'header entry: dev null', 'envelope: extra member', 'record _id of 513',
                 'manifest body: two active keys', 'manifest body: pub not on the curve',
                 'manifest body: 65 keys', 'certificate: bad signature',
                 'certificate body: fingerprint of another key', 'scalar zero',
                 'scalar equal to the group order', 'not normalised to NFC', 'salt of 15 bytes',
                 'paths: one a prefix of the other', 'paths: a top-level member starting with _'):
        assert mode in names, mode


# -- RFC 9180 ----------------------------------------------------------------


def test_rfc9180_appendix_a31():
    """Our DHKEM(P-256)/HKDF-SHA256 code against RFC 9180 A.3.1 (AES-128-GCM)."""
    vector = load_vectors('rfc9180_a3_1.json')
    assert (vector['kem_id'], vector['kdf_id'], vector['aead_id']) == (16, 1, 1)
    ephemeral = _primitives.hpke_derive_key_pair(bytes.fromhex(vector['ikmE']))
    recipient = _primitives.hpke_derive_key_pair(bytes.fromhex(vector['ikmR']))
    assert _primitives.private_scalar(ephemeral).hex() == vector['skEm']
    assert _primitives.public_sec1(ephemeral).hex() == vector['pkEm']
    assert _primitives.private_scalar(recipient).hex() == vector['skRm']
    assert _primitives.public_sec1(recipient).hex() == vector['pkRm']
    setup = _primitives.hpke_setup_base_sender(
        recipient.public_key(), bytes.fromhex(vector['info']), bytes.fromhex(vector['ikmE']),
        aead_id=vector['aead_id'])
    assert setup.enc.hex() == vector['enc']
    assert setup.shared_secret.hex() == vector['shared_secret']
    assert setup.key.hex() == vector['key']
    assert setup.base_nonce.hex() == vector['base_nonce']
    ciphertext = _primitives.aes_gcm_seal(
        setup.key, setup.base_nonce, bytes.fromhex(vector['pt']), bytes.fromhex(vector['aad']))
    assert ciphertext.hex() == vector['ct']


def test_deterministic_hpke_path_is_opened_by_pycas_hpke():
    recipient = _primitives.generate_p256()
    enc, ciphertext = _primitives.hpke_seal(b'k' * 32, recipient.public_key(), b'info',
                                            ephemeral_ikm=bytes(32))
    assert _primitives.hpke_open(enc, ciphertext, recipient, b'info') == b'k' * 32


def test_wrapped_apk_vector_opens_with_the_decomposed_passphrase():
    """Unwrapping normalises to NFC: the NFD spelling of a passphrase opens its blob."""
    import unicodedata

    vector = load_vectors('fle1_apk.json')['cases'][1]
    decomposed = unicodedata.normalize('NFD', vector['passphrase'])
    assert decomposed != vector['passphrase']
    key = AdvocateKey.unwrap(vector['blob'], decomposed)
    assert key.public_b64() == vector['blob']['pub']
