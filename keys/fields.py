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
import datetime
import functools
import hmac
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keys import _primitives
from keys._encoding import (
    b64url_decode,
    b64url_encode,
    format_timestamp,
    is_doc_id,
    is_identifier,
    is_rkid,
    is_timestamp,
    le64,
    locate,
    pae,
    pae_item,
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
    'validate_sealed_document',
    'validate_sealed_value',
]

#: The fle format version, in sealed values and in the header.
FLE_VERSION = 1
FIELD_TAG = 'fle/1/field'
ENC_INFO = b'fle/1/enc'
COMMIT_INFO = b'fle/1/commit'
#: Padding block: plaintexts are padded to a multiple of this many bytes.
PAD_BLOCK = 32
#: Largest field ciphertext (padded plaintext + 16-byte tag), in bytes.
MAX_CIPHERTEXT_LENGTH = 64 * 1024
RKID_LENGTH = 16
#: A sealed value's nonce and ciphertext decode together to the nonce, the
#: padded plaintext and the tag; these bound the padded plaintext's length.
_NONCE_AND_TAG = _primitives.NONCE_LENGTH + _primitives.TAG_LENGTH
_MAX_PADDED_LENGTH = MAX_CIPHERTEXT_LENGTH - _primitives.TAG_LENGTH

_SEALED_KEYS = frozenset({'fle', 'rk', 'n', 'ct'})
#: Length of a nonce in base64url: its 12 bytes are 4 whole groups of 3,
#: which need no padding.
_NONCE_TEXT_LENGTH = _primitives.NONCE_LENGTH // 3 * 4
_HEADER_KEYS = frozenset({'v', 'keys'})
_ENTRY_REQUIRED = frozenset({'commit', 'kek'})
_ENTRY_OPTIONAL = frozenset({'dev', 'at'})
_ENTRY_ALLOWED = _ENTRY_REQUIRED | _ENTRY_OPTIONAL

#: A source of random bytes: ``rng(n)`` returns ``n`` bytes.
RNG = Callable[[int], bytes]


# -- Building blocks ----------------------------------------------------------


def derive_record_keys(rk: bytes, rkid: str) -> tuple[bytes, bytes]:
    """Return ``(K_enc, commit)`` for a record key."""
    k_enc, commit = _primitives.hkdf_sha256_many(
        rk, salt=rkid_bytes(rkid), infos=(ENC_INFO, COMMIT_INFO), length=32)
    return k_enc, commit


def field_aad(org: str, doc_id: str, pointer: str, rkid: str) -> bytes:
    """Return the AES-GCM associated data of one sealed field."""
    return pae(FIELD_TAG, org, doc_id, pointer, rkid_bytes(rkid))


@functools.lru_cache(maxsize=512)
def _pointer_item(pointer: str) -> bytes:
    """The PAE item of a pointer (a schema's pointers recur on every record)."""
    return pae_item(pointer)


#: The first two elements of every field AAD PAE (the count and the label).
_AAD_HEAD = le64(5) + pae_item(FIELD_TAG)


def _aad_head(org: str, doc_id: str) -> bytes:
    """The part of every field AAD of one record that precedes the pointer.

    ``_aad_head(org, doc_id) + _pointer_item(pointer) + _RecordKey.aad_tail``
    is byte for byte :func:`field_aad` (PAE of five elements), built once per
    record instead of once per field.
    """
    return _AAD_HEAD + pae_item(org) + pae_item(doc_id)


class _RecordKey:
    """What one RK yields, derived once and reused for every field it seals.

    Built from the RK and the 16 raw rkid bytes (``rkid_bytes(rkid)``), and
    optionally their spelling when the caller already has it:
    ``rkid`` is their 32-hex-digit spelling, ``aead`` the AES-GCM object of
    ``K_enc``, ``commit`` the key commitment, ``aad_tail`` the PAE item of the
    rkid bytes that ends every field AAD under this RK. APPSEC: holds key
    material; it lives only for one seal or open call and is never stored.
    """

    __slots__ = ('aad_tail', 'aead', 'commit', 'rkid')

    def __init__(self, rk: bytes, rkid_raw: bytes, rkid: str | None = None) -> None:
        # Both outputs share the salt and the IKM: one HKDF-Extract serves
        # both (same bytes as two full derivations).
        k_enc, self.commit = _primitives.hkdf_sha256_many(
            rk, salt=rkid_raw, infos=(ENC_INFO, COMMIT_INFO), length=32)
        self.aead = _primitives.aes_gcm_key(k_enc)
        self.aad_tail = pae_item(rkid_raw)
        self.rkid = rkid_raw.hex() if rkid is None else rkid


#: What :func:`pad` appends, by ``len(data) % PAD_BLOCK``: 0x80, then zeros
#: up to the next multiple of the block (31 zeros after a whole block).
_PAD_TAILS = tuple(b'\x80' + bytes(PAD_BLOCK - 1 - used) for used in range(PAD_BLOCK))


def pad(data: bytes) -> bytes:
    """Append 0x80 and zeros up to the next multiple of 32 bytes."""
    return data + _PAD_TAILS[len(data) % PAD_BLOCK]


def unpad(padded: bytes) -> bytes:
    """Remove fle/1 padding.

    Raises:
        ValueError: The padding is not exactly what :func:`pad` writes.
    """
    size = len(padded)
    stripped = padded.rstrip(b'\x00')
    # Empty or all-zero input leaves nothing: no 0x80 marker.
    if (size % PAD_BLOCK or not stripped or stripped[-1] != 0x80
            or size - len(stripped) >= PAD_BLOCK):
        raise ValueError('bad padding')
    return stripped[:-1]


#: What ``json.dumps(value, ensure_ascii=False, separators=(',', ':'),
#: allow_nan=False)`` builds on every call, built once.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(',', ':'), allow_nan=False)
#: The string encoder ``_ENCODER`` itself uses (``ensure_ascii=False``): C's
#: ``encode_basestring`` when available.
_ENCODE_STR = json.encoder.encode_basestring
_ONLY_STR = frozenset({str})


def encode_value(value: Any) -> bytes:
    """Serialise a field value as compact UTF-8 JSON.

    Raises:
        ValueError: The value holds NaN, infinity, an integer beyond the
            range of a double, or a lone surrogate.
        TypeError: The value holds something JSON has no type for.
    """
    # Most identifying fields are a string or a list of strings (names,
    # phones, aliases). For those, JSONEncoder.encode would only call
    # _ENCODE_STR per string, joined by the ',' separator inside '[' and
    # ']', after building a fresh iterencoder per call for a list; the same
    # text is built here directly (the unit and property tests compare it
    # with json.dumps). Anything else, subclasses included, goes to it.
    kind = type(value)
    if kind is str:
        text = _ENCODE_STR(value)
    elif kind is list and _ONLY_STR.issuperset(map(type, value)):
        text = '[' + ','.join(map(_ENCODE_STR, value)) + ']'
    else:
        text = _ENCODER.encode(value)
        if _LONG_DIGITS.search(text):
            _check_opened(value)  # An integer no reader can hold as a double.
    # A lone surrogate passes the JSON encoder and is refused here
    # (UnicodeEncodeError is a ValueError).
    return text.encode('utf-8')


def _refuse_constant(name: str) -> Any:
    raise ValueError('non-finite number')


def _finite_float(text: str) -> float:
    # A number with a fraction or an exponent; ``1e999`` parses to infinity
    # (as in JavaScript), which JSON has no place for.
    number = float(text)
    if not math.isfinite(number):
        raise ValueError('non-finite number')
    return number


#: What ``json.loads(text, parse_constant=..., parse_float=...)`` builds per call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
#: Text that may hold what the scanner lets through but fle/1 refuses: an
#: escaped surrogate (which may be lone) or an integer too long for a double
#: (JavaScript reads it as infinity). Only such text is walked after parsing.
_SUSPECT = re.compile(r'\\u[dD][89a-fA-F]|[0-9]{309}')
_LONG_DIGITS = re.compile(r'[0-9]{309}')


def decode_value(data: bytes) -> Any:
    """Parse the JSON text of an opened field value.

    Raises:
        ValueError: Not strict UTF-8 JSON, or it holds a number that is not
            finite as an IEEE 754 double or a string that is not valid
            Unicode (an escaped lone surrogate).
    """
    text = data.decode('utf-8')
    # The decoder accepts or refuses exactly as json.loads does, except for
    # the byte order mark, which only json.loads itself refuses.
    if text.startswith('\ufeff'):
        raise ValueError('byte order mark')
    value = _DECODER.decode(text)
    if _SUSPECT.search(text):
        _check_opened(value)
    return value


def _check_opened(value: Any) -> None:
    """Refuse lone surrogates and integers beyond the double range in ``value``."""
    kind = type(value)
    if kind is str:
        value.encode('utf-8')  # UnicodeEncodeError is a ValueError.
    elif kind is int:
        try:
            float(value)
        except OverflowError:
            raise ValueError('non-finite number') from None
    elif kind is list:
        for item in value:
            _check_opened(item)
    elif kind is dict:
        for name, item in value.items():
            name.encode('utf-8')
            _check_opened(item)


#: JSON scalars: immutable, so a copy may share them.
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def _copy_json(value: Any) -> Any:
    """Deep copy of a JSON-shaped value (dicts, lists, scalars).

    ``copy.deepcopy`` does the same with a memo and a dispatch per object;
    anything that is not a plain dict, list or JSON scalar still goes to it.
    """
    kind = type(value)
    if kind is dict:
        return {key: _copy_json(item) for key, item in value.items()}
    if kind is list:
        return [_copy_json(item) for item in value]
    if kind in _JSON_SCALARS:
        return value
    return copy.deepcopy(value)


def _copy_document(
    doc: dict[str, Any], parsed: _ParsedPaths, *, drop: str | None = None,
) -> dict[str, Any]:
    """Copy a record before sealing or opening its identifying fields.

    A top-level identifying member is not copied: the caller replaces it
    (or it is ``None``, or the call fails and the copy is discarded), so the
    result shares nothing mutable with ``doc`` once the caller is done.
    ``drop`` names a member left out (the ``fle`` header when opening).
    """
    replaced = parsed.top_level
    # A shallow copy in C, then deep copies of the members that need one
    # (most members of a record are strings, shared as they are). Replacing
    # values while iterating is safe: the set of keys does not change.
    copied = dict(doc)
    if drop is not None:
        copied.pop(drop, None)
    for name, value in copied.items():
        if type(value) not in _JSON_SCALARS and name not in replaced:
            copied[name] = _copy_json(value)
    return copied


def seal_value(
    value: Any, *, rk: bytes, rkid: str, org: str, doc_id: str, pointer: str, nonce: bytes,
) -> dict[str, Any]:
    """Seal one field value (package-internal: it takes a nonce).

    Raises:
        InvalidKeyMaterial: The value is not JSON or is too large.
        ValueError: ``nonce`` is not 12 bytes (fle/1 values hold no other).
    """
    if len(nonce) != _primitives.NONCE_LENGTH:
        raise ValueError('an fle/1 nonce is 12 bytes')
    return _seal_with(
        value, _RecordKey(rk, rkid_bytes(rkid)), nonce, field_aad(org, doc_id, pointer, rkid),
        pointer)


def _seal_with(
    value: Any, record_key: _RecordKey, nonce: bytes, aad: bytes, pointer: str,
) -> dict[str, Any]:
    """Seal one value under an already derived record key.

    Called once per field, hence positional arguments only (cheaper to pass).

    Raises:
        InvalidKeyMaterial: The value is not JSON or is too large.
    """
    try:
        plaintext = pad(encode_value(value))
    except (ValueError, TypeError):
        raise InvalidKeyMaterial(f"the value at '{pointer}' is not valid JSON") from None
    if len(plaintext) + _primitives.TAG_LENGTH > MAX_CIPHERTEXT_LENGTH:
        raise InvalidKeyMaterial(f"the value at '{pointer}' is too large to seal")
    ciphertext = _primitives.aes_gcm_seal_with(record_key.aead, nonce, plaintext, aad)
    # Base64 encodes each 3 bytes on their own, and the 12-byte nonce is 4
    # whole groups: the encoding of nonce + ciphertext is the two encodings
    # end to end, at the cost of one (the reverse of what _sealed_parts does).
    encoded = b64url_encode(nonce + ciphertext)
    return {
        'fle': FLE_VERSION,
        'rk': record_key.rkid,
        'n': encoded[:_NONCE_TEXT_LENGTH],
        'ct': encoded[_NONCE_TEXT_LENGTH:],
    }


def open_value(
    sealed: Any, *, rk: bytes, org: str, doc_id: str, pointer: str,
) -> Any:
    """Open one sealed field value whose RK is already recovered and checked.

    Raises:
        InvalidCiphertext: Any failure.
    """
    try:
        nonce, ciphertext = _sealed_parts(sealed)
        record_key = _RecordKey(rk, rkid_bytes(sealed['rk']))
    except (InvalidKeyMaterial, ValueError):
        raise InvalidCiphertext from None
    return _open_with(
        record_key, nonce, ciphertext, field_aad(org, doc_id, pointer, sealed['rk']))


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


# -- Structural validation (server side; opens nothing) -----------------------


def _where(pointer: str | None) -> str:
    return f" at '{pointer}'" if pointer is not None else ''


def validate_sealed_value(value: Any, *, pointer: str | None = None) -> None:
    """Check that ``value`` is a well-formed fle/1 sealed value.

    Args:
        value: The stored field value.
        pointer: Where it was found, only to make the reason clearer.

    Raises:
        InvalidKeyMaterial: The reason names the member, never a value.
    """
    _sealed_parts(value, pointer=pointer)


def _sealed_parts(
    value: Any, *, pointer: str | None = None, rkids: Mapping[str, Any] | None = None,
) -> tuple[bytes, bytes]:
    """Check a sealed value like :func:`validate_sealed_value`.

    Args:
        value: The stored field value.
        pointer: Where it was found, only to make the reason clearer.
        rkids: The document's checked ``fle.keys``, when the caller already
            has them: ``rk`` must then be one of them (which implies it is a
            well-formed rkid). Without it, only the rkid format is checked.

    Returns:
        ``(nonce, ciphertext)``, decoded, so openers check and decode once.

    Raises:
        InvalidKeyMaterial: The reason names the member, never a value.
    """
    # The reasons name where the value was (_where), built only on failure.
    if not isinstance(value, dict) or value.keys() != _SEALED_KEYS:
        raise InvalidKeyMaterial(
            f'sealed value{_where(pointer)} must be an object with fle, rk, n and ct')
    # APPSEC: versions are an allow-list; 1 is an int, not True.
    version = value['fle']
    if isinstance(version, bool) or version != FLE_VERSION:
        raise InvalidKeyMaterial(f"sealed value{_where(pointer)} has an unsupported 'fle' version")
    rkid = value['rk']
    if rkids is not None:
        if not isinstance(rkid, str) or rkid not in rkids:
            raise InvalidKeyMaterial(
                f"sealed value{_where(pointer)} names an rkid missing from 'fle.keys'")
    else:
        try:
            rkid_bytes(rkid)
        except ValueError:
            raise InvalidKeyMaterial(
                f"sealed value{_where(pointer)} has an 'rk' that is not an rkid") from None
    encoded_nonce = value['n']
    encoded_ciphertext = value['ct']
    data = None
    if (type(encoded_nonce) is str and type(encoded_ciphertext) is str  # noqa: E721
            and len(encoded_nonce) == _NONCE_TEXT_LENGTH):
        # The nonce (12 bytes) is 4 whole base64 groups, without padding, so
        # both decode with one call, which accepts exactly when decoding each
        # one would (every character and the final group are checked).
        try:
            data = b64url_decode(encoded_nonce + encoded_ciphertext)
        except ValueError:
            pass  # One of them is refused; which one is found below.
    if data is None:
        try:
            nonce = b64url_decode(encoded_nonce, length=_primitives.NONCE_LENGTH)
        except ValueError:
            raise InvalidKeyMaterial(
                f"sealed value{_where(pointer)} has an 'n' that is not a 12-byte nonce") from None
        try:
            ciphertext = b64url_decode(encoded_ciphertext)
        except ValueError:
            raise InvalidKeyMaterial(
                f"sealed value{_where(pointer)} has a 'ct' that is not base64url") from None
        data = nonce + ciphertext
    body = len(data) - _NONCE_AND_TAG
    if body < PAD_BLOCK or body % PAD_BLOCK or body > _MAX_PADDED_LENGTH:
        raise InvalidKeyMaterial(
            f"sealed value{_where(pointer)} has a 'ct' of impossible length")
    return data[:_primitives.NONCE_LENGTH], data[_primitives.NONCE_LENGTH:]


def _check_header(doc: dict[str, Any]) -> dict[str, bytes]:
    """Check the ``fle`` header.

    Returns:
        ``{rkid: commit}`` for every entry of ``fle.keys``, with the key
        commitment decoded (checking it decodes it anyway).

    Raises:
        InvalidKeyMaterial: The reason names the member.
    """
    header = doc.get('fle')
    if not isinstance(header, dict) or header.keys() != _HEADER_KEYS:
        raise InvalidKeyMaterial("document 'fle' header must be an object with v and keys")
    if isinstance(header['v'], bool) or header['v'] != FLE_VERSION:
        raise InvalidKeyMaterial("document 'fle.v' is not a supported version")
    keys = header['keys']
    if not isinstance(keys, dict) or not keys:
        raise InvalidKeyMaterial("document 'fle.keys' must be a non-empty object")
    commits = {}
    for rkid, entry in keys.items():
        if not is_rkid(rkid):
            raise InvalidKeyMaterial("document 'fle.keys' has a name that is not an rkid")
        if not isinstance(entry, dict):
            raise InvalidKeyMaterial("document 'fle.keys' entry is not an object")
        names = entry.keys()
        if not _ENTRY_REQUIRED <= names or not names <= _ENTRY_ALLOWED:
            raise InvalidKeyMaterial("document 'fle.keys' entry has missing or unknown members")
        try:
            commits[rkid] = b64url_decode(entry['commit'], length=32)
        except ValueError:
            raise InvalidKeyMaterial("document 'fle.keys' entry 'commit' is not 32 bytes") from None
        if not is_identifier(entry['kek']):
            raise InvalidKeyMaterial("document 'fle.keys' entry 'kek' is not an identifier")
        if 'dev' in entry and not is_identifier(entry['dev']):
            raise InvalidKeyMaterial("document 'fle.keys' entry 'dev' is not an identifier")
        if 'at' in entry and not is_timestamp(entry['at']):
            raise InvalidKeyMaterial("document 'fle.keys' entry 'at' is not a UTC timestamp")
    return commits


class _ParsedPaths(tuple[tuple[str, tuple[str, ...]], ...]):
    """``((pointer, tokens), ...)``, plus what sealing and opening reuse.

    ``top_level``: the member names of the one-token pointers (members
    replaced in place at the top level). ``fields``: per pointer, in order,
    ``(pointer, name, tokens, item)``: ``name`` is the member a one-token
    pointer names (found with one dict lookup) or ``None``, ``item`` the
    pointer's PAE item (the middle of every field AAD at it) or ``None`` for
    a pointer that is not valid Unicode (:func:`_pointer_item` raises then,
    when a value at it is sealed or opened, as it always did).
    """

    top_level: frozenset[str]
    fields: tuple[tuple[str, str | None, tuple[str, ...], bytes | None], ...]


def _parse_paths(paths: Sequence[str]) -> _ParsedPaths:
    """Parse and check identifying-field pointers.

    A schema's list is the same on every call, so the result is cached (it
    is immutable; a failure is never cached and is raised every time).

    Returns:
        ``((pointer, tokens), ...)`` in the order given.

    Raises:
        InvalidKeyMaterial: A pointer is malformed, targets ``fle`` or a
            ``_`` member, repeats, or overlaps another.
    """
    if isinstance(paths, str):
        raise InvalidKeyMaterial("'paths' must be a sequence of JSON Pointers, not one string")
    frozen = tuple(paths)
    # Only exact strings are cached (every type in the tuple is str; the
    # check runs in C rather than as a generator).
    if _ONLY_STR.issuperset(map(type, frozen)):
        return _parse_paths_cached(frozen)
    return _parse_paths_uncached(frozen)


@functools.lru_cache(maxsize=128)
def _parse_paths_cached(paths: tuple[str, ...]) -> _ParsedPaths:
    return _parse_paths_uncached(paths)


def _parse_paths_uncached(paths: tuple[Any, ...]) -> _ParsedPaths:
    parsed: list[tuple[str, tuple[str, ...]]] = []
    for pointer in paths:
        try:
            tokens = tuple(parse_pointer(pointer))
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
    result = _ParsedPaths(parsed)
    result.top_level = frozenset(tokens[0] for _, tokens in parsed if len(tokens) == 1)
    fields: list[tuple[str, str | None, tuple[str, ...], bytes | None]] = []
    for pointer, tokens in parsed:
        item: bytes | None
        try:
            item = _pointer_item(pointer)
        except UnicodeEncodeError:
            item = None
        fields.append((pointer, tokens[0] if len(tokens) == 1 else None, tokens, item))
    result.fields = tuple(fields)
    return result


def validate_sealed_document(doc: Any, *, paths: Sequence[str]) -> None:
    """Check that every present identifying field of ``doc`` is sealed.

    The server calls this on every pushed record: a plaintext value where a
    sealed one belongs is refused, as are unknown versions and values that
    name an ``rkid`` missing from the header. Absent and null fields pass.

    Raises:
        InvalidKeyMaterial: The reason names the path or member.
    """
    if not isinstance(doc, dict):
        raise InvalidKeyMaterial('document is not an object')
    keys = _check_header(doc)
    for pointer, tokens in _parse_paths(paths):
        found = locate(doc, tokens)
        if found is None or found[0][found[1]] is None:
            continue
        value = found[0][found[1]]
        validate_sealed_value(value, pointer=pointer)
        if value['rk'] not in keys:
            raise InvalidKeyMaterial(
                f"sealed value at '{pointer}' names an rkid missing from 'fle.keys'")


# -- Sealing ------------------------------------------------------------------


#: The RK and the rkid, drawn before the nonces.
_HEAD_RANDOMNESS = RK_LENGTH + RKID_LENGTH


class _Randomness:
    """Random bytes from the OS, or from an injected ``rng`` (twins only)."""

    def __init__(self, rng: RNG | None) -> None:
        self._rng = rng

    def draw(self, nonces: int) -> tuple[bytes, bytes, list[bytes]]:
        """Draw an RK (32 bytes), an rkid (16) and ``nonces`` nonces (12 each).

        From the OS CSPRNG, one ``os.urandom`` call serves all of them (the
        same fresh bytes in the same order as one call per chunk). An
        injected ``rng`` is called once per chunk, in that order (the
        vectors list the chunks).
        """
        if self._rng is None:
            pool = os.urandom(_HEAD_RANDOMNESS + _primitives.NONCE_LENGTH * nonces)
            return pool[:RK_LENGTH], pool[RK_LENGTH:_HEAD_RANDOMNESS], [
                pool[offset:offset + _primitives.NONCE_LENGTH]
                for offset in range(_HEAD_RANDOMNESS, len(pool), _primitives.NONCE_LENGTH)]
        return self.take(RK_LENGTH), self.take(RKID_LENGTH), [
            self.take(_primitives.NONCE_LENGTH) for _ in range(nonces)]

    def take(self, length: int) -> bytes:
        data = (self._rng or os.urandom)(length)
        if not isinstance(data, bytes) or len(data) != length:
            raise ValueError('rng returned the wrong number of bytes')
        return data

    def ephemeral_ikm(self) -> bytes | None:
        # APPSEC: only an injected rng fixes the HPKE ephemeral key; with the
        # OS CSPRNG, pyca's HPKE generates it internally.
        return None if self._rng is None else self.take(32)


def _seal_into(
    doc: dict[str, Any],
    targets: Sequence[tuple[str, bytes | None, Any, Any, Any]],
    *,
    org: str,
    manifest_body: dict[str, Any],
    device: str | None,
    randomness: _Randomness,
    now: datetime.datetime,
) -> dict[str, Any]:
    """Seal ``targets`` in ``doc`` (a private copy) under one new RK.

    Each target is ``(pointer, item, container, slot, value)``, ``item``
    as in ``_ParsedPaths.fields``.

    Randomness is drawn in this order, which the vectors and js/fle.mjs
    follow: RK (32), rkid (16), one nonce (12) per target in order, then
    the HPKE ephemeral IKM (32) when an rng is injected.

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

    rk, rkid_raw, nonces = randomness.draw(len(targets))
    rkid = rkid_raw.hex()
    header_keys = doc.setdefault('fle', {'v': FLE_VERSION, 'keys': {}})['keys']
    if rkid in header_keys:
        raise InvalidKeyMaterial("the new rkid collides with one in 'fle.keys'")
    # K_enc, its AES-GCM object and commit are derived once per RK, and the
    # AAD prefix once per record; every field reuses them.
    record_key = _RecordKey(rk, rkid_raw, rkid)
    head = _aad_head(org, doc_id)

    tail = record_key.aad_tail
    for (pointer, item, container, slot, value), nonce in zip(targets, nonces):
        # A PAE item is never empty: ``item or`` only reaches _pointer_item
        # for a pointer that cannot be encoded, which raises there.
        container[slot] = _seal_with(
            value, record_key, nonce, head + (item or _pointer_item(pointer)) + tail, pointer)

    entry = {'commit': b64url_encode(record_key.commit), 'kek': key['kid']}
    if device is not None:
        entry['dev'] = device
    entry['at'] = at
    header_keys[rkid] = entry
    return seal_rk(
        rk, org=org, doc_id=doc_id, rkid=rkid, kid=key['kid'], public_b64=key['pub'],
        device=device, at=at, ephemeral_ikm=randomness.ephemeral_ikm(), rkid_raw=rkid_raw)


def _present_fields(doc: dict[str, Any], parsed: _ParsedPaths) -> Iterator[
        tuple[str, bytes | None, Any, Any, Any]]:
    """Yield ``(pointer, item, container, slot, value)`` for every non-null value at ``parsed``.

    A one-token pointer is found with one dict lookup; deeper ones with
    :func:`locate`. ``item`` is as in ``_ParsedPaths.fields``.
    """
    for pointer, name, tokens, item in parsed.fields:
        slot: str | int
        if name is not None:
            container, slot = doc, name
            value = doc.get(name)
        else:
            found = locate(doc, tokens)
            if found is None:
                continue
            container, slot = found
            value = container[slot]
        if value is not None:
            yield pointer, item, container, slot, value


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
    sealed = _copy_document(doc, parsed)
    # Absent and null values are left alone.
    targets = list(_present_fields(sealed, parsed))
    envelope = _seal_into(
        sealed, targets, org=org, manifest_body=manifest_body, device=device,
        randomness=_Randomness(rng), now=now)
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
    updated = _copy_json(sealed_doc)
    targets = []
    for pointer, _, tokens, item in _parse_paths(list(new_values)).fields:
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
        targets.append((pointer, item, container, tokens[-1], value))
    envelope = _seal_into(
        updated, targets, org=org, manifest_body=manifest_body, device=device,
        randomness=_Randomness(rng), now=now)
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
        rkid: The record key's id: a name of the document's checked
            ``fle.keys`` (so a well-formed rkid).
        expected: The 32-byte commitment of its ``fle.keys`` entry.
        envelopes: The caller's envelopes; only those naming ``rkid`` are tried.
        keyring: Unlocked org keys.
        org: Org identifier.
        doc_id: The ``_id`` of the document being opened.

    Returns:
        The record key's derived material (K_enc's AES-GCM object, commit).

    Raises:
        InvalidCiphertext: No envelope opens to an RK matching ``commit``.
    """
    rkid_raw = bytes.fromhex(rkid)  # A name of the checked fle.keys: a valid rkid.
    for envelope in envelopes:
        if not isinstance(envelope, dict) or envelope.get('rkid') != rkid:
            continue
        try:
            rk = open_rk(envelope, keyring, org=org, doc_id=doc_id, rkid=rkid)
        except InvalidCiphertext:
            continue
        record_key = _RecordKey(rk, rkid_raw, rkid)
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
    opened = _copy_document(sealed_doc, parsed, drop='fle')
    head = _aad_head(org, doc_id)
    record_keys: dict[str, _RecordKey] = {}
    for pointer, item, container, slot, sealed in _present_fields(opened, parsed):
        try:
            # Its rk must be a key of fle.keys (whose names are checked rkids).
            nonce, ciphertext = _sealed_parts(sealed, rkids=commits)
        except InvalidKeyMaterial:
            raise InvalidCiphertext from None  # Plaintext where a sealed value belongs.
        rkid = sealed['rk']
        record_key = record_keys.get(rkid)
        if record_key is None:
            # Once per rkid: open the envelope, derive K_enc and commit, and
            # check the commitment before any field under it is decrypted.
            record_key = record_keys[rkid] = _recover_rk(
                rkid, commits[rkid], envelopes=envelopes, keyring=keyring,
                org=org, doc_id=doc_id)
        # As when sealing, ``item or`` reaches _pointer_item only to raise.
        aad = head + (item or _pointer_item(pointer)) + record_key.aad_tail
        try:  # _open_with, written out: this runs once per field.
            plaintext = _primitives.aes_gcm_open_with(record_key.aead, nonce, ciphertext, aad)
            container[slot] = decode_value(unpad(plaintext))
        except (ValueError, _primitives.PrimitiveFailure):
            raise InvalidCiphertext from None
    return opened
