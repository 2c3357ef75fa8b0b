"""Grants: an org key version's private key sealed to one advocate's APK.

A grant lives in the ``keyvault`` database::

    {"_id": "grant:<kek>:<advocate>", "type": "grant", "kek": "oek-2026-03",
     "advocate": "adv-17", "apk": "apk-...", "suite": "hpke:0x0010-0x0001-0x0002",
     "enc": "<b64url 65>", "ct": "<b64url 48>", "granted_by": "admin-2",
     "sig": "<b64url r||s>"}

``ct`` = HPKE seal of the 32-byte org private scalar to the APK, ``info =
PAE("fle/1/grant", org, kek, advocate, apk)``, empty AAD. ``sig`` is the
org signing key's ES256 signature over the canonical JSON of every other member
(CouchDB's ``_rev`` and ``_revisions`` excluded), so a server cannot plant or
alter grants. Advocates verify it before opening.
"""

from __future__ import annotations

from typing import Any

from keys import _primitives
from keys._encoding import b64url_decode, b64url_encode, is_identifier, pae
from keys.advocates import AdvocateKey, check_public_record
from keys.errors import InvalidCiphertext, InvalidKeyMaterial
from keys.orgkeys import SUITE, OrgKeyPair
from keys.signing import SignatureRefused, SigningKey, load_public_key, verify_signature

__all__ = ['check_grant_signature', 'grant_info', 'open_grant', 'seal_grant', 'validate_grant']

GRANT_TAG = 'fle/1/grant'
_GRANT_KEYS = frozenset(
    {'_id', 'type', 'kek', 'advocate', 'apk', 'suite', 'enc', 'ct', 'granted_by', 'sig'})
_COUCHDB = frozenset({'_rev', '_revisions'})
_WRAPPED_LENGTH = _primitives.SCALAR_LENGTH + _primitives.TAG_LENGTH


def grant_info(org: str, kek: str, advocate: str, apk: str) -> bytes:
    """Return the HPKE ``info`` of a grant."""
    return pae(GRANT_TAG, org, kek, advocate, apk)


def _signed_part(grant: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in grant.items() if name not in _COUCHDB | {'sig'}}


def _seal_grant_with(
    org_key: OrgKeyPair,
    advocate_public_record: dict[str, Any],
    *,
    org: str,
    granted_by: str,
    signing_key: SigningKey,
    ephemeral_ikm: bytes | None,
) -> dict[str, Any]:
    """Deterministic twin of :func:`seal_grant` (vectors only)."""
    check_public_record(advocate_public_record)
    if not is_identifier(org):
        raise InvalidKeyMaterial("'org' is not a valid identifier")
    if not is_identifier(granted_by):
        raise InvalidKeyMaterial("'granted_by' is not a valid identifier")
    advocate = advocate_public_record['advocate']
    apk = advocate_public_record['apk']
    enc, ciphertext = _primitives.hpke_seal(
        org_key._scalar(),
        load_public_key(advocate_public_record['pub']),
        grant_info(org, org_key.kid, advocate, apk),
        ephemeral_ikm=ephemeral_ikm,
    )
    grant = {
        '_id': f'grant:{org_key.kid}:{advocate}',
        'type': 'grant',
        'kek': org_key.kid,
        'advocate': advocate,
        'apk': apk,
        'suite': SUITE,
        'enc': b64url_encode(enc),
        'ct': b64url_encode(ciphertext),
        'granted_by': granted_by,
    }
    grant['sig'] = signing_key.sign(grant)
    return grant


def seal_grant(
    org_key: OrgKeyPair,
    advocate_public_record: dict[str, Any],
    *,
    org: str,
    granted_by: str,
    signing_key: SigningKey,
) -> dict[str, Any]:
    """Seal an org key version to a certified advocate key and sign it.

    Call this only for a record whose certificate verified
    (``verify_certificate``); that is how the admin knows the APK is the
    advocate's and not the server's.

    Raises:
        InvalidKeyMaterial: The record, ``org`` or ``granted_by`` is malformed.
    """
    return _seal_grant_with(
        org_key, advocate_public_record, org=org, granted_by=granted_by,
        signing_key=signing_key, ephemeral_ikm=None)


def check_wrapped_key_shape(doc: Any, kind: str, members: frozenset[str],
                            identifiers: tuple[str, ...]) -> None:
    """Check what a grant and a share have in common before the server stores one.

    The members (CouchDB's ``_rev`` and ``_revisions`` aside), ``type``, the
    identifier members, ``_id`` (``grant:<kek>:<advocate>``), the suite, a
    valid P-256 ``enc`` and a 48-byte wrapped key ``ct``.

    Raises:
        InvalidKeyMaterial: The reason names ``kind`` and the member, never its value.
    """
    if not isinstance(doc, dict) or not members <= set(doc) <= members | _COUCHDB:
        raise InvalidKeyMaterial(f'{kind} has missing or unknown members')
    if doc['type'] != kind:
        raise InvalidKeyMaterial(f"{kind} 'type' must be {kind}")
    for name in identifiers:
        if not is_identifier(doc[name]):
            raise InvalidKeyMaterial(f"{kind} '{name}' is not a valid identifier")
    if doc['_id'] != f"grant:{doc['kek']}:{doc['advocate']}":
        raise InvalidKeyMaterial(f"{kind} '_id' must be grant:<kek>:<advocate>")
    if doc['suite'] != SUITE:
        raise InvalidKeyMaterial(f"{kind} 'suite' is not an allowed suite")
    try:
        _primitives.load_public_sec1(b64url_decode(doc['enc'], length=_primitives.SEC1_LENGTH))
    except (ValueError, _primitives.PrimitiveFailure):
        raise InvalidKeyMaterial(f"{kind} 'enc' is not a valid P-256 point") from None
    try:
        b64url_decode(doc['ct'], length=_WRAPPED_LENGTH)
    except ValueError:
        raise InvalidKeyMaterial(f"{kind} 'ct' is not 48 bytes of base64url") from None


def validate_grant(grant: Any) -> None:
    """Check a grant's structure before the server stores it.

    Raises:
        InvalidKeyMaterial: The reason names the member, never its value.
    """
    check_wrapped_key_shape(grant, 'grant', _GRANT_KEYS, ('kek', 'advocate', 'apk', 'granted_by'))
    try:
        b64url_decode(grant['sig'], length=_primitives.SIGNATURE_LENGTH)
    except ValueError:
        raise InvalidKeyMaterial("grant 'sig' is not a 64-byte signature") from None


def check_grant_signature(grant: Any, signer_public_b64: str) -> None:
    """Check a grant's structure and its signature by the org signer.

    The server calls this before storing a grant, so a grant signed by any
    other key (planted by whoever can reach the API) is refused instead of
    breaking the recipient's keyring later.

    Raises:
        InvalidKeyMaterial: The grant is malformed, its signature does not
            verify against ``signer_public_b64``, or that key is malformed.
    """
    signer = load_public_key(signer_public_b64, field='signer public key')
    validate_grant(grant)
    try:
        verify_signature(_signed_part(grant), grant['sig'], signer)
    except SignatureRefused:
        raise InvalidKeyMaterial("grant 'sig' does not verify against the org signer") from None


def open_grant(
    grant: dict[str, Any],
    advocate_key: AdvocateKey,
    *,
    org: str,
    pinned_public_b64: str,
) -> OrgKeyPair:
    """Verify a grant's signature, then open it with the advocate's APK.

    Returns:
        The org key version (``OrgKeyPair`` a.k.a. ``OrgPrivateKey``).

    Raises:
        InvalidCiphertext: Bad signature, a grant for another advocate or
            APK, another org, tampering, or anything malformed.
        InvalidKeyMaterial: ``pinned_public_b64`` itself is malformed.
    """
    admin_key = load_public_key(pinned_public_b64, field='pinned public key')
    try:
        validate_grant(grant)
        # APPSEC: authenticity first; nothing from an unsigned grant is used.
        verify_signature(_signed_part(grant), grant['sig'], admin_key)
    except (InvalidKeyMaterial, SignatureRefused):
        raise InvalidCiphertext from None
    if grant['advocate'] != advocate_key.advocate_id or grant['apk'] != advocate_key.key_id:
        raise InvalidCiphertext from None
    try:
        scalar = advocate_key._hpke_open(
            b64url_decode(grant['enc']),
            b64url_decode(grant['ct']),
            grant_info(org, grant['kek'], grant['advocate'], grant['apk']),
        )
        return OrgKeyPair._from_scalar(grant['kek'], scalar)
    except (ValueError, TypeError, _primitives.PrimitiveFailure, InvalidKeyMaterial):
        raise InvalidCiphertext from None
