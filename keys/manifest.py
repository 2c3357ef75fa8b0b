"""The signed key manifest that tablets pin.

Body::

    {"type": "fle/1/manifest", "org": "org-acme", "seq": 12,
     "keys": [{"kid": "oek-2026-03", "suite": "hpke:0x0010-0x0001-0x0002",
               "pub": "<b64url SEC1>", "status": "active"},
              {"kid": "oek-2025-09", "suite": "...", "status": "decrypt-only",
               "accept_until": "2026-04-30"}]}

Signed as ``{"body", "sig", "alg": "ES256", "signer"}`` by the org signing
key (``keys.signing``). Tablets verify against the public key pinned at
enrollment, refuse a ``seq`` below the last one they accepted, and seal only
to the single ``active`` key.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from keys._encoding import DATE, MAX_SAFE_INTEGER, is_identifier
from keys.errors import InvalidKeyMaterial, InvalidManifest
from keys.orgkeys import SUITE
from keys.signing import SignatureRefused, SigningKey, load_public_key, sign_body, verify_signed

__all__ = ['MANIFEST_TYPE', 'active_key', 'build_manifest', 'sign_manifest', 'verify_manifest']

#: The ``type`` member of every manifest body (domain separation of signatures).
MANIFEST_TYPE = 'fle/1/manifest'
_STATUSES = frozenset({'active', 'decrypt-only', 'retired'})
_BODY_KEYS = frozenset({'type', 'org', 'seq', 'keys'})
_ENTRY_REQUIRED = frozenset({'kid', 'suite', 'status'})
_ENTRY_OPTIONAL = frozenset({'pub', 'accept_until'})
_ENTRY_ALLOWED = _ENTRY_REQUIRED | _ENTRY_OPTIONAL
_MAX_KEYS = 64


def _check_entry(index: int, entry: Any) -> None:
    # Every seal checks its manifest: the reasons (which name the entry)
    # are formatted only when one is raised.
    if not isinstance(entry, dict):
        raise InvalidKeyMaterial(f"manifest 'keys[{index}]' is not an object")
    names = entry.keys()
    if not _ENTRY_REQUIRED <= names or not names <= _ENTRY_ALLOWED:
        raise InvalidKeyMaterial(f"manifest 'keys[{index}]' has missing or unknown members")
    if not is_identifier(entry['kid']):
        raise InvalidKeyMaterial(f"manifest 'keys[{index}].kid' is not a valid key identifier")
    if entry['suite'] != SUITE:
        raise InvalidKeyMaterial(f"manifest 'keys[{index}].suite' is not an allowed suite")
    if entry['status'] not in _STATUSES:
        raise InvalidKeyMaterial(f"manifest 'keys[{index}].status' is not a known status")
    if 'pub' in entry:
        try:
            load_public_key(entry['pub'])
        except InvalidKeyMaterial:
            # load_public_key's reason, naming the entry.
            raise InvalidKeyMaterial(f"'keys[{index}].pub' is not a P-256 public key") from None
    elif entry['status'] == 'active':
        raise InvalidKeyMaterial(f"manifest 'keys[{index}].pub' is required for the active key")
    if 'accept_until' in entry:
        if entry['status'] != 'decrypt-only':
            raise InvalidKeyMaterial(
                f"manifest 'keys[{index}].accept_until' is allowed on decrypt-only keys only")
        if not isinstance(entry['accept_until'], str) or not DATE.fullmatch(entry['accept_until']):
            raise InvalidKeyMaterial(
                f"manifest 'keys[{index}].accept_until' is not a YYYY-MM-DD date")


def _check_body(body: Any) -> dict[str, Any]:
    """Check a manifest body's structure.

    Returns:
        The one ``active`` key entry (the body's own dict, not a copy).

    Raises:
        InvalidKeyMaterial: The body is malformed (the reason names the member).
    """
    if not isinstance(body, dict) or body.keys() != _BODY_KEYS:
        raise InvalidKeyMaterial('manifest body has missing or unknown members')
    if body['type'] != MANIFEST_TYPE:
        raise InvalidKeyMaterial("manifest 'type' is not fle/1/manifest")
    if not is_identifier(body['org']):
        raise InvalidKeyMaterial("manifest 'org' is not a valid identifier")
    seq = body['seq']
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SAFE_INTEGER:
        raise InvalidKeyMaterial("manifest 'seq' is not a positive integer")
    keys = body['keys']
    if not isinstance(keys, list) or not 1 <= len(keys) <= _MAX_KEYS:
        raise InvalidKeyMaterial("manifest 'keys' must list 1 to 64 keys")
    kids = set()
    active: list[dict[str, Any]] = []
    for index, entry in enumerate(keys):
        _check_entry(index, entry)
        kids.add(entry['kid'])
        if entry['status'] == 'active':
            active.append(entry)
    if len(kids) != len(keys):
        raise InvalidKeyMaterial("manifest 'keys' repeats a kid")
    if len(active) != 1:
        raise InvalidKeyMaterial("manifest 'keys' must hold exactly one active key")
    return active[0]


def build_manifest(org: str, seq: int, keys: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Build and check a manifest body.

    Args:
        org: Org identifier.
        seq: Sequence number; each new manifest must use a higher one.
        keys: Key entries ``{"kid", "suite", "pub"?, "status",
            "accept_until"?}``; ``OrgKeyPair.manifest_entry`` makes them.

    Raises:
        InvalidKeyMaterial: The body would be malformed.
    """
    body = {
        'type': MANIFEST_TYPE,
        'org': org,
        'seq': seq,
        'keys': [dict(entry) if isinstance(entry, dict) else entry for entry in keys],
    }
    _check_body(body)
    return body


def sign_manifest(body: dict[str, Any], signing_key: SigningKey) -> dict[str, Any]:
    """Sign a manifest body with the org signing key.

    Returns:
        ``{"body": body, "sig": ..., "alg": "ES256", "signer": fingerprint}``.

    Raises:
        InvalidKeyMaterial: The body is malformed.
    """
    _check_body(body)
    return sign_body(copy.deepcopy(body), signing_key)


def verify_manifest(
    signed: dict[str, Any], pinned_public_b64: str, *, min_seq: int | None = None,
) -> dict[str, Any]:
    """Verify a signed manifest against the pinned signing key.

    Args:
        signed: The signed manifest.
        pinned_public_b64: The org signing key pinned at enrollment.
        min_seq: The highest ``seq`` accepted before; a lower one is a
            rollback and is refused. An equal one is accepted (re-fetch).

    Returns:
        A copy of the verified body.

    Raises:
        InvalidManifest: Bad signature or signer, malformed, or rolled back.
        InvalidKeyMaterial: ``pinned_public_b64`` itself is malformed.
    """
    try:
        body = verify_signed(signed, pinned_public_b64)
        _check_body(body)
    except (SignatureRefused, InvalidKeyMaterial):
        # A malformed pinned key is a configuration error: let it surface.
        load_public_key(pinned_public_b64, field='pinned public key')
        raise InvalidManifest from None
    # APPSEC: rollback protection; an older, validly signed manifest could
    # otherwise re-activate a retired key.
    if min_seq is not None and body['seq'] < min_seq:
        raise InvalidManifest from None
    return copy.deepcopy(body)


def active_key(body: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of the one ``active`` key entry of a manifest body.

    Raises:
        InvalidManifest: The body is malformed.
    """
    try:
        active = _check_body(body)
    except InvalidKeyMaterial:
        raise InvalidManifest from None
    return dict(active)
