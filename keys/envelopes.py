"""Record-key envelopes: ``rk:<rkid>`` documents in the ``keyvault`` database.

An envelope is the HPKE (RFC 9180, base mode, single-shot) seal of one
32-byte record key (RK) to one org key version::

    {"_id": "rk:<rkid>", "type": "rk", "org": "org-acme",
     "doc": "<record _id>", "rkid": "<32 hex>", "kek": "<org kid>",
     "suite": "hpke:0x0010-0x0001-0x0002", "enc": "<b64url 65 bytes>",
     "ct": "<b64url 48 bytes>", "dev"?: "<device>", "at"?: "<UTC time>"}

``info = PAE("fle/1/rk", org, kek, doc, rkid as 16 bytes)``, AAD empty,
plaintext = RK. Rotation rewrites ``kek``, ``enc`` and ``ct`` in place under
the same ``_id`` and ``_rev`` (compare-and-set); record documents are never
touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keys import _primitives
from keys._encoding import (
    b64url_decode,
    b64url_encode,
    is_doc_id,
    is_identifier,
    is_rkid,
    is_timestamp,
    pae,
    rkid_bytes,
)
from fle import envelope_id
from keys.errors import InvalidCiphertext, InvalidKeyMaterial
from keys.orgkeys import SUITE
from keys.signing import load_public_key

if TYPE_CHECKING:  # pragma: no cover
    from keys.keyring import Keyring

__all__ = ['envelope_info', 'open_envelope', 'rewrap_envelope', 'validate_envelope']

#: HPKE ``info`` label of RK envelopes.
RK_TAG = 'fle/1/rk'
#: Length of a record key.
RK_LENGTH = 32
#: Length of an envelope ``ct``: the 32-byte RK plus the 16-byte GCM tag.
ENVELOPE_CT_LENGTH = RK_LENGTH + _primitives.TAG_LENGTH

_REQUIRED = frozenset({'_id', 'type', 'org', 'doc', 'rkid', 'kek', 'suite', 'enc', 'ct'})
_OPTIONAL = frozenset({'dev', 'at'})
#: Members CouchDB and PouchDB add; tolerated, never interpreted.
_COUCHDB = frozenset({'_rev', '_revisions'})
_ALLOWED = _REQUIRED | _OPTIONAL | _COUCHDB


def envelope_info(org: str, kek: str, doc_id: str, rkid: str) -> bytes:
    """Return the HPKE ``info`` of an RK envelope: ``PAE(RK_TAG, org, kek, doc_id, rkid bytes)``.

    Raises:
        ValueError: ``rkid`` is not an rkid.
    """
    return pae(RK_TAG, org, kek, doc_id, rkid_bytes(rkid))


def seal_rk(
    rk: bytes,
    *,
    org: str,
    doc_id: str,
    rkid: str,
    kid: str,
    public_b64: str,
    device: str | None,
    at: str | None,
    ephemeral_ikm: bytes | None = None,
) -> dict[str, Any]:
    """Seal a record key to an org public key and build its envelope.

    ``ephemeral_ikm`` is for known-answer vectors only (see
    ``_primitives.hpke_seal``).
    """
    recipient = load_public_key(public_b64)
    enc, ciphertext = _primitives.hpke_seal(
        rk, recipient, envelope_info(org, kid, doc_id, rkid), ephemeral_ikm=ephemeral_ikm)
    envelope = {
        '_id': envelope_id(rkid),
        'type': 'rk',
        'org': org,
        'doc': doc_id,
        'rkid': rkid,
        'kek': kid,
        'suite': SUITE,
        'enc': b64url_encode(enc),
        'ct': b64url_encode(ciphertext),
    }
    if device is not None:
        envelope['dev'] = device
    if at is not None:
        envelope['at'] = at
    return envelope


def validate_envelope(doc: Any) -> None:
    """Check an envelope's structure before the server stores it.

    This opens nothing (the server holds no private key); it refuses
    anything a well-behaved tablet would never send.

    Raises:
        InvalidKeyMaterial: The reason names the failing member, never its value.
    """
    _envelope_parts(doc)


def _envelope_parts(doc: Any, *, check_point: bool = True) -> tuple[bytes, bytes]:
    """Check an envelope like :func:`validate_envelope`.

    Args:
        doc: The envelope document.
        check_point: Load ``enc`` as a P-256 point to prove it is on the
            curve. Openers pass ``False``: HPKE decapsulation loads and
            checks the same point itself, so checking first only doubles
            the most expensive step of the structural check.

    Returns:
        ``(enc, ct)`` decoded, so the opener checks and decodes them once.

    Raises:
        InvalidKeyMaterial: The reason names the failing member, never its value.
    """
    if not isinstance(doc, dict):
        raise InvalidKeyMaterial('envelope is not an object')
    names = doc.keys()
    if not (_REQUIRED <= names and names <= _ALLOWED):
        missing = sorted(_REQUIRED - names)
        if missing:
            raise InvalidKeyMaterial(f"envelope member '{missing[0]}' is missing")
        raise InvalidKeyMaterial('envelope has an unknown member')
    if doc['type'] != 'rk':
        raise InvalidKeyMaterial("envelope 'type' must be rk")
    if not is_identifier(doc['org']):
        raise InvalidKeyMaterial("envelope 'org' is not a valid identifier")
    if not is_identifier(doc['kek']):
        raise InvalidKeyMaterial("envelope 'kek' is not a valid identifier")
    if not is_doc_id(doc['doc']):
        raise InvalidKeyMaterial("envelope 'doc' is not a valid document id")
    if not is_rkid(doc['rkid']):
        raise InvalidKeyMaterial("envelope 'rkid' is not 32 lowercase hex digits") from None
    if doc['_id'] != envelope_id(doc['rkid']):
        raise InvalidKeyMaterial("envelope '_id' must be rk:<rkid>")
    # APPSEC: a hard-coded suite allow-list; unknown suites are refused,
    # never "tried anyway" (downgrade).
    if doc['suite'] != SUITE:
        raise InvalidKeyMaterial("envelope 'suite' is not an allowed suite")
    try:
        enc = b64url_decode(doc['enc'], length=_primitives.SEC1_LENGTH)
        if check_point:
            _primitives.load_public_sec1(enc)
        elif enc[0] != 0x04:  # Uncompressed only, as load_public_sec1 demands.
            raise ValueError('compressed point')
    except (ValueError, _primitives.PrimitiveFailure):
        raise InvalidKeyMaterial("envelope 'enc' is not a valid P-256 point") from None
    try:
        ciphertext = b64url_decode(doc['ct'], length=ENVELOPE_CT_LENGTH)
    except ValueError:
        raise InvalidKeyMaterial("envelope 'ct' is not 48 bytes of base64url") from None
    if 'dev' in doc and not is_identifier(doc['dev']):
        raise InvalidKeyMaterial("envelope 'dev' is not a valid identifier")
    if 'at' in doc and not is_timestamp(doc['at']):
        raise InvalidKeyMaterial("envelope 'at' is not a UTC timestamp")
    return enc, ciphertext


def open_rk(
    envelope: Any, keyring: Keyring, *, org: str, doc_id: str, rkid: str,
) -> bytes:
    """Open an envelope for a known record and ``rkid``.

    ``doc_id`` and ``rkid`` come from where the caller actually found the
    ciphertext, never from the envelope, so a moved envelope fails.

    Raises:
        InvalidCiphertext: Any failure at all.
    """
    try:
        # APPSEC: the curve check happens inside HPKE decapsulation (OpenSSL
        # refuses an off-curve peer point); the negative vector with an
        # off-curve enc proves this path still fails with the opaque error.
        enc, ciphertext = _envelope_parts(envelope, check_point=False)
    except InvalidKeyMaterial:
        raise InvalidCiphertext from None
    # The checks below make the envelope's rkid, doc and org the caller's.
    if envelope['rkid'] != rkid or envelope['doc'] != doc_id or envelope['org'] != org:
        raise InvalidCiphertext from None
    org_key = keyring.get(envelope['kek'])
    if org_key is None:
        raise InvalidCiphertext from None
    try:
        rk = org_key._hpke_open(
            enc, ciphertext, envelope_info(org, envelope['kek'], doc_id, rkid))
    except (ValueError, _primitives.PrimitiveFailure):
        raise InvalidCiphertext from None
    if len(rk) != RK_LENGTH:
        raise InvalidCiphertext from None
    return rk


def open_envelope(envelope: dict[str, Any], keyring: Keyring, org: str) -> bytes:
    """Open an RK envelope and return the 32-byte record key.

    The envelope's own ``doc`` and ``rkid`` are used; they are bound into
    the HPKE ``info``, so altering either makes opening fail.

    Raises:
        InvalidCiphertext: Wrong or missing key version, tampering,
            another org, unknown suite, malformed or off-curve ``enc``.
    """
    doc_id = envelope.get('doc') if isinstance(envelope, dict) else None
    rkid = envelope.get('rkid') if isinstance(envelope, dict) else None
    if not (isinstance(doc_id, str) and isinstance(rkid, str)):
        raise InvalidCiphertext from None
    return open_rk(envelope, keyring, org=org, doc_id=doc_id, rkid=rkid)


def rewrap_envelope(
    envelope: dict[str, Any],
    *,
    keyring: Keyring,
    new_key_public_b64: str,
    new_kid: str,
    org: str,
) -> dict[str, Any]:
    """Re-seal an envelope's RK from its current key version to a new one.

    Returns a copy with the same ``_id`` and ``_rev`` (so writing it back is
    a compare-and-set) and new ``kek``, ``enc`` and ``ct``; ``info`` uses
    ``new_kid``. Record documents are not involved.

    Raises:
        InvalidCiphertext: The envelope cannot be opened with ``keyring``.
        InvalidKeyMaterial: ``new_kid`` or ``new_key_public_b64`` is malformed.
    """
    if not is_identifier(new_kid):
        raise InvalidKeyMaterial("'new_kid' is not a valid key identifier")
    load_public_key(new_key_public_b64, field='new_key_public_b64')
    rk = open_envelope(envelope, keyring, org)
    resealed = seal_rk(
        rk,
        org=org,
        doc_id=envelope['doc'],
        rkid=envelope['rkid'],
        kid=new_kid,
        public_b64=new_key_public_b64,
        device=None,
        at=None,
    )
    rewrapped = dict(envelope)
    for name in ('kek', 'suite', 'enc', 'ct'):
        rewrapped[name] = resealed[name]
    return rewrapped
