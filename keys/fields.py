"""Field-level encryption of record documents, format fle/1.

Sealing (on the tablet)::

    RK      = 32 random bytes,  rkid = 16 random bytes (32 lowercase hex in JSON)
    K_enc   = HKDF-SHA256(RK, salt=rkid bytes, info="fle/1/enc",    L=32)
    commit  = HKDF-SHA256(RK, salt=rkid bytes, info="fle/1/commit", L=32)
    pt      = UTF-8 JSON of the value, then 0x80, then zeros to a multiple of 32
    aad     = PAE("fle/1/field", org, _id, JSON Pointer, rkid bytes)
    ct      = AES-256-GCM(K_enc, 12 random bytes, pt, aad)

Each identifying field is replaced in place by ``{"fle": 1, "rk": rkid,
"n": nonce, "ct": ct}``; the document gains an ``fle`` header
``{"v": 1, "keys": {rkid: {"commit", "kek", "dev"?, "at"}}}``; RK is sealed to
the manifest's active org key in a separate envelope (``keys.envelopes``).

Opening (on an advocate's machine) rebuilds every AAD and HPKE ``info``
from where the ciphertext actually is, checks ``commit`` in constant time
before decrypting, and raises :class:`keys.errors.InvalidCiphertext` for any
failure.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import functools
import hmac
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import fle
from fle.shapes import MAX_CIPHERTEXT_LENGTH, NONCE_LENGTH, PAD_BLOCK, TAG_LENGTH
from keys import _primitives
from keys._encoding import (
    b64url_encode,
    format_timestamp,
    is_doc_id,
    is_identifier,
    locate,
    pae,
    parse_pointer,
    rkid_bytes,
)
from keys.envelopes import RK_LENGTH, open_rk, seal_rk
from keys.errors import InvalidCiphertext, InvalidKeyMaterial
from keys.manifest import active_key

if TYPE_CHECKING:  # pragma: no cover
    from keys.keyring import Keyring

__all__ = [
    'open_document',
    'reseal_fields',
    'reseal_fields_at_time',
    'seal_document',
    'seal_document_at_time',
]

FIELD_TAG = 'fle/1/field'
ENC_INFO = b'fle/1/enc'
COMMIT_INFO = b'fle/1/commit'
RKID_LENGTH = 16

#: A source of random bytes: ``rng(n)`` returns ``n`` bytes.
RNG = Callable[[int], bytes]


# -- Building blocks ----------------------------------------------------------


def derive_record_keys(rk: bytes, rkid: str) -> tuple[bytes, bytes]:
    """Return ``(K_enc, commit)`` for a record key."""
    salt = rkid_bytes(rkid)
    return (_primitives.hkdf_sha256(rk, salt=salt, info=ENC_INFO),
            _primitives.hkdf_sha256(rk, salt=salt, info=COMMIT_INFO))


def field_aad(org: str, doc_id: str, pointer: str, rkid: str) -> bytes:
    """Return the AES-GCM associated data of one sealed field."""
    return pae(FIELD_TAG, org, doc_id, pointer, rkid_bytes(rkid))


@dataclasses.dataclass(frozen=True)
class _RecordKey:
    """What one RK yields, derived once and reused for every field under it.

    APPSEC: holds key material; it lives only for one seal or open call and
    is never stored.

    Attributes:
        rkid: The record key's id.
        aead: The AES-GCM object of ``K_enc``.
        commit: The key commitment.
    """

    rkid: str
    aead: Any
    commit: bytes

    @classmethod
    def derive(cls, rk: bytes, rkid: str) -> _RecordKey:
        k_enc, commit = derive_record_keys(rk, rkid)
        return cls(rkid, _primitives.aes_gcm_key(k_enc), commit)


def pad(data: bytes) -> bytes:
    """Append 0x80 and zeros up to the next multiple of 32 bytes."""
    padded = data + b'\x80'
    return padded + bytes(-len(padded) % PAD_BLOCK)


def unpad(padded: bytes) -> bytes:
    """Remove fle/1 padding.

    Raises:
        ValueError: The padding is not exactly what :func:`pad` writes.
    """
    if not padded or len(padded) % PAD_BLOCK:
        raise ValueError('bad padding')
    stripped = padded.rstrip(b'\x00')
    if not stripped or stripped[-1] != 0x80 or len(padded) - len(stripped) >= PAD_BLOCK:
        raise ValueError('bad padding')
    return stripped[:-1]


def _refuse_constant(name: str) -> Any:
    raise ValueError('non-finite number')


def _finite_float(text: str) -> float:
    # A number with a fraction or an exponent; ``1e999`` parses to infinity
    # (as in JavaScript), which JSON has no place for.
    number = float(text)
    if not math.isfinite(number):
        raise ValueError('non-finite number')
    return number


#: Compact JSON, as every sealer writes it.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(',', ':'), allow_nan=False)
#: Strict JSON: no NaN or Infinity, no number that overflows a double.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def encode_value(value: Any) -> bytes:
    """Serialise a field value as compact UTF-8 JSON.

    Raises:
        ValueError: The value holds NaN, infinity, an integer beyond the
            range of a double, or a lone surrogate.
        TypeError: The value holds something JSON has no type for.
    """
    text = _ENCODER.encode(value)
    _check_readable(value)
    return text.encode('utf-8')


def decode_value(data: bytes) -> Any:
    """Parse the JSON text of an opened field value.

    Raises:
        ValueError: Not strict UTF-8 JSON, or it holds a number that is not
            finite as an IEEE 754 double or a string that is not valid
            Unicode (an escaped lone surrogate).
    """
    value = _DECODER.decode(data.decode('utf-8'))
    _check_readable(value)
    return value


def _check_readable(value: Any) -> None:
    """Refuse what JSON carries but a JavaScript reader cannot hold.

    That is a lone surrogate (no UTF-8 form) and an integer beyond the range
    of a double (JavaScript reads it as infinity), anywhere in ``value``.
    """
    if isinstance(value, str):
        value.encode('utf-8')  # UnicodeEncodeError is a ValueError.
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            raise ValueError('non-finite number') from None
    elif isinstance(value, list):
        for item in value:
            _check_readable(item)
    elif isinstance(value, dict):
        for name, item in value.items():
            _check_readable(name)
            _check_readable(item)


def seal_value(
    value: Any, *, rk: bytes, rkid: str, org: str, doc_id: str, pointer: str, nonce: bytes,
) -> dict[str, Any]:
    """Seal one field value (package-internal: it takes a nonce).

    Raises:
        InvalidKeyMaterial: The value is not JSON or is too large.
        ValueError: ``nonce`` is not 12 bytes (fle/1 values hold no other).
    """
    if len(nonce) != NONCE_LENGTH:
        raise ValueError('an fle/1 nonce is 12 bytes')
    return _seal_with(value, _RecordKey.derive(rk, rkid), nonce,
                      field_aad(org, doc_id, pointer, rkid), pointer)


def _seal_with(
    value: Any, record_key: _RecordKey, nonce: bytes, aad: bytes, pointer: str,
) -> dict[str, Any]:
    """Seal one value under an already derived record key.

    Raises:
        InvalidKeyMaterial: The value is not JSON or is too large.
    """
    try:
        plaintext = pad(encode_value(value))
    except (ValueError, TypeError):
        raise InvalidKeyMaterial(f"the value at '{pointer}' is not valid JSON") from None
    if len(plaintext) + TAG_LENGTH > MAX_CIPHERTEXT_LENGTH:
        raise InvalidKeyMaterial(f"the value at '{pointer}' is too large to seal")
    ciphertext = _primitives.aes_gcm_seal_with(record_key.aead, nonce, plaintext, aad)
    return {
        'fle': fle.FLE_VERSION,
        'rk': record_key.rkid,
        'n': b64url_encode(nonce),
        'ct': b64url_encode(ciphertext),
    }


def open_value(
    sealed: Any, *, rk: bytes, org: str, doc_id: str, pointer: str,
) -> Any:
    """Open one sealed field value whose RK is already recovered and checked.

    Raises:
        InvalidCiphertext: Any failure.
    """
    try:
        nonce, ciphertext = fle.sealed_parts(sealed)
    except fle.FormatError:
        raise InvalidCiphertext from None
    rkid = sealed['rk']
    return _open_with(_RecordKey.derive(rk, rkid), nonce, ciphertext,
                      field_aad(org, doc_id, pointer, rkid))


def _open_with(record_key: _RecordKey, nonce: bytes, ciphertext: bytes, aad: bytes) -> Any:
    """Decrypt, unpad and parse one value whose parts are already checked.

    Raises:
        InvalidCiphertext: Any failure.
    """
    try:
        plaintext = _primitives.aes_gcm_open_with(record_key.aead, nonce, ciphertext, aad)
        return decode_value(unpad(plaintext))
    except (ValueError, _primitives.PrimitiveFailure):
        raise InvalidCiphertext from None


# -- Structure ----------------------------------------------------------------


def _check_header(doc: dict[str, Any]) -> dict[str, bytes]:
    """Check the ``fle`` header (``fle.check_header``).

    Returns:
        ``{rkid: commit}`` for every entry of ``fle.keys``.

    Raises:
        InvalidKeyMaterial: The reason names the member.
    """
    try:
        return fle.check_header(doc.get('fle'))
    except fle.FormatError as error:
        raise InvalidKeyMaterial(str(error)) from None


#: A parsed identifying path: the pointer and its unescaped tokens.
_Path = tuple[str, tuple[str, ...]]


def _parse_paths(paths: Sequence[str]) -> tuple[_Path, ...]:
    """Parse and check identifying-field pointers.

    Returns:
        ``((pointer, tokens), ...)`` in the order given.

    Raises:
        InvalidKeyMaterial: A pointer is malformed, targets ``fle`` or a
            ``_`` member, repeats, or overlaps another.
    """
    if isinstance(paths, str):
        raise InvalidKeyMaterial("'paths' must be a sequence of JSON Pointers, not one string")
    if not all(isinstance(pointer, str) for pointer in paths):
        raise InvalidKeyMaterial('an identifying path is not a JSON Pointer')
    return _parse_checked_paths(tuple(str(pointer) for pointer in paths))


# A schema's list of paths is the same on every call: the result is cached
# (it is immutable; a failure is never cached and is raised every time).
@functools.lru_cache(maxsize=128)
def _parse_checked_paths(paths: tuple[str, ...]) -> tuple[_Path, ...]:
    parsed = []
    for pointer in paths:
        try:
            tokens = parse_pointer(pointer)
        except ValueError:
            raise InvalidKeyMaterial('an identifying path is not a JSON Pointer') from None
        if tokens[0] == 'fle' or tokens[0].startswith('_') or tokens == ('',):
            raise InvalidKeyMaterial(f"identifying path '{pointer}' targets a reserved member")
        parsed.append((pointer, tokens))
    for index, (pointer, tokens) in enumerate(parsed):
        for other_pointer, other in parsed[index + 1:]:
            shorter = min(len(tokens), len(other))
            if tokens[:shorter] == other[:shorter]:
                raise InvalidKeyMaterial(
                    f"identifying paths '{pointer}' and '{other_pointer}' overlap")
    return tuple(parsed)


def _present_fields(
    doc: dict[str, Any], paths: tuple[_Path, ...],
) -> Iterator[tuple[str, Any, Any, Any]]:
    """Yield ``(pointer, container, slot, value)`` for every non-null value at ``paths``."""
    for pointer, tokens in paths:
        found = locate(doc, tokens)
        if found is not None:
            container, slot = found
            if container[slot] is not None:
                yield pointer, container, slot, container[slot]


# -- Sealing ------------------------------------------------------------------


def _random_bytes(rng: RNG | None, length: int) -> bytes:
    """Draw ``length`` bytes from ``rng``, or from the OS CSPRNG without one."""
    data = (rng or os.urandom)(length)
    if not isinstance(data, bytes) or len(data) != length:
        raise ValueError('rng returned the wrong number of bytes')
    return data


def _seal_into(
    doc: dict[str, Any],
    targets: Sequence[tuple[str, Any, Any, Any]],
    *,
    org: str,
    manifest_body: dict[str, Any],
    device: str | None,
    rng: RNG | None,
    now: datetime.datetime,
) -> dict[str, Any]:
    """Seal ``targets`` (``(pointer, container, slot, value)``) in ``doc`` under one new RK.

    ``doc`` is the caller's private copy. Randomness is drawn in this order,
    which the vectors and js/fle.mjs follow: RK (32), rkid (16), one nonce
    (12) per target in order, then the HPKE ephemeral IKM (32) when an rng
    is injected.

    Returns:
        The RK envelope.
    """
    if not is_identifier(org):
        raise InvalidKeyMaterial("'org' is not a valid identifier")
    if device is not None and not is_identifier(device):
        raise InvalidKeyMaterial("'device' is not a valid identifier")
    key = active_key(manifest_body)
    if manifest_body['org'] != org:
        raise InvalidKeyMaterial("the manifest belongs to another org")
    doc_id = doc['_id']
    at = format_timestamp(now)

    rk = _random_bytes(rng, RK_LENGTH)
    rkid = _random_bytes(rng, RKID_LENGTH).hex()
    nonces = [_random_bytes(rng, NONCE_LENGTH) for _ in targets]
    header_keys = doc.setdefault('fle', {'v': fle.FLE_VERSION, 'keys': {}})['keys']
    if rkid in header_keys:
        raise InvalidKeyMaterial("the new rkid collides with one in 'fle.keys'")
    # K_enc, its AES-GCM object and commit are derived once per RK; every
    # field reuses them.
    record_key = _RecordKey.derive(rk, rkid)
    for (pointer, container, slot, value), nonce in zip(targets, nonces):
        container[slot] = _seal_with(
            value, record_key, nonce, field_aad(org, doc_id, pointer, rkid), pointer)

    entry = {'commit': b64url_encode(record_key.commit), 'kek': key['kid']}
    if device is not None:
        entry['dev'] = device
    entry['at'] = at
    header_keys[rkid] = entry
    # APPSEC: only an injected rng fixes the HPKE ephemeral key; with the OS
    # CSPRNG, pyca's HPKE generates it internally.
    ephemeral_ikm = None if rng is None else _random_bytes(rng, 32)
    return seal_rk(
        rk, org=org, doc_id=doc_id, rkid=rkid, kid=key['kid'], public_b64=key['pub'],
        device=device, at=at, ephemeral_ikm=ephemeral_ikm)


def _seal_document_with(
    doc: dict[str, Any],
    *,
    paths: Sequence[str],
    org: str,
    manifest_body: dict[str, Any],
    device: str | None = None,
    rng: RNG | None,
    now: datetime.datetime,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Deterministic twin of :func:`seal_document` (tests and vectors only)."""
    if not isinstance(doc, dict) or not is_doc_id(doc.get('_id')):
        raise InvalidKeyMaterial("the document needs a valid '_id' before sealing")
    if 'fle' in doc:
        raise InvalidKeyMaterial("the document is already sealed; use reseal_fields")
    parsed = _parse_paths(paths)
    sealed = copy.deepcopy(doc)
    # Absent and null values are left alone.
    targets = list(_present_fields(sealed, parsed))
    envelope = _seal_into(
        sealed, targets, org=org, manifest_body=manifest_body, device=device, rng=rng, now=now)
    return sealed, envelope


def seal_document_at_time(
    doc: dict[str, Any],
    *,
    paths: Sequence[str],
    org: str,
    manifest_body: dict[str, Any],
    device: str | None = None,
    now: datetime.datetime,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Seal like :func:`seal_document`, stamping ``at`` with ``now``."""
    return _seal_document_with(
        doc, paths=paths, org=org, manifest_body=manifest_body, device=device, rng=None, now=now)


def seal_document(
    doc: dict[str, Any],
    *,
    paths: Sequence[str],
    org: str,
    manifest_body: dict[str, Any],
    device: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Seal a record's identifying fields under a fresh record key.

    Args:
        doc: The plaintext record; it must already have its ``_id`` and no
            ``fle`` header. It is not modified.
        paths: RFC 6901 JSON Pointers of its identifying fields
            (``schemas.identifying_paths(type)``). Absent or null values are
            left alone.
        org: Org identifier.
        manifest_body: A verified manifest body; RK is sealed to its
            ``active`` key.
        device: The sealing device's id, recorded as ``dev``.

    Returns:
        ``(sealed_doc, envelope)``: a sealed copy with the ``fle`` header,
        and the ``rk:<rkid>`` envelope for the ``keyvault``.

    Raises:
        InvalidKeyMaterial: Missing ``_id``, bad paths, a value that is not
            JSON, or a manifest for another org.
        InvalidManifest: ``manifest_body`` is malformed.
    """
    return seal_document_at_time(
        doc, paths=paths, org=org, manifest_body=manifest_body, device=device,
        now=datetime.datetime.now(datetime.timezone.utc))


def _reseal_fields_with(
    sealed_doc: dict[str, Any],
    new_values: Mapping[str, Any],
    *,
    org: str,
    manifest_body: dict[str, Any],
    device: str | None = None,
    rng: RNG | None,
    now: datetime.datetime,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Deterministic twin of :func:`reseal_fields` (tests and vectors only)."""
    if not isinstance(sealed_doc, dict) or not is_doc_id(sealed_doc.get('_id')):
        raise InvalidKeyMaterial("the document needs a valid '_id'")
    _check_header(sealed_doc)
    if not new_values:
        raise InvalidKeyMaterial("'new_values' is empty")
    updated = copy.deepcopy(sealed_doc)
    targets = []
    for pointer, tokens in _parse_paths(list(new_values)):
        container: Any = updated
        if len(tokens) > 1:
            parent = locate(updated, tokens[:-1])
            container = parent[0][parent[1]] if parent is not None else None
        if not isinstance(container, dict):
            raise InvalidKeyMaterial(f"the parent of '{pointer}' is not an object in the document")
        value = new_values[pointer]
        if value is None:
            container[tokens[-1]] = None  # Clearing a field needs no key.
            continue
        targets.append((pointer, container, tokens[-1], value))
    envelope = _seal_into(
        updated, targets, org=org, manifest_body=manifest_body, device=device, rng=rng, now=now)
    return updated, envelope


def reseal_fields_at_time(
    sealed_doc: dict[str, Any],
    new_values: Mapping[str, Any],
    *,
    org: str,
    manifest_body: dict[str, Any],
    device: str | None = None,
    now: datetime.datetime,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reseal like :func:`reseal_fields`, stamping ``at`` with ``now``."""
    return _reseal_fields_with(
        sealed_doc, new_values, org=org, manifest_body=manifest_body, device=device,
        rng=None, now=now)


def reseal_fields(
    sealed_doc: dict[str, Any],
    new_values: Mapping[str, Any],
    *,
    org: str,
    manifest_body: dict[str, Any],
    device: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write new values into an already sealed record under a new RK.

    The edited fields get a new record key (a second ``fle.keys`` entry and
    a second envelope); untouched fields keep their old ``rkid``. A value of
    ``None`` clears the field. Only object members can be set (a missing
    parent object is an error).

    Args:
        sealed_doc: The sealed record (not modified).
        new_values: ``{JSON Pointer: new plaintext value}``.
        org: Org identifier.
        manifest_body: A verified manifest body.
        device: The sealing device's id.

    Returns:
        ``(updated_doc, envelope)``.

    Raises:
        InvalidKeyMaterial: Malformed document, header, paths or values.
        InvalidManifest: ``manifest_body`` is malformed.
    """
    return reseal_fields_at_time(
        sealed_doc, new_values, org=org, manifest_body=manifest_body, device=device,
        now=datetime.datetime.now(datetime.timezone.utc))


# -- Opening ------------------------------------------------------------------


def _recover_rk(
    rkid: str,
    expected: bytes,
    *,
    envelopes: Sequence[Any],
    keyring: Keyring,
    org: str,
    doc_id: str,
) -> _RecordKey:
    """Find and open the envelope of ``rkid``; check the key commitment.

    Args:
        rkid: The record key's id, a name of the document's checked ``fle.keys``.
        expected: The 32-byte commitment of its ``fle.keys`` entry.
        envelopes: The caller's envelopes; only those naming ``rkid`` are tried.
        keyring: Unlocked org keys.
        org: Org identifier.
        doc_id: The ``_id`` of the document being opened.

    Returns:
        The record key's derived material.

    Raises:
        InvalidCiphertext: No envelope opens to an RK matching ``commit``.
    """
    for envelope in envelopes:
        if not isinstance(envelope, dict) or envelope.get('rkid') != rkid:
            continue
        try:
            rk = open_rk(envelope, keyring, org=org, doc_id=doc_id, rkid=rkid)
        except InvalidCiphertext:
            continue
        record_key = _RecordKey.derive(rk, rkid)
        # APPSEC: key commitment, compared in constant time before any field
        # is decrypted; closes the AES-GCM multi-key ("invisible salamanders")
        # gap and catches a second envelope claiming the same rkid.
        if hmac.compare_digest(record_key.commit, expected):
            return record_key
    raise InvalidCiphertext from None


def open_document(
    sealed_doc: dict[str, Any],
    *,
    envelopes: Sequence[dict[str, Any]],
    keyring: Keyring,
    paths: Sequence[str],
    org: str,
) -> dict[str, Any]:
    """Open a sealed record's identifying fields (advocate machine only).

    Args:
        sealed_doc: The sealed record as stored.
        envelopes: Its ``rk:`` envelopes (others are ignored).
        keyring: Unlocked org keys.
        paths: JSON Pointers of its identifying fields. A present, non-null
            value at one of them that is not a sealed value is refused.
        org: Org identifier.

    Returns:
        A plaintext copy of the record, with the ``fle`` header removed (the
        result has the plain document shape the schemas describe).

    Raises:
        InvalidCiphertext: Anything fails to open or verify.
        InvalidKeyMaterial: ``paths`` itself is malformed (a programming error).
    """
    parsed = _parse_paths(paths)
    if not isinstance(sealed_doc, dict) or not is_doc_id(sealed_doc.get('_id')):
        raise InvalidCiphertext from None
    try:
        commits = _check_header(sealed_doc)
    except InvalidKeyMaterial:
        raise InvalidCiphertext from None
    # APPSEC: the AAD and HPKE info are rebuilt from the document's actual
    # _id and the pointer being opened, never from values stored alongside.
    doc_id = sealed_doc['_id']
    opened = copy.deepcopy({name: value for name, value in sealed_doc.items() if name != 'fle'})
    record_keys: dict[str, _RecordKey] = {}
    for pointer, container, slot, sealed in _present_fields(opened, parsed):
        try:
            # Its rk must name an entry of fle.keys.
            nonce, ciphertext = fle.sealed_parts(sealed, rkids=commits)
        except fle.FormatError:
            raise InvalidCiphertext from None  # Plaintext where a sealed value belongs.
        rkid = sealed['rk']
        if rkid not in record_keys:
            # Once per rkid: open the envelope, derive K_enc and commit, and
            # check the commitment before any field under it is decrypted.
            record_keys[rkid] = _recover_rk(
                rkid, commits[rkid], envelopes=envelopes, keyring=keyring,
                org=org, doc_id=doc_id)
        container[slot] = _open_with(
            record_keys[rkid], nonce, ciphertext, field_aad(org, doc_id, pointer, rkid))
    return opened
