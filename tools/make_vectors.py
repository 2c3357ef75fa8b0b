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
    return {
        'kind': 'fle1_negative',
        'description': 'Every case must fail with the single opaque error named in expect.',
        'generator': GENERATOR,
        'cases': cases,
    }


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
