"""Canonical base64url without padding, the encoding of every fle/1 byte string."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

__all__ = ['decode', 'encode']

_ALPHABET = re.compile(r'[A-Za-z0-9_-]*')


def encode(data: bytes) -> str:
    """Encode bytes as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def decode(text: Any, *, length: int | None = None) -> bytes:
    """Decode canonical base64url without padding.

    Canonical means that encoding the result gives ``text`` back: padding,
    characters outside the URL-safe alphabet and non-zero trailing bits are
    refused, so one byte string has exactly one spelling.

    Args:
        text: The encoded string.
        length: The exact decoded length required, if any.

    Returns:
        The decoded bytes.

    Raises:
        ValueError: ``text`` is not a string, not canonical base64url, or
            does not decode to ``length`` bytes.
    """
    # APPSEC: a second spelling of the same bytes would let altered text
    # still open, so only the canonical one is accepted.
    if not isinstance(text, str) or _ALPHABET.fullmatch(text) is None or len(text) % 4 == 1:
        raise ValueError('not canonical base64url')
    try:
        data = base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))
    except binascii.Error:
        raise ValueError('not canonical base64url') from None
    if encode(data) != text:
        raise ValueError('not canonical base64url')
    if length is not None and len(data) != length:
        raise ValueError('wrong length')
    return data
