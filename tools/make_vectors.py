"""Generate the fle/1 known-answer vectors in ``tests/vectors/``.

Usage::

    .venv/bin/python tools/make_vectors.py           # (re)write the files
    .venv/bin/python tools/make_vectors.py --check   # exit 1 if any file is stale

Every input is fixed: keys, record keys, rkids, nonces, HPKE ephemeral IKMs
and salts are SHA-256 of a label (see :func:`fixed`), so running this twice
gives identical files. The deterministic twins of the ``keys`` API produce
the outputs; ``tests/unit/test_keys_vectors.py`` checks them in Python
(including pyca's own HPKE decrypt) and ``js/fle.mjs vectors`` reproduces
them byte for byte with @hpke/core and WebCrypto.

``rfc9180_a3_1.json`` is not generated: it is copied from RFC 9180
Appendix A.3.1 (see its ``source`` member) and only checked.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import pathlib
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from keys import _primitives  # noqa: E402
from keys._encoding import b64url_decode, b64url_encode, canonical_json  # noqa: E402
from keys.advocates import AdvocateKey, _apk_aad, certify_advocate_key  # noqa: E402
from keys.envelopes import envelope_info, seal_rk  # noqa: E402
from keys.fields import (  # noqa: E402
    _reseal_fields_with,
    _seal_document_with,
    derive_record_keys,
    encode_value,
    field_aad,
    pad,
    seal_value,
)
from keys.grants import _seal_grant_with, grant_info  # noqa: E402
from keys.manifest import build_manifest, sign_manifest  # noqa: E402
from keys.orgkeys import OrgKeyPair  # noqa: E402
from keys.passwords import DEFAULT_ARGON2, Argon2Params, normalize_secret  # noqa: E402
from keys.signing import SigningKey  # noqa: E402

VECTORS = ROOT / 'tests' / 'vectors'
GENERATOR = 'tools/make_vectors.py'
ORG = 'org-acme'
NOW = '2026-03-02T10:15:00Z'
CONTACT_ID = 'contact:0190f6a2-5b7e-7c1a-9d1e-4b0c2d7f8a11'
IDENTITY_ID = 'identity:0190f6a2-9c3d-7e21-8f00-1a2b3c4d5e6f'
CONTACT_PATHS = ['/full_name', '/phone', '/dob', '/aliases', '/address/street', '/guardian/name']


def fixed(label: str, length: int = 32) -> bytes:
    """Return ``length`` fixed bytes: SHA-256("fieldvault fle/1 vectors: " + label)."""
    digest = hashlib.sha256(f'fieldvault fle/1 vectors: {label}'.encode()).digest()
    assert length <= len(digest)
    return digest[:length]


def fixed_scalar(label: str) -> bytes:
    """Return a valid P-256 scalar: RFC 9180 DeriveKeyPair(fixed(label))."""
    return _primitives.private_scalar(_primitives.hpke_derive_key_pair(fixed(label)))


class RecordingRNG:
    """An rng for the twins that hands out fixed chunks and records them."""

    def __init__(self, label: str) -> None:
        self._label = label
        self.chunks: list[bytes] = []

    def __call__(self, length: int) -> bytes:
        chunk = fixed(f'{self._label}/{len(self.chunks)}', length)
        self.chunks.append(chunk)
        return chunk

    def hex_chunks(self) -> list[str]:
        return [chunk.hex() for chunk in self.chunks]


def at(text: str = NOW) -> datetime.datetime:
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ').replace(
        tzinfo=datetime.timezone.utc)


ORG_KEY = OrgKeyPair._from_scalar('oek-2026-03', fixed_scalar('org key oek-2026-03'))
NEXT_ORG_KEY = OrgKeyPair._from_scalar('oek-2026-09', fixed_scalar('org key oek-2026-09'))
OTHER_KEY_SAME_KID = OrgKeyPair._from_scalar('oek-2026-03', fixed_scalar('impostor org key'))
SIGNING_KEY = SigningKey._from_scalar(fixed_scalar('org signing key'))
OTHER_SIGNING_KEY = SigningKey._from_scalar(fixed_scalar('another signing key'))
ADVOCATE = AdvocateKey._from_scalar('adv-17', 'apk-adv-17-1', fixed_scalar('advocate adv-17'))
RECOVERY = AdvocateKey._from_scalar('recovery', 'apk-recovery-1', fixed_scalar('recovery key'))


def org_key_json(org_key: OrgKeyPair) -> dict[str, str]:
    return {
        'kid': org_key.kid,
        'private_hex': org_key._scalar().hex(),
        'public': org_key.public_b64(),
    }


def manifest_body(seq: int = 1) -> dict[str, Any]:
    return build_manifest(ORG, seq, [ORG_KEY.manifest_entry()])


def contact_doc() -> dict[str, Any]:
    return {
        '_id': CONTACT_ID,
        'type': 'contact',
        'schema': 1,
        'org': ORG,
        'region': 'north',
        'created_at': NOW,
        'full_name': 'Jane Q. Example',
        'phone': '+1-555-0100',
        'dob': '2009-05-17',
        'aliases': ['JJ', 'Janie'],
        'address': {'street': '100 Example Ave', 'city': 'Los Angeles'},
        'guardian': None,
        'consent_to_contact': True,
    }


def identity_doc() -> dict[str, Any]:
    return {
        '_id': IDENTITY_ID,
        'type': 'identity',
        'schema': 1,
        'org': ORG,
        'full_name': 'José Núñez 🌵',
        'documents': [{'kind': 'state id', 'number': 'X1234567'}],
        'age': 16,
        'phone': None,
    }


IDENTITY_PATHS = ['/full_name', '/documents/0/number', '/age', '/phone', '/birthplace']


# -- fle1_fields.json ---------------------------------------------------------


FIELD_CASES = [
    ('ascii string', '/full_name', 'Jane Q. Example'),
    ('unicode string', '/full_name', 'José Núñez 🌵'),
    ('phone number', '/phone', '+1-555-0100'),
    ('integer', '/age', 16),
    ('boolean', '/consent_to_contact', True),
    ('list of strings', '/aliases', ['JJ', 'Janie']),
    ('nested object', '/address', {'street': '100 Example Ave', 'unit': None, 'zip': 90012}),
    ('empty string', '/notes', ''),
    ('31 bytes of JSON pad to 32', '/notes', 'a' * 29),
    ('32 bytes of JSON pad to 64', '/notes', 'a' * 30),
    ('escaped pointer', '/emergency~1contact/name~0nick', 'Sam'),
    ('array element', '/documents/0/number', 'X1234567'),
]


def build_fields() -> dict[str, Any]:
    rk = fixed('field vectors rk')
    rkid = fixed('field vectors rkid', 16).hex()
    k_enc, commit = derive_record_keys(rk, rkid)
    cases = []
    for index, (name, pointer, value) in enumerate(FIELD_CASES):
        nonce = fixed(f'field vectors nonce {index}', 12)
        cases.append({
            'name': name,
            'org': ORG,
            'doc_id': CONTACT_ID,
            'pointer': pointer,
            'value': value,
            'rk_hex': rk.hex(),
            'rkid': rkid,
            'nonce_hex': nonce.hex(),
            'k_enc_hex': k_enc.hex(),
            'commit_hex': commit.hex(),
            'aad_hex': field_aad(ORG, CONTACT_ID, pointer, rkid).hex(),
            'json': encode_value(value).decode('utf-8'),
            'padded_plaintext_hex': pad(encode_value(value)).hex(),
            'sealed': seal_value(
                value, rk=rk, rkid=rkid, org=ORG, doc_id=CONTACT_ID, pointer=pointer, nonce=nonce),
        })
    return {
        'kind': 'fle1_fields',
        'description': 'One sealed field value per case: K_enc, commit, AAD, padded plaintext '
                       'and the stored {fle, rk, n, ct}. Hex for raw bytes, JSON values as stored.',
        'generator': GENERATOR,
        'cases': cases,
    }


# -- fle1_envelopes.json ------------------------------------------------------


def build_envelopes() -> dict[str, Any]:
    rk_envelopes = []
    for index, (org_key, doc_id, device) in enumerate(
            [(ORG_KEY, CONTACT_ID, 'dev-042'), (NEXT_ORG_KEY, IDENTITY_ID, None)]):
        rk = fixed(f'envelope vectors rk {index}')
        rkid = fixed(f'envelope vectors rkid {index}', 16).hex()
        ekm = fixed(f'envelope vectors ekm {index}')
        rk_envelopes.append({
            'name': f'rk envelope to {org_key.kid}',
            'org': ORG,
            'kek': org_key.kid,
            'doc_id': doc_id,
            'rkid': rkid,
            'recipient_private_hex': org_key._scalar().hex(),
            'recipient_public': org_key.public_b64(),
            'ekm_hex': ekm.hex(),
            'info_hex': envelope_info(ORG, org_key.kid, doc_id, rkid).hex(),
            'rk_hex': rk.hex(),
            'envelope': seal_rk(
                rk, org=ORG, doc_id=doc_id, rkid=rkid, kid=org_key.kid,
                public_b64=org_key.public_b64(), device=device, at=NOW, ephemeral_ikm=ekm),
        })

    grants = []
    for advocate_key in (ADVOCATE, RECOVERY):
        ekm = fixed(f'grant vectors ekm {advocate_key.advocate_id}')
        record = advocate_key.public_record()
        grants.append({
            'name': f'grant of {ORG_KEY.kid} to {advocate_key.advocate_id}',
            'org': ORG,
            'org_key': org_key_json(ORG_KEY),
            'advocate_private_hex': _primitives.private_scalar(advocate_key._private_key).hex(),
            'advocate_record': record,
            'signing_public': SIGNING_KEY.public_b64(),
            'ekm_hex': ekm.hex(),
            'info_hex': grant_info(ORG, ORG_KEY.kid, record['advocate'], record['apk']).hex(),
            'grant': _seal_grant_with(
                ORG_KEY, record, org=ORG, granted_by='admin-2', signing_key=SIGNING_KEY,
                ephemeral_ikm=ekm),
        })

    documents = []
    for name, doc, paths, device in [
        ('contact with device', contact_doc(), CONTACT_PATHS, 'dev-042'),
        ('identity without device', identity_doc(), IDENTITY_PATHS, None),
    ]:
        rng = RecordingRNG(f'document {name}')
        sealed, envelope = _seal_document_with(
            doc, paths=paths, org=ORG, manifest_body=manifest_body(), device=device, rng=rng,
            now=at())
        documents.append({
            'name': name,
            'org': ORG,
            'paths': paths,
            'device': device,
            'now': NOW,
            'doc': doc,
            'org_key': org_key_json(ORG_KEY),
            'manifest_body': manifest_body(),
            'rng_hex': rng.hex_chunks(),
            'sealed': sealed,
            'envelope': envelope,
        })

    reseals = []
    base = documents[0]
    rng = RecordingRNG('reseal contact')
    new_values = {'/phone': '+1-555-0199', '/address/street': '200 Example Blvd'}
    later = '2026-03-09T16:40:00Z'
    resealed, second = _reseal_fields_with(
        base['sealed'], new_values, org=ORG, manifest_body=manifest_body(), device='dev-042',
        rng=rng, now=at(later))
    plaintext = copy.deepcopy(base['doc'])
    plaintext['phone'] = new_values['/phone']
    plaintext['address']['street'] = new_values['/address/street']
    reseals.append({
        'name': 'contact edited later (second RK)',
        'org': ORG,
        'paths': CONTACT_PATHS,
        'device': 'dev-042',
        'now': later,
        'base_sealed': base['sealed'],
        'new_values': new_values,
        'org_key': org_key_json(ORG_KEY),
        'manifest_body': manifest_body(),
        'rng_hex': rng.hex_chunks(),
        'sealed': resealed,
        'envelopes': [base['envelope'], second],
        'plaintext': plaintext,
    })
    return {
        'kind': 'fle1_envelopes',
        'description': 'HPKE RK envelopes and grants with a fixed ephemeral IKM (RFC 9180 '
                       'DeriveKeyPair(ekm)), whole documents sealed with a fixed rng '
                       '(chunks in draw order: RK 32, rkid 16, nonce 12 per present field, '
                       'ephemeral IKM 32), and a reseal.',
        'generator': GENERATOR,
        'rk_envelopes': rk_envelopes,
        'grants': grants,
        'documents': documents,
        'reseals': reseals,
    }


# -- fle1_manifest.json -------------------------------------------------------


def build_manifests() -> dict[str, Any]:
    rotated = build_manifest(ORG, 2, [
        NEXT_ORG_KEY.manifest_entry(),
        ORG_KEY.manifest_entry('decrypt-only', accept_until='2026-04-30'),
    ])
    manifests = []
    for name, body in [('first manifest', manifest_body()), ('after rotation', rotated)]:
        manifests.append({
            'name': name,
            'body': body,
            'canonical': canonical_json(body).decode('utf-8'),
            'signed': sign_manifest(body, SIGNING_KEY),
        })
    certificate = certify_advocate_key(
        ADVOCATE.public_record(), SIGNING_KEY, certified_by='admin-2')
    return {
        'kind': 'fle1_manifest',
        'description': 'Manifests and an advocate certificate signed ES256 (RFC 6979 '
                       'deterministic ECDSA P-256/SHA-256, raw r||s) over canonical JSON.',
        'generator': GENERATOR,
        'signing_private_hex': _primitives.private_scalar(SIGNING_KEY._private_key).hex(),
        'signing_public': SIGNING_KEY.public_b64(),
        'fingerprint': SIGNING_KEY.fingerprint(),
        'manifests': manifests,
        'certificates': [{
            'name': 'certificate of adv-17',
            'record': ADVOCATE.public_record(),
            'certified_by': 'admin-2',
            'canonical': canonical_json(certificate['body']).decode('utf-8'),
            'signed': certificate,
        }],
    }


# -- fle1_apk.json ------------------------------------------------------------


def build_apk() -> dict[str, Any]:
    cases = []
    for name, passphrase, params in [
        ('cheap parameters', 'correct horse battery staple', Argon2Params(1024, 1, 1)),
        ('default parameters (19 MiB, t=2, p=1), non-ASCII passphrase',
         'contraseña segura 🌵 2026', DEFAULT_ARGON2),
    ]:
        rng = RecordingRNG(f'apk {name}')
        blob = ADVOCATE._wrap_with(passphrase, params=params, rng=rng)
        salt, nonce = rng.chunks
        kek = _primitives.argon2id(
            normalize_secret(passphrase), salt=salt, memory_kib=params.memory_kib,
            iterations=params.iterations, lanes=params.lanes)
        cases.append({
            'name': name,
            'passphrase': passphrase,
            'passphrase_nfc_hex': normalize_secret(passphrase).hex(),
            'private_hex': _primitives.private_scalar(ADVOCATE._private_key).hex(),
            'kek_hex': kek.hex(),
            'aad_hex': _apk_aad(ADVOCATE.advocate_id, ADVOCATE.key_id).hex(),
            'blob': blob,
        })
    return {
        'kind': 'fle1_apk',
        'description': 'Passphrase-wrapped advocate keys: Argon2id(NFC passphrase) -> KEK, '
                       'AES-256-GCM of the private scalar.',
        'generator': GENERATOR,
        'cases': cases,
    }


# -- fle1_negative.json -------------------------------------------------------


def _flip(text: str, index: int = 0) -> str:
    data = bytearray(b64url_decode(text))
    data[index] ^= 0x01
    return b64url_encode(bytes(data))


def _truncate(text: str, count: int = 1) -> str:
    return b64url_encode(b64url_decode(text)[:-count])


def _off_curve(enc_b64: str) -> str:
    point = bytearray(b64url_decode(enc_b64))
    point[-1] ^= 0x01  # Changing y alone leaves the curve (the other y is p - y).
    return b64url_encode(bytes(point))


def build_negative(envelopes_file: dict[str, Any], manifests_file: dict[str, Any],
                   apk_file: dict[str, Any]) -> dict[str, Any]:
    contact = envelopes_file['documents'][0]
    identity = envelopes_file['documents'][1]
    reseal = envelopes_file['reseals'][0]
    good_keys = [{'kid': ORG_KEY.kid, 'private_hex': ORG_KEY._scalar().hex()}]
    cases: list[dict[str, Any]] = []

    def document_case(name: str, sealed: dict, envelopes: list, *, org_keys=None, org=ORG,
                      paths=CONTACT_PATHS) -> None:
        cases.append({
            'name': name, 'kind': 'document', 'expect': 'InvalidCiphertext', 'org': org,
            'paths': paths, 'sealed': sealed, 'envelopes': envelopes,
            'org_keys': org_keys if org_keys is not None else good_keys,
        })

    def mutated(source: dict) -> dict:
        return copy.deepcopy(source)

    sealed, envelope = contact['sealed'], contact['envelope']
    rkid = envelope['rkid']

    document_case('wrong org key (same kid, other private key)', sealed, [envelope],
                  org_keys=[{'kid': ORG_KEY.kid,
                             'private_hex': OTHER_KEY_SAME_KID._scalar().hex()}])
    document_case('no key for the envelope kek', sealed, [envelope],
                  org_keys=[{'kid': NEXT_ORG_KEY.kid, 'private_hex': NEXT_ORG_KEY._scalar().hex()}])
    document_case('wrong org', sealed, [envelope], org='org-other')

    doc = mutated(sealed)
    doc['full_name']['ct'] = _flip(doc['full_name']['ct'])
    document_case('tampered field ciphertext', doc, [envelope])

    doc = mutated(sealed)
    doc['full_name']['ct'] = _flip(doc['full_name']['ct'], -1)
    document_case('tampered field tag', doc, [envelope])

    doc = mutated(sealed)
    doc['full_name']['n'] = _flip(doc['full_name']['n'])
    document_case('tampered nonce', doc, [envelope])

    doc = mutated(sealed)
    doc['full_name'], doc['phone'] = doc['phone'], doc['full_name']
    document_case('value moved to another field (swap)', doc, [envelope])

    doc = mutated(sealed)
    doc['address'] = {'street': sealed['dob'], 'city': 'Los Angeles'}
    doc['dob'] = sealed['address']['street']
    document_case('value moved between nesting levels', doc, [envelope])

    doc = mutated(sealed)
    doc['full_name'] = identity['sealed']['full_name']
    doc['fle']['keys'].update(identity['sealed']['fle']['keys'])
    document_case('value moved to another document (with its header entry and envelope)',
                  doc, [envelope, identity['envelope']])

    relabelled = mutated(identity['envelope'])
    relabelled.update({'_id': f'rk:{rkid}', 'rkid': rkid, 'doc': CONTACT_ID})
    document_case("another record's envelope relabelled for this one", sealed, [relabelled])

    doc = mutated(reseal['sealed'])
    second_rkid = reseal['envelopes'][1]['rkid']
    doc['full_name']['rk'] = second_rkid
    document_case('wrong rkid (points at the other record key)', doc, reseal['envelopes'])

    doc = mutated(sealed)
    doc['full_name']['rk'] = fixed('unknown rkid', 16).hex()
    document_case('rkid missing from the header', doc, [envelope])

    doc = mutated(sealed)
    doc['fle']['keys'][rkid]['commit'] = b64url_encode(fixed('not the commitment'))
    document_case('commitment mismatch (header altered)', doc, [envelope])

    forged = seal_rk(
        fixed('forged rk'), org=ORG, doc_id=CONTACT_ID, rkid=rkid, kid=ORG_KEY.kid,
        public_b64=ORG_KEY.public_b64(), device='dev-666', at=NOW,
        ephemeral_ikm=fixed('forged ekm'))
    document_case('commitment mismatch (valid envelope of a different RK for the same rkid)',
                  sealed, [forged])

    doc = mutated(sealed)
    doc['fle']['v'] = 2
    document_case('unknown fle version in the header', doc, [envelope])

    doc = mutated(sealed)
    doc['full_name']['fle'] = 2
    document_case('unknown fle version in a value', doc, [envelope])

    doc = mutated(sealed)
    doc['full_name']['fle'] = True
    document_case('fle version true instead of 1', doc, [envelope])

    doc = mutated(sealed)
    del doc['fle']
    document_case('header removed', doc, [envelope])

    unknown_suite = mutated(envelope)
    unknown_suite['suite'] = 'hpke:0x0010-0x0001-0x0001'
    document_case('unknown suite', sealed, [unknown_suite])

    doc = mutated(sealed)
    doc['full_name']['ct'] = _truncate(doc['full_name']['ct'])
    document_case('truncated value (one byte short)', doc, [envelope])

    doc = mutated(sealed)
    doc['full_name']['ct'] = _truncate(doc['full_name']['ct'], 32)
    document_case('truncated value (one padding block short)', doc, [envelope])

    doc = mutated(sealed)
    doc['full_name']['n'] = _truncate(doc['full_name']['n'])
    document_case('truncated nonce', doc, [envelope])

    short = mutated(envelope)
    short['ct'] = _truncate(short['ct'])
    document_case('truncated envelope ciphertext', sealed, [short])

    off_curve = mutated(envelope)
    off_curve['enc'] = _off_curve(off_curve['enc'])
    document_case('enc point not on the curve', sealed, [off_curve])

    doc = mutated(sealed)
    doc['full_name']['ct'] += '='
    document_case('malformed base64 (padding)', doc, [envelope])

    doc = mutated(sealed)
    doc['full_name']['ct'] = doc['full_name']['ct'].replace('-', '+').replace('_', '/')
    if doc['full_name']['ct'] == sealed['full_name']['ct']:
        doc['full_name']['ct'] = '+' + doc['full_name']['ct'][1:]
    document_case('malformed base64 (standard alphabet)', doc, [envelope])

    doc = mutated(sealed)
    doc['full_name'] = 'Jane Q. Example'
    document_case('plaintext where a sealed value belongs', doc, [envelope])

    doc = mutated(sealed)
    doc['_id'] = IDENTITY_ID
    document_case('document _id changed', doc, [envelope])

    wrong_kek = mutated(envelope)
    wrong_kek['kek'] = NEXT_ORG_KEY.kid
    document_case('envelope kek relabelled (info binds kek)', sealed, [wrong_kek], org_keys=[
        *good_keys, {'kid': NEXT_ORG_KEY.kid, 'private_hex': NEXT_ORG_KEY._scalar().hex()}])

    # Envelopes opened on their own (open_envelope).
    for name, env in [
        ('envelope: tampered enc', {**envelope, 'enc': _flip(envelope['enc'], 5)}),
        ('envelope: tampered ct', {**envelope, 'ct': _flip(envelope['ct'])}),
        ('envelope: doc relabelled', {**envelope, 'doc': IDENTITY_ID}),
        ('envelope: enc not on the curve', {**envelope, 'enc': _off_curve(envelope['enc'])}),
        ('envelope: unknown suite', {**envelope, 'suite': 'hpke:0x0020-0x0001-0x0003'}),
        ('envelope: _id does not match rkid', {**envelope, '_id': 'rk:' + 'f' * 32}),
    ]:
        cases.append({'name': name, 'kind': 'envelope', 'expect': 'InvalidCiphertext', 'org': ORG,
                      'envelope': env, 'org_keys': good_keys})

    # Grants.
    grant = envelopes_file['grants'][0]['grant']
    advocate = {'advocate': ADVOCATE.advocate_id, 'apk': ADVOCATE.key_id,
                'private_hex': _primitives.private_scalar(ADVOCATE._private_key).hex()}
    other_apk = {**advocate, 'apk': 'apk-adv-17-2'}
    forged_grant = _seal_grant_with(
        ORG_KEY, ADVOCATE.public_record(), org=ORG, granted_by='admin-2',
        signing_key=OTHER_SIGNING_KEY, ephemeral_ikm=fixed('forged grant ekm'))
    for name, candidate, who, org in [
        ('grant: bad signature', {**grant, 'sig': _flip(grant['sig'])}, advocate, ORG),
        ('grant: signed by another key (planted)', forged_grant, advocate, ORG),
        ('grant: ciphertext swapped after signing', {**grant, 'ct': _flip(grant['ct'])},
         advocate, ORG),
        ('grant: opened by another APK of the same advocate', grant, other_apk, ORG),
        ('grant: wrong org', grant, advocate, 'org-other'),
    ]:
        cases.append({'name': name, 'kind': 'grant', 'expect': 'InvalidCiphertext', 'org': org,
                      'grant': candidate, 'advocate': who,
                      'pinned_public': SIGNING_KEY.public_b64()})

    # Wrapped APKs.
    blob = apk_file['cases'][0]['blob']
    passphrase = apk_file['cases'][0]['passphrase']
    for name, candidate, secret in [
        ('apk: wrong passphrase', blob, passphrase + '!'),
        ('apk: tampered ciphertext', {**blob, 'ct': _flip(blob['ct'])}, passphrase),
        ('apk: advocate relabelled (AAD)', {**blob, 'advocate': 'adv-18'}, passphrase),
        ('apk: pub replaced', {**blob, 'pub': RECOVERY.public_b64()}, passphrase),
        ('apk: memory cost out of bounds', {**blob, 'm': 2**31}, passphrase),
        ('apk: unknown version', {**blob, 'v': 2}, passphrase),
    ]:
        cases.append({'name': name, 'kind': 'apk', 'expect': 'InvalidCiphertext', 'blob': candidate,
                      'passphrase': secret})

    # Manifests.
    signed = manifests_file['manifests'][1]['signed']
    pinned = SIGNING_KEY.public_b64()
    tampered_body = copy.deepcopy(signed)
    tampered_body['body']['seq'] = 3
    for name, candidate, min_seq in [
        ('manifest: rollback (seq below the last accepted)', signed, 3),
        ('manifest: bad signature', {**signed, 'sig': _flip(signed['sig'])}, None),
        ('manifest: body altered after signing', tampered_body, None),
        ('manifest: signed by another key', sign_manifest(signed['body'], OTHER_SIGNING_KEY), None),
        ('manifest: alg changed', {**signed, 'alg': 'none'}, None),
        ('manifest: signer fingerprint mismatch',
         {**signed, 'signer': OTHER_SIGNING_KEY.fingerprint()}, None),
        ('manifest: extra member', {**signed, 'kid': 'x'}, None),
    ]:
        cases.append({'name': name, 'kind': 'manifest', 'expect': 'InvalidManifest',
                      'signed': candidate, 'pinned_public': pinned, 'min_seq': min_seq})
    cases += _strictness_cases(envelopes_file, manifests_file, apk_file)
    return {
        'kind': 'fle1_negative',
        'description': 'Every case must fail with the single error named in expect '
                       '(InvalidKeyMaterial cases with message, when given).',
        'generator': GENERATOR,
        'cases': cases,
    }


# -- fle1_negative.json: the strictness rules ---------------------------------
#
# Each case below is well-formed cryptography around one thing the spec
# refuses, so an implementation that skips the rule opens it: the values are
# sealed with the real record key, the envelopes with the real org key, and
# the grants, manifests and certificates carry valid signatures by the pinned
# org signing key.

_B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
P256_ORDER = _primitives.P256_ORDER


def _noncanonical(text: str) -> str:
    """The same bytes spelt with non-zero unused trailing bits (lenient decoders accept it)."""
    assert len(text) % 4 in (2, 3), 'only a partial last group has unused bits'
    return text[:-1] + _B64URL[_B64URL.index(text[-1]) | 1]


def _craft_value(padded: bytes, *, rk: bytes, rkid: str, doc_id: str, pointer: str,
                 nonce_label: str) -> dict[str, Any]:
    """A sealed value of arbitrary padded plaintext bytes under a real record key."""
    k_enc, _ = derive_record_keys(rk, rkid)
    nonce = fixed(nonce_label, 12)
    aad = field_aad(ORG, doc_id, pointer, rkid)
    ciphertext = _primitives.aes_gcm_seal(k_enc, nonce, padded, aad)
    return {'fle': 1, 'rk': rkid, 'n': b64url_encode(nonce), 'ct': b64url_encode(ciphertext)}


def _signed_by(body: dict[str, Any], key: SigningKey = SIGNING_KEY) -> dict[str, Any]:
    """Sign ``body`` without checking it (sign_manifest would refuse a bad body)."""
    return {'body': body, 'sig': key.sign(body), 'alg': 'ES256', 'signer': key.fingerprint()}


def _sign_grant(grant: dict[str, Any]) -> dict[str, Any]:
    unsigned = {name: value for name, value in grant.items() if name != 'sig'}
    return {**unsigned, 'sig': SIGNING_KEY.sign(unsigned)}


def _strictness_cases(envelopes_file: dict[str, Any], manifests_file: dict[str, Any],
                      apk_file: dict[str, Any]) -> list[dict[str, Any]]:
    from keys.envelopes import open_envelope
    from keys.keyring import Keyring

    cases: list[dict[str, Any]] = []
    good_keys = [{'kid': ORG_KEY.kid, 'private_hex': ORG_KEY._scalar().hex()}]
    contact = envelopes_file['documents'][0]
    sealed, envelope = contact['sealed'], contact['envelope']
    rkid = envelope['rkid']
    rk = open_envelope(envelope, Keyring([ORG_KEY]), ORG)

    def document_case(name: str, doc: dict, envelopes: list, *, paths=CONTACT_PATHS) -> None:
        cases.append({
            'name': name, 'kind': 'document', 'expect': 'InvalidCiphertext', 'org': ORG,
            'paths': paths, 'sealed': doc, 'envelopes': envelopes, 'org_keys': good_keys,
        })

    def with_full_name(value: dict) -> dict:
        doc = copy.deepcopy(sealed)
        doc['full_name'] = value
        return doc

    def plaintext_case(name: str, padded: bytes) -> None:
        value = _craft_value(padded, rk=rk, rkid=rkid, doc_id=CONTACT_ID, pointer='/full_name',
                             nonce_label=f'negative plaintext {name}')
        document_case(name, with_full_name(value), [envelope])

    # Padding (section 6).
    name_json = encode_value('Jane Q. Example')
    plaintext_case('padding: 32 trailing zeros after 80', pad(name_json) + bytes(32))
    plaintext_case('padding: no 80 marker', name_json + bytes(32 - len(name_json)))
    plaintext_case('padding: a block of zeros only', bytes(32))
    plaintext_case('padding: 80 followed by a non-zero byte',
                   name_json + b'\x80\x01' + bytes(30 - len(name_json)))
    # Plaintext JSON (section 6 and "Settled details").
    for name, text in [
        ('plaintext: NaN', b'NaN'),
        ('plaintext: Infinity', b'Infinity'),
        ('plaintext: 1e999 (infinite as a double)', b'1e999'),
        ('plaintext: -1e999 nested in an array', b'["x",-1e999]'),
        ('plaintext: 1e999 nested in an object', b'{"a":1e999}'),
        ('plaintext: integer of 310 digits (infinite as a double)', b'1' + b'0' * 309),
        ('plaintext: escaped lone surrogate in a string', b'"\\ud800"'),
        ('plaintext: escaped lone surrogate in a member name', b'{"\\udc00":1}'),
        ('plaintext: byte order mark', b'\xef\xbb\xbf"Jane Q. Example"'),
        ('plaintext: invalid UTF-8', b'"Jane \xff"'),
        ('plaintext: UTF-8 encoded surrogate', b'"\xed\xa0\x80"'),
        ('plaintext: two JSON values', b'"Jane" "Q"'),
        ('plaintext: trailing garbage', b'"Jane"x'),
        ('plaintext: empty', b''),
        ('plaintext: single quotes', b"'Jane'"),
    ]:
        plaintext_case(name, pad(text))

    # Sealed values (section 6).
    long_value = _craft_value(pad(encode_value('J' * 40)), rk=rk, rkid=rkid, doc_id=CONTACT_ID,
                              pointer='/full_name', nonce_label='negative long value')
    assert len(long_value['ct']) % 4 == 3
    document_case('sealed value: ct base64url with non-zero trailing bits',
                  with_full_name({**long_value, 'ct': _noncanonical(long_value['ct'])}), [envelope])
    label = 0
    while True:  # A nonce whose spelling holds '-' or '_', to respell in the standard alphabet.
        nonce_label = f'negative nonce with url-safe characters {label}'
        spelled = b64url_encode(fixed(nonce_label, 12))
        if '-' in spelled or '_' in spelled:
            break
        label += 1
    value = _craft_value(pad(name_json), rk=rk, rkid=rkid, doc_id=CONTACT_ID, pointer='/full_name',
                         nonce_label=nonce_label)
    document_case('sealed value: n in the standard base64 alphabet',
                  with_full_name({**value, 'n': value['n'].replace('-', '+').replace('_', '/')}),
                  [envelope])
    document_case('sealed value: n with a space inside',
                  with_full_name({**value, 'n': value['n'][:8] + ' ' + value['n'][8:]}), [envelope])
    document_case('sealed value: n with padding',
                  with_full_name({**value, 'n': value['n'] + '=='}), [envelope])
    document_case('sealed value: extra member',
                  with_full_name({**sealed['full_name'], 'v': 1}), [envelope])
    document_case('sealed value: missing member',
                  with_full_name({key: item for key, item in sealed['full_name'].items()
                                  if key != 'n'}), [envelope])
    document_case('sealed value: fle as the string "1"',
                  with_full_name({**sealed['full_name'], 'fle': '1'}), [envelope])
    document_case('sealed value: sealed value inside an array',
                  with_full_name([sealed['full_name']]), [envelope])

    # Uppercase rkids (section 2): in the header, the value and the envelope alike.
    upper = rkid.upper()
    doc = copy.deepcopy(sealed)
    doc['fle']['keys'] = {upper: doc['fle']['keys'][rkid]}
    for pointer_name in ('full_name', 'phone', 'dob', 'aliases'):
        doc[pointer_name]['rk'] = upper
    doc['address']['street']['rk'] = upper
    upper_envelope = {**envelope, '_id': f'rk:{upper}', 'rkid': upper}
    document_case('rkid in uppercase (header, values and envelope)', doc, [upper_envelope])
    cases.append({'name': 'envelope: rkid in uppercase', 'kind': 'envelope',
                  'expect': 'InvalidCiphertext', 'org': ORG, 'envelope': upper_envelope,
                  'org_keys': good_keys})

    # The header (section 7).
    def header_case(name: str, change) -> None:
        doc = copy.deepcopy(sealed)
        change(doc['fle'], doc['fle']['keys'][rkid])
        document_case(name, doc, [envelope])

    header_case('header entry: extra member', lambda header, entry: entry.update(note='x'))
    header_case('header entry: kek missing', lambda header, entry: entry.pop('kek'))
    header_case('header entry: commit missing', lambda header, entry: entry.pop('commit'))
    header_case('header entry: dev null', lambda header, entry: entry.update(dev=None))
    header_case('header entry: at null', lambda header, entry: entry.update(at=None))
    header_case('header entry: kek not an identifier',
                lambda header, entry: entry.update(kek='oek:2026-03'))
    header_case('header entry: dev not an identifier',
                lambda header, entry: entry.update(dev='dev:42'))
    header_case('header entry: at not whole UTC seconds',
                lambda header, entry: entry.update(at='2026-03-02T10:15:00.000Z'))
    header_case('header entry: at in non-ASCII digits',
                lambda header, entry: entry.update(at='２０２６-03-02T10:15:00Z'))
    header_case('header entry: commit with non-zero trailing bits',
                lambda header, entry: entry.update(commit=_noncanonical(entry['commit'])))
    header_case('header: extra member', lambda header, entry: header.update(note='x'))
    header_case('header: v true', lambda header, entry: header.update(v=True))
    header_case('header: keys an array', lambda header, entry: header.update(keys=[entry]))
    doc = {key: item for key, item in copy.deepcopy(sealed).items()
           if key not in ('full_name', 'phone', 'dob', 'aliases', 'address')}
    doc['fle']['keys'] = {}
    document_case('header: keys empty (and no sealed value)', doc, [])

    # Record ids (section 2): crafted with valid cryptography under the bad _id.
    for name, doc_id in [
        ('record _id of 513 characters', 'contact:' + 'x' * 505),
        ('record _id starting with _', '_design/contact'),
    ]:
        assert doc_id == '_design/contact' or len(doc_id) == 513
        value = _craft_value(pad(name_json), rk=rk, rkid=rkid, doc_id=doc_id, pointer='/full_name',
                             nonce_label=f'negative {name}')
        crafted = seal_rk(rk, org=ORG, doc_id=doc_id, rkid=rkid, kid=ORG_KEY.kid,
                          public_b64=ORG_KEY.public_b64(), device=None, at=NOW,
                          ephemeral_ikm=fixed(f'negative ekm {name}'))
        document_case(name, {'_id': doc_id, 'type': 'contact', 'full_name': value,
                             'fle': {'v': 1, 'keys': {rkid: sealed['fle']['keys'][rkid]}}},
                      [crafted], paths=['/full_name'])

    # Envelopes on their own (section 8).
    compressed = b64url_decode(envelope['enc'])
    compressed = bytes([2 + (compressed[-1] & 1)]) + compressed[1:33]
    for name, candidate in [
        ('envelope: enc with non-zero trailing bits',
         {**envelope, 'enc': _noncanonical(envelope['enc'])}),
        ('envelope: enc a compressed point', {**envelope, 'enc': b64url_encode(compressed)}),
        ('envelope: extra member', {**envelope, 'note': 'x'}),
        ('envelope: dev null', {**envelope, 'dev': None}),
        ('envelope: at null', {**envelope, 'at': None}),
        ('envelope: at not a UTC timestamp', {**envelope, 'at': '2026-03-02'}),
        ('envelope: kek not an identifier', {**envelope, 'kek': 'oek 2026'}),
        ('envelope: type missing', {k: v for k, v in envelope.items() if k != 'type'}),
    ]:
        cases.append({'name': name, 'kind': 'envelope', 'expect': 'InvalidCiphertext', 'org': ORG,
                      'envelope': candidate, 'org_keys': good_keys})

    # Grants (section 14), each signed by the pinned key after the change.
    grant = envelopes_file['grants'][0]['grant']
    advocate = {'advocate': ADVOCATE.advocate_id, 'apk': ADVOCATE.key_id,
                'private_hex': _primitives.private_scalar(ADVOCATE._private_key).hex()}
    info = grant_info(ORG, ORG_KEY.kid, ADVOCATE.advocate_id, ADVOCATE.key_id)
    grant_cases = [
        ('grant: extra member (signed)', _sign_grant({**grant, 'note': 'x'})),
        ('grant: granted_by missing (signed)',
         _sign_grant({k: v for k, v in grant.items() if k != 'granted_by'})),
        ('grant: _id not grant:<kek>:<advocate> (signed)',
         _sign_grant({**grant, '_id': 'grant:' + ORG_KEY.kid})),
        ('grant: granted_by not an identifier (signed)',
         _sign_grant({**grant, 'granted_by': 'admin 2'})),
        ('grant: enc with non-zero trailing bits (signed)',
         _sign_grant({**grant, 'enc': _noncanonical(grant['enc'])})),
        ('grant: sig with non-zero trailing bits', {**grant, 'sig': _noncanonical(grant['sig'])}),
    ]
    for name, scalar in [
        ('zero', bytes(32)),
        ('equal to the group order n', P256_ORDER.to_bytes(32, 'big')),
        ('above the group order n', (P256_ORDER + 1).to_bytes(32, 'big')),
        ('all ones', b'\xff' * 32),
    ]:
        enc, ciphertext = _primitives.hpke_seal(
            scalar, _primitives.load_public_b64(ADVOCATE.public_b64()), info,
            ephemeral_ikm=fixed(f'negative grant scalar {name}'))
        grant_cases.append((f'grant: org private scalar {name} (signed)', _sign_grant(
            {**grant, 'enc': b64url_encode(enc), 'ct': b64url_encode(ciphertext)})))
    for name, candidate in grant_cases:
        cases.append({'name': name, 'kind': 'grant', 'expect': 'InvalidCiphertext', 'org': ORG,
                      'grant': candidate, 'advocate': advocate,
                      'pinned_public': SIGNING_KEY.public_b64()})

    # Wrapped APKs (section 12): cheap parameters, valid AES-GCM under the KEK.
    passphrase = 'contrasen\u0303a segura 2026'  # NFD: 'n' + combining tilde.
    assert normalize_secret(passphrase) != passphrase.encode('utf-8')
    params = Argon2Params(1024, 1, 1)
    aad = _apk_aad(ADVOCATE.advocate_id, ADVOCATE.key_id)
    scalar = _primitives.private_scalar(ADVOCATE._private_key)

    def blob_with(name: str, secret: bytes, plaintext: bytes, *, salt_length: int = 16,
                  **changes: Any) -> dict[str, Any]:
        salt = fixed(f'negative apk salt {name}', salt_length)
        nonce = fixed(f'negative apk nonce {name}', 12)
        kek = _primitives.argon2id(secret, salt=salt, memory_kib=params.memory_kib,
                                   iterations=params.iterations, lanes=params.lanes)
        blob = {
            'v': 1, 'kdf': 'argon2id', 'm': params.memory_kib, 't': params.iterations,
            'p': params.lanes, 'salt': b64url_encode(salt), 'n': b64url_encode(nonce),
            'ct': b64url_encode(_primitives.aes_gcm_seal(kek, nonce, plaintext, aad)),
            'advocate': ADVOCATE.advocate_id, 'apk': ADVOCATE.key_id, 'pub': ADVOCATE.public_b64(),
        }
        blob.update(changes)
        return blob

    nfc = normalize_secret(passphrase)
    good_blob = blob_with('good', nfc, scalar)
    apk_cases = [
        ('apk: wrapped under the passphrase not normalised to NFC',
         blob_with('nfd', passphrase.encode('utf-8'), scalar)),
        ('apk: private scalar zero', blob_with('zero', nfc, bytes(32))),
        ('apk: private scalar equal to the group order n',
         blob_with('order', nfc, P256_ORDER.to_bytes(32, 'big'))),
        ('apk: salt of 15 bytes', blob_with('short salt', nfc, scalar, salt_length=15)),
        ('apk: salt with non-zero trailing bits',
         {**good_blob, 'salt': _noncanonical(good_blob['salt'])}),
        ('apk: extra member', {**good_blob, 'note': 'x'}),
        ('apk: kdf argon2i', {**good_blob, 'kdf': 'argon2i'}),
        ('apk: p zero', {**good_blob, 'p': 0}),
        ('apk: t above 32', {**good_blob, 't': 33}),
        ('apk: m below 8p', {**good_blob, 'm': 7}),
        ('apk: m a string', {**good_blob, 'm': '1024'}),
    ]
    for name, candidate in apk_cases:
        cases.append({'name': name, 'kind': 'apk', 'expect': 'InvalidCiphertext', 'blob': candidate,
                      'passphrase': passphrase})

    # Manifest bodies (section 11) under a valid signature by the pinned key.
    body = manifests_file['manifests'][1]['body']
    active, old = body['keys']

    def manifest_with(**changes: Any) -> dict[str, Any]:
        return {**copy.deepcopy(body), **changes}

    off_curve_pub = _off_curve(active['pub'])
    point = b64url_decode(active['pub'])
    compressed_pub = b64url_encode(bytes([2 + (point[-1] & 1)]) + point[1:33])
    many = [{'kid': f'oek-{index:03d}', 'suite': active['suite'], 'status': 'retired'}
            for index in range(64)]
    manifest_cases = [
        ('manifest body: extra member', manifest_with(note='x')),
        ('manifest body: seq missing', {k: v for k, v in body.items() if k != 'seq'}),
        ('manifest body: type of a certificate', manifest_with(type='fle/1/cert')),
        ('manifest body: org not an identifier', manifest_with(org='org acme')),
        ('manifest body: seq zero', manifest_with(seq=0)),
        ('manifest body: seq negative', manifest_with(seq=-2)),
        ('manifest body: seq a string', manifest_with(seq='2')),
        ('manifest body: keys empty', manifest_with(keys=[])),
        ('manifest body: 65 keys', manifest_with(keys=[active, *many])),
        ('manifest body: repeated kid',
         manifest_with(keys=[active, {**old, 'kid': active['kid']}])),
        ('manifest body: no active key',
         manifest_with(keys=[{**active, 'status': 'decrypt-only'}, old])),
        ('manifest body: two active keys',
         manifest_with(keys=[active, {k: v for k, v in old.items() if k != 'accept_until'}
                              | {'status': 'active'}])),
        ('manifest body: active key without pub',
         manifest_with(keys=[{k: v for k, v in active.items() if k != 'pub'}, old])),
        ('manifest body: pub not on the curve',
         manifest_with(keys=[{**active, 'pub': off_curve_pub}, old])),
        ('manifest body: pub a compressed point',
         manifest_with(keys=[{**active, 'pub': compressed_pub}, old])),
        ('manifest body: pub with non-zero trailing bits',
         manifest_with(keys=[{**active, 'pub': _noncanonical(active['pub'])}, old])),
        ('manifest body: accept_until on the active key',
         manifest_with(keys=[{**active, 'accept_until': '2026-04-30'}, old])),
        ('manifest body: accept_until not YYYY-MM-DD',
         manifest_with(keys=[active, {**old, 'accept_until': '2026-4-30'}])),
        ('manifest body: accept_until in non-ASCII digits',
         manifest_with(keys=[active, {**old, 'accept_until': '２０２６-04-30'}])),
        ('manifest body: unknown status',
         manifest_with(keys=[active, {**old, 'status': 'revoked'}])),
        ('manifest body: unknown suite',
         manifest_with(keys=[{**active, 'suite': 'hpke:0x0010-0x0001-0x0001'}, old])),
        ('manifest body: key entry extra member',
         manifest_with(keys=[{**active, 'note': 'x'}, old])),
        ('manifest body: key entry suite missing',
         manifest_with(keys=[active, {k: v for k, v in old.items() if k != 'suite'}])),
        ('manifest body: kid not an identifier',
         manifest_with(keys=[{**active, 'kid': 'oek/2026'}, old])),
        ('manifest body: keys an object', manifest_with(keys={'0': active})),
    ]
    signed_cases = [(name, _signed_by(candidate)) for name, candidate in manifest_cases]
    signed = manifests_file['manifests'][1]['signed']
    signed_cases.append(('manifest: sig with non-zero trailing bits',
                         {**signed, 'sig': _noncanonical(signed['sig'])}))
    for name, candidate in signed_cases:
        cases.append({'name': name, 'kind': 'manifest', 'expect': 'InvalidManifest',
                      'signed': candidate, 'pinned_public': SIGNING_KEY.public_b64(),
                      'min_seq': None})

    # Advocate certificates (section 13).
    cert = manifests_file['certificates'][0]['signed']
    cert_body = cert['body']
    off_curve_apk = _off_curve(cert_body['pub'])
    off_curve_fingerprint = ' '.join(
        hashlib.sha256(b64url_decode(off_curve_apk)).hexdigest()[index:index + 4]
        for index in range(0, 64, 4))

    def cert_with(**changes: Any) -> dict[str, Any]:
        return _signed_by({**cert_body, **changes})

    other_record = RECOVERY.public_record()
    certificate_cases = [
        ('certificate: bad signature', {**cert, 'sig': _flip(cert['sig'])}),
        ('certificate: sig with non-zero trailing bits',
         {**cert, 'sig': _noncanonical(cert['sig'])}),
        ('certificate: signed by another key', _signed_by(cert_body, OTHER_SIGNING_KEY)),
        ('certificate: signer fingerprint mismatch',
         {**cert, 'signer': OTHER_SIGNING_KEY.fingerprint()}),
        ('certificate: alg changed', {**cert, 'alg': 'ES384'}),
        ('certificate: extra member', {**cert, 'kid': 'x'}),
        ('certificate: body altered after signing',
         {**cert, 'body': {**cert_body, 'apk': 'apk-2'}}),
        ('certificate body: extra member (signed)', cert_with(note='x')),
        ('certificate body: certified_by missing (signed)',
         _signed_by({k: v for k, v in cert_body.items() if k != 'certified_by'})),
        ('certificate body: type of a manifest (signed)', cert_with(type='fle/1/manifest')),
        ('certificate body: fingerprint of another key (signed)',
         cert_with(fingerprint=other_record['fingerprint'])),
        ('certificate body: pub not on the curve (signed)',
         cert_with(pub=off_curve_apk, fingerprint=off_curve_fingerprint)),
        ('certificate body: unknown suite (signed)', cert_with(suite='hpke:0x0010-0x0001-0x0001')),
        ('certificate body: advocate not an identifier (signed)', cert_with(advocate='adv 17')),
        ('certificate body: certified_by not an identifier (signed)', cert_with(certified_by='')),
    ]
    for name, candidate in certificate_cases:
        cases.append({'name': name, 'kind': 'certificate', 'expect': 'InvalidKeyMaterial',
                      'message': 'the advocate certificate is not valid',
                      'signed': candidate, 'pinned_public': SIGNING_KEY.public_b64()})

    # Identifying paths (section 2): refused before anything is sealed or opened.
    for name, paths in [
        ('paths: no leading slash', ['full_name']),
        ('paths: the whole document', ['']),
        ('paths: the top-level member with the empty name', ['/']),
        ('paths: bad escape', ['/full~2name']),
        ('paths: the fle header', ['/fle']),
        ('paths: inside the fle header', ['/fle/keys']),
        ('paths: a top-level member starting with _', ['/_id']),
        ('paths: inside a top-level member starting with _', ['/_attachments/photo']),
        ('paths: one a prefix of the other (by token)', ['/address', '/address/street']),
        ('paths: the same pointer twice', ['/full_name', '/full_name']),
        ('paths: one string, not a list', '/full_name'),
    ]:
        cases.append({'name': name, 'kind': 'paths', 'expect': 'InvalidKeyMaterial', 'org': ORG,
                      'paths': paths, 'doc': contact['doc'],
                      'manifest_body': contact['manifest_body'],
                      'sealed': sealed, 'envelopes': [envelope], 'org_keys': good_keys})
    return cases


# -- Driver -------------------------------------------------------------------


def build_all() -> dict[str, dict[str, Any]]:
    """Return every generated vector file, by file name."""
    envelopes = build_envelopes()
    manifests = build_manifests()
    apk = build_apk()
    return {
        'fle1_fields.json': build_fields(),
        'fle1_envelopes.json': envelopes,
        'fle1_manifest.json': manifests,
        'fle1_apk.json': apk,
        'fle1_negative.json': build_negative(envelopes, manifests, apk),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + '\n'


def main(argv: list[str]) -> int:
    check = argv[1:] == ['--check']
    stale = []
    for name, data in build_all().items():
        path = VECTORS / name
        text = render(data)
        if check:
            if not path.exists() or path.read_text(encoding='utf-8') != text:
                stale.append(name)
        else:
            path.write_text(text, encoding='utf-8')
            print(f'wrote {path.relative_to(ROOT)}')
    if stale:
        print('stale vector files: ' + ', '.join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
