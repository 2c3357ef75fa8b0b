"""The fle/1 format, without cryptography: what a sealed record looks like.

One place for the rules every reader and writer of fle/1 shares: the
version, the ``rk:`` envelope ids, rkids and identifiers, canonical
base64url, JSON Pointers, and the shapes of a sealed value and of the
``fle`` header. ``schemas`` (what the server accepts), ``sync`` (what the
gateway keeps in quarantine) and ``keys`` (what sealers write and openers
accept) all check them here. Nothing in this package imports
``cryptography``, ``falcon``, the service or the staff client;
``docs/ENCRYPTION.md`` specifies the format byte by byte.
"""

from fle import base64url, pointer
from fle.shapes import (
    ENVELOPE_PREFIX,
    FLE_VERSION,
    IDENTIFIER,
    RKID,
    TIMESTAMP,
    FormatError,
    check_header,
    envelope_id,
    is_identifier,
    is_rkid,
    is_timestamp,
    is_version,
    is_written_version,
    rkid_bytes,
    sealed_parts,
)

__all__ = [
    'ENVELOPE_PREFIX',
    'FLE_VERSION',
    'IDENTIFIER',
    'RKID',
    'TIMESTAMP',
    'FormatError',
    'base64url',
    'check_header',
    'envelope_id',
    'is_identifier',
    'is_rkid',
    'is_timestamp',
    'is_version',
    'is_written_version',
    'pointer',
    'rkid_bytes',
    'sealed_parts',
]
