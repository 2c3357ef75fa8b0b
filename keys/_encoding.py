"""Byte encodings shared by every fle/1 structure.

Nothing here is secret-dependent or cryptographic: little-endian 64-bit
lengths, PAE, canonical JSON, record ids and timestamps. The format rules
every reader shares (base64url, rkids, identifiers, JSON Pointers) live in
the crypto-free ``fle`` package and are named here for the modules of
``keys``. ``docs/ENCRYPTION.md`` specifies each one.
"""

from __future__ import annotations

import datetime
import json
import re
import struct
from typing import Any

from fle.base64url import decode as b64url_decode
from fle.base64url import encode as b64url_encode
from fle.pointer import locate
from fle.pointer import parse as parse_pointer
from fle.shapes import (
    TIMESTAMP,
    is_identifier,
    is_rkid,
    is_timestamp,
    rkid_bytes,
)

__all__ = [
    'DATE',
    'MAX_DOC_ID_LENGTH',
    'MAX_SAFE_INTEGER',
    'TIMESTAMP',
    'b64url_decode',
    'b64url_encode',
    'canonical_json',
    'format_timestamp',
    'is_doc_id',
    'is_identifier',
    'is_rkid',
    'is_timestamp',
    'le64',
    'locate',
    'pae',
    'pae_item',
    'parse_pointer',
    'rkid_bytes',
]

#: ``accept_until`` dates.
DATE = re.compile(r'[0-9]{4}-[0-9]{2}-[0-9]{2}')
#: Longest CouchDB ``_id`` we seal into (a bound, not a CouchDB limit).
MAX_DOC_ID_LENGTH = 512
#: Largest safe integer in JSON for JavaScript readers (2**53 - 1).
MAX_SAFE_INTEGER = 2**53 - 1


def le64(number: int) -> bytes:
    """Encode a non-negative integer as 8 bytes, little-endian."""
    return struct.pack('<Q', number)


def pae(*parts: str | bytes) -> bytes:
    """Pre-authentication encoding of ``parts``.

    ``PAE(x1..xn) = LE64(n) || LE64(len x1) || x1 || ... || LE64(len xn) || xn``,
    strings as UTF-8. Used for every AAD and HPKE ``info``.
    """
    return le64(len(parts)) + b''.join(pae_item(part) for part in parts)


def pae_item(part: str | bytes) -> bytes:
    """One element of a PAE: ``LE64(len x) || x``, a string as UTF-8."""
    data = part.encode('utf-8') if isinstance(part, str) else bytes(part)
    return le64(len(data)) + data


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` as canonical JSON (the bytes that get signed).

    Objects have their members sorted by the UTF-16 code units of the keys
    (RFC 8785 order), no whitespace, UTF-8 output. Only objects with string
    keys, arrays, strings and integers within JavaScript's safe range are
    allowed, which makes this output identical to RFC 8785 JCS and to
    ``JSON.stringify`` with sorted keys.

    Raises:
        ValueError: ``value`` holds a float, bool, null, unsafe integer,
            non-string key or a string that is not valid Unicode.
    """
    return _canonical(value).encode('utf-8')


def _canonical(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise ValueError('canonical JSON holds strings, integers, arrays and objects only')
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError('integer outside the safe range')
        return str(value)
    if isinstance(value, str):
        value.encode('utf-8')  # Refuses lone surrogates.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(_canonical(item) for item in value) + ']'
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise ValueError('object keys must be strings')
        ordered = sorted(value, key=lambda key: key.encode('utf-16-be'))
        members = (_canonical(key) + ':' + _canonical(value[key]) for key in ordered)
        return '{' + ','.join(members) + '}'
    raise ValueError('unsupported type in canonical JSON')


def is_doc_id(value: Any) -> bool:
    """Tell whether ``value`` can be the ``_id`` of a sealed document.

    1 to 512 code points, not starting with ``_``, valid Unicode (a lone
    surrogate has no UTF-8 form, so it could not enter an AAD).
    """
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_DOC_ID_LENGTH
        and not value.startswith('_')
        and (value.isascii() or _is_unicode(value))
    )


def _is_unicode(text: str) -> bool:
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        return False
    return True


def format_timestamp(now: datetime.datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError('timestamps must be timezone-aware')
    utc = now.astimezone(datetime.timezone.utc)
    # Years below 1000 are zero-padded to the four digits TIMESTAMP demands
    # (strftime would not pad them).
    return '%04d-%02d-%02dT%02d:%02d:%02dZ' % (
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)
