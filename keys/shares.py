"""Shares: an org key version handed by one holder to another certified person.

A share is made on the machine of someone who already holds the version (a
custodian with their own grant, or the trustees with the recovery key), not
on the admin's machine, so it carries no admin signature. It lives in the
``keyvault`` database under the same id as a grant, so one person holds a
version at most once and revocation and retirement delete it like a grant::

    {"_id": "grant:<kek>:<advocate>", "type": "share", "kek": "oek-2026-03",
     "advocate": "adv-17", "apk": "apk-...", "suite": "hpke:0x0010-0x0001-0x0002",
     "enc": "<b64url 65>", "ct": "<b64url 48>", "shared_by": "sup-2",
     "via": "share"}

``ct`` = HPKE seal of the 32-byte org private scalar to the recipient's APK,
``info = PAE("fle/1/share", org, kek, advocate, apk)``, empty AAD.

Authenticity comes from the signed manifest instead of a signature: the
recipient opens the share and accepts the key only if its public key is the
``pub`` the manifest (verified against the pinned signer) lists for ``kek``.
A server that plants a share would have to know that version's private key
already. Shares are made only of live versions (active or decrypt-only),
which the manifest lists with their ``pub``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keys import _primitives
from keys._encoding import b64url_decode, b64url_encode, is_identifier, pae
from keys.advocates import AdvocateKey, check_public_record
from keys.errors import InvalidCiphertext, InvalidKeyMaterial
from keys.grants import check_wrapped_key_shape, open_grant
from keys.keyring import Keyring
from keys.orgkeys import SUITE, OrgKeyPair
from keys.signing import load_public_key

__all__ = ['LIVE_STATUSES', 'SHARE_VIAS', 'live_entry', 'open_holdings', 'open_share',
           'seal_share', 'share_info', 'validate_share']

SHARE_TAG = 'fle/1/share'
#: How a share was made: by a holder's own grant, or by the trustees' recovery key.
SHARE_VIAS = ('share', 'recovery')
#: Manifest statuses of the versions that may be shared.
LIVE_STATUSES = ('active', 'decrypt-only')
_SHARE_KEYS = frozenset(
    {'_id', 'type', 'kek', 'advocate', 'apk', 'suite', 'enc', 'ct', 'shared_by', 'via'})


def share_info(org: str, kek: str, advocate: str, apk: str) -> bytes:
    """Return the HPKE ``info`` of a share."""
    return pae(SHARE_TAG, org, kek, advocate, apk)


def live_entry(manifest_body: dict[str, Any], kek: str) -> dict[str, Any] | None:
    """Return the manifest entry of a live version ``kek``, or ``None``."""
    entries: Sequence[dict[str, Any]] = manifest_body.get('keys', ())
    for entry in entries:
        if entry.get('kid') == kek and entry.get('status') in LIVE_STATUSES and 'pub' in entry:
            return entry
    return None


def seal_share(
    org_key: OrgKeyPair,
    recipient_public_record: dict[str, Any],
    *,
    org: str,
    shared_by: str,
    manifest_body: dict[str, Any],
    via: str = 'share',
) -> dict[str, Any]:
    """Seal a held org key version to a certified recipient.

    Call this only for a recipient whose certificate verified against the
    pinned signer (``verify_certificate``), with a manifest body that
    verified against it too.

    Raises:
        InvalidKeyMaterial: The record or a name is malformed, the version is
            not live in the manifest, or ``org_key`` is not the key the
            manifest lists for it (a share must never pass on another key).
    """
    check_public_record(recipient_public_record)
    for name, value in (('org', org), ('shared_by', shared_by)):
        if not is_identifier(value):
            raise InvalidKeyMaterial(f"'{name}' is not a valid identifier")
    if via not in SHARE_VIAS:
        raise InvalidKeyMaterial("'via' must be share or recovery")
    entry = live_entry(manifest_body, org_key.kid)
    if entry is None or entry['pub'] != org_key.public_b64():
        raise InvalidKeyMaterial('the key is not a live version of the manifest')
    advocate = recipient_public_record['advocate']
    apk = recipient_public_record['apk']
    enc, ciphertext = _primitives.hpke_seal(
        org_key._scalar(), load_public_key(recipient_public_record['pub']),
        share_info(org, org_key.kid, advocate, apk))
    return {
        '_id': f'grant:{org_key.kid}:{advocate}',
        'type': 'share',
        'kek': org_key.kid,
        'advocate': advocate,
        'apk': apk,
        'suite': SUITE,
        'enc': b64url_encode(enc),
        'ct': b64url_encode(ciphertext),
        'shared_by': shared_by,
        'via': via,
    }


def validate_share(share: Any) -> None:
    """Check a share's structure before the server stores it.

    Raises:
        InvalidKeyMaterial: The reason names the member, never its value.
    """
    check_wrapped_key_shape(share, 'share', _SHARE_KEYS,
                            ('kek', 'advocate', 'apk', 'shared_by'))
    if share['via'] not in SHARE_VIAS:
        raise InvalidKeyMaterial("share 'via' must be share or recovery")


def open_share(
    share: dict[str, Any],
    advocate_key: AdvocateKey,
    *,
    org: str,
    manifest_body: dict[str, Any],
) -> OrgKeyPair:
    """Open a share and check it against the verified manifest.

    Args:
        manifest_body: A manifest body the caller verified against the
            pinned signer (``verify_manifest``).

    Raises:
        InvalidCiphertext: A share for someone else, a version the manifest
            does not list as live, a key other than the listed one,
            tampering, or anything malformed (one error).
    """
    try:
        validate_share(share)
    except InvalidKeyMaterial:
        raise InvalidCiphertext from None
    if share['advocate'] != advocate_key.advocate_id or share['apk'] != advocate_key.key_id:
        raise InvalidCiphertext from None
    entry = live_entry(manifest_body, share['kek'])
    if entry is None:
        raise InvalidCiphertext from None
    try:
        scalar = advocate_key._hpke_open(
            b64url_decode(share['enc']), b64url_decode(share['ct']),
            share_info(org, share['kek'], share['advocate'], share['apk']))
        org_key = OrgKeyPair._from_scalar(share['kek'], scalar)
    except (ValueError, TypeError, _primitives.PrimitiveFailure, InvalidKeyMaterial):
        raise InvalidCiphertext from None
    # APPSEC: the binding that replaces a signature; a share whose key is
    # not the manifest's key for that version is refused.
    if org_key.public_b64() != entry['pub']:
        raise InvalidCiphertext from None
    return org_key


def open_holdings(
    holdings: Sequence[dict[str, Any]],
    advocate_key: AdvocateKey,
    *,
    org: str,
    pinned_public_b64: str,
    manifest_body: dict[str, Any],
) -> Keyring:
    """Open a person's grants (admin-signed) and shares into one keyring.

    Args:
        holdings: The ``grant:`` documents of one person (grants and shares).
        manifest_body: A manifest body verified against the pinned signer.

    Raises:
        InvalidCiphertext: A grant or share fails (signature, binding,
            recipient, tampering).
        InvalidKeyMaterial: Nothing held, or a version held twice.
    """
    opened = []
    for doc in holdings:
        if isinstance(doc, dict) and doc.get('type') == 'share':
            opened.append(open_share(doc, advocate_key, org=org, manifest_body=manifest_body))
        else:
            opened.append(open_grant(doc, advocate_key, org=org,
                                     pinned_public_b64=pinned_public_b64))
    return Keyring(opened)
