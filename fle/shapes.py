"""The fle/1 identifiers, sealed value and ``fle`` header, checked for shape only.

A sealed value is ``{"fle": 1, "rk": rkid, "n": nonce, "ct": ciphertext}``
with ``n`` and ``ct`` in canonical base64url; a sealed record carries the
header ``{"v": 1, "keys": {rkid: {"commit", "kek", "dev"?, "at"?}}}``. The
checks here open nothing: the server, the quarantine and the opener all
apply the same rules before anything cryptographic happens.
"""

from __future__ import annotations

import re
from collections.abc import Container
from typing import Any

from fle import base64url

__all__ = [
    'ENVELOPE_PREFIX',
    'FLE_VERSION',
    'HEADER_ENTRY_OPTIONAL',
    'HEADER_ENTRY_REQUIRED',
    'HEADER_KEYS',
    'IDENTIFIER',
    'MAX_CIPHERTEXT_LENGTH',
    'NONCE_LENGTH',
    'PAD_BLOCK',
    'RKID',
    'SEALED_VALUE_KEYS',
    'TAG_LENGTH',
    'TIMESTAMP',
    'FormatError',
    'check_header',
    'decode_ciphertext',
    'decode_nonce',
    'envelope_id',
    'is_identifier',
    'is_rkid',
    'is_timestamp',
    'is_version',
    'is_written_version',
    'rkid_bytes',
    'sealed_parts',
]

#: The format version, in sealed values (``fle``) and in the header (``v``).
FLE_VERSION = 1
#: Record-key envelopes are the documents ``rk:<rkid>``.
ENVELOPE_PREFIX = 'rk:'
#: ``rkid``: 16 random bytes as 32 lowercase hex digits.
RKID = re.compile(r'[0-9a-f]{32}')
#: Org, key, advocate, device and user identifiers bound into AAD and info.
IDENTIFIER = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]{0,63}')
#: ``at`` timestamps: UTC, whole seconds. ASCII digits only (``\d`` would
#: also match other scripts' digits, which JavaScript's ``\d`` does not).
TIMESTAMP = re.compile(r'[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z')

#: AES-256-GCM nonce and tag lengths, in bytes.
NONCE_LENGTH = 12
TAG_LENGTH = 16
#: Plaintexts are padded to a multiple of this many bytes.
PAD_BLOCK = 32
#: Largest field ciphertext (padded plaintext + tag), in bytes.
MAX_CIPHERTEXT_LENGTH = 64 * 1024
#: Longest base64url text that can decode to ``MAX_CIPHERTEXT_LENGTH``
#: bytes; longer text is refused before it is decoded.
_MAX_CIPHERTEXT_CHARS = -(-MAX_CIPHERTEXT_LENGTH * 4 // 3)
#: Length of a key commitment, in bytes.
COMMIT_LENGTH = 32

SEALED_VALUE_KEYS = frozenset({'fle', 'rk', 'n', 'ct'})
HEADER_KEYS = frozenset({'v', 'keys'})
HEADER_ENTRY_REQUIRED = frozenset({'commit', 'kek'})
HEADER_ENTRY_OPTIONAL = frozenset({'dev', 'at'})


class FormatError(ValueError):
    """Something does not have its fle/1 shape.

    Attributes:
        member: The member at fault (``value``, ``fle``, ``rk``, ``n``,
            ``ct``, ``header``, ...).
        problem: A short token for what is wrong with it (``invalid``,
            ``too_long``, ...).

    The message names the member and the rule, never a value.
    """

    def __init__(self, member: str, problem: str, message: str) -> None:
        super().__init__(message)
        self.member = member
        self.problem = problem


def is_version(value: Any) -> bool:
    """Tell whether a reader takes ``value`` as the supported format version.

    JSON does not tell ``1`` from ``1.0`` and JavaScript cannot, so readers
    accept either spelling of the number; ``true`` and ``"1"`` are refused.
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == FLE_VERSION


def is_written_version(value: Any) -> bool:
    """Tell whether ``value`` is the version as writers write it: the integer 1."""
    return type(value) is int and value == FLE_VERSION


def is_rkid(value: Any) -> bool:
    """Tell whether ``value`` is an rkid (32 lowercase hex digits)."""
    return isinstance(value, str) and RKID.fullmatch(value) is not None


def rkid_bytes(rkid: Any) -> bytes:
    """Return the 16 raw bytes behind an rkid.

    Raises:
        ValueError: ``rkid`` is not 32 lowercase hex digits.
    """
    if not is_rkid(rkid):
        raise ValueError('not an rkid')
    return bytes.fromhex(rkid)


def envelope_id(rkid: str) -> str:
    """Return the ``_id`` of the envelope of record key ``rkid``."""
    return ENVELOPE_PREFIX + rkid


def is_identifier(value: Any) -> bool:
    """Tell whether ``value`` is a valid org, key, advocate or device id."""
    return isinstance(value, str) and IDENTIFIER.fullmatch(value) is not None


def is_timestamp(value: Any) -> bool:
    """Tell whether ``value`` is an ``at`` timestamp (``TIMESTAMP``)."""
    return isinstance(value, str) and TIMESTAMP.fullmatch(value) is not None


def decode_nonce(text: Any) -> bytes:
    """Decode a sealed value's ``n``.

    Raises:
        FormatError: Not canonical base64url of 12 bytes.
    """
    try:
        return base64url.decode(text, length=NONCE_LENGTH)
    except ValueError:
        raise FormatError('n', 'invalid', "'n' is not a 12-byte nonce") from None


def decode_ciphertext(text: Any) -> bytes:
    """Decode a sealed value's ``ct``: a tag after whole 32-byte blocks, at most 64 KiB.

    Raises:
        FormatError: ``problem`` is ``too_long`` when it is longer than any
            fle/1 ciphertext, else ``invalid``.
    """
    if isinstance(text, str) and len(text) > _MAX_CIPHERTEXT_CHARS:
        raise FormatError('ct', 'too_long', "'ct' is longer than any fle/1 ciphertext")
    try:
        data = base64url.decode(text)
    except ValueError:
        raise FormatError('ct', 'invalid', "'ct' is not base64url") from None
    if len(data) > MAX_CIPHERTEXT_LENGTH:
        raise FormatError('ct', 'too_long', "'ct' is longer than any fle/1 ciphertext")
    body = len(data) - TAG_LENGTH
    if body < PAD_BLOCK or body % PAD_BLOCK:
        raise FormatError('ct', 'invalid', "'ct' has an impossible length")
    return data


def sealed_parts(value: Any, *, rkids: Container[str] | None = None) -> tuple[bytes, bytes]:
    """Check that ``value`` is a sealed value; return its nonce and ciphertext.

    Args:
        value: The stored field value.
        rkids: The rkids of the document's checked header, when the caller
            has them: ``rk`` must then be one of them.

    Raises:
        FormatError: The first rule broken, naming the member.
    """
    if not isinstance(value, dict) or value.keys() != SEALED_VALUE_KEYS:
        raise FormatError('value', 'invalid', 'a sealed value is an object with fle, rk, n and ct')
    # APPSEC: versions are an allow-list.
    if not is_version(value['fle']):
        raise FormatError('fle', 'invalid', "'fle' is not a supported version")
    if not is_rkid(value['rk']):
        raise FormatError('rk', 'invalid', "'rk' is not an rkid")
    if rkids is not None and value['rk'] not in rkids:
        raise FormatError('rk', 'unknown', "'rk' names an rkid missing from 'fle.keys'")
    return decode_nonce(value['n']), decode_ciphertext(value['ct'])


def check_header(header: Any) -> dict[str, bytes]:
    """Check a document's ``fle`` header.

    Returns:
        ``{rkid: commit}`` for every entry of ``keys``, the key commitment
        decoded.

    Raises:
        FormatError: The first rule broken; the message names the member.
    """
    if not isinstance(header, dict) or header.keys() != HEADER_KEYS:
        raise FormatError('header', 'invalid',
                          "document 'fle' header must be an object with v and keys")
    if not is_version(header['v']):
        raise FormatError('v', 'invalid', "document 'fle.v' is not a supported version")
    keys = header['keys']
    if not isinstance(keys, dict) or not keys:
        raise FormatError('keys', 'invalid', "document 'fle.keys' must be a non-empty object")
    commits = {}
    for rkid, entry in keys.items():
        if not is_rkid(rkid):
            raise FormatError('keys', 'invalid',
                              "document 'fle.keys' has a name that is not an rkid")
        if not isinstance(entry, dict):
            raise FormatError('keys', 'invalid', "document 'fle.keys' entry is not an object")
        names = entry.keys()
        if not HEADER_ENTRY_REQUIRED <= names <= HEADER_ENTRY_REQUIRED | HEADER_ENTRY_OPTIONAL:
            raise FormatError('keys', 'invalid',
                              "document 'fle.keys' entry has missing or unknown members")
        try:
            commits[rkid] = base64url.decode(entry['commit'], length=COMMIT_LENGTH)
        except ValueError:
            raise FormatError('commit', 'invalid',
                              "document 'fle.keys' entry 'commit' is not 32 bytes") from None
        if not is_identifier(entry['kek']):
            raise FormatError('kek', 'invalid',
                              "document 'fle.keys' entry 'kek' is not an identifier")
        if 'dev' in entry and not is_identifier(entry['dev']):
            raise FormatError('dev', 'invalid',
                              "document 'fle.keys' entry 'dev' is not an identifier")
        if 'at' in entry and not is_timestamp(entry['at']):
            raise FormatError('at', 'invalid',
                              "document 'fle.keys' entry 'at' is not a UTC timestamp")
    return commits
