"""JSON Pointers (RFC 6901): how fle/1 names a field in AAD and in schemas."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ['escape', 'locate', 'parse', 'resolve']

_BAD_ESCAPE = re.compile(r'~(?![01])')
_INDEX = re.compile(r'0|[1-9][0-9]*')


def escape(token: str) -> str:
    """Escape one reference token (``~`` first, then ``/``, as RFC 6901 orders it)."""
    return token.replace('~', '~0').replace('/', '~1')


def parse(pointer: Any) -> tuple[str, ...]:
    """Split a JSON Pointer into its unescaped reference tokens.

    Raises:
        ValueError: ``pointer`` is not a string starting with ``/``, or holds
            a ``~`` not followed by ``0`` or ``1``.
    """
    if not isinstance(pointer, str) or not pointer.startswith('/'):
        raise ValueError('a JSON Pointer is a string starting with "/"')
    tokens = pointer[1:].split('/')
    if any(_BAD_ESCAPE.search(token) for token in tokens):
        raise ValueError('bad escape in JSON Pointer')
    return tuple(token.replace('~1', '/').replace('~0', '~') for token in tokens)


def _child(container: Any, token: str) -> tuple[bool, Any]:
    """Return ``(True, member)`` when ``container`` has ``token``, else ``(False, None)``."""
    if isinstance(container, dict):
        if token in container:
            return True, container[token]
    elif isinstance(container, list) and _INDEX.fullmatch(token):
        index = int(token)
        if index < len(container):
            return True, container[index]
    return False, None


def locate(document: Any, tokens: Sequence[str]) -> tuple[Any, str | int] | None:
    """Find the container and key the last of ``tokens`` refers to.

    Returns:
        ``(container, key)`` with ``container[key]`` present, or ``None``
        when any step of the path is missing.
    """
    container = document
    for token in tokens[:-1]:
        found, container = _child(container, token)
        if not found:
            return None
    last = tokens[-1]
    found, _ = _child(container, last)
    if not found:
        return None
    return container, (int(last) if isinstance(container, list) else last)


def resolve(document: Any, pointer: str) -> Any:
    """Return the value at ``pointer``, or ``None`` when any step is missing.

    Raises:
        ValueError: ``pointer`` is not a JSON Pointer.
    """
    found = locate(document, parse(pointer))
    return None if found is None else found[0][found[1]]
