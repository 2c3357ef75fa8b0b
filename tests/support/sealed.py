"""The shape check every sealed record must pass, for tests of sealers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import fle


def assert_sealed_shape(doc: dict[str, Any], paths: Iterable[str]) -> None:
    """Check that ``doc`` has a valid ``fle`` header and every present value at ``paths`` is sealed.

    Each sealed value must name a record key of the header. These are the
    fle/1 shape rules the server applies to pushed records (through the
    record schemas) and the opener applies before decrypting.

    Raises:
        fle.FormatError: A rule is broken.
    """
    commits = fle.check_header(doc.get('fle'))
    for pointer in paths:
        value = fle.pointer.resolve(doc, pointer)
        if value is not None:
            fle.sealed_parts(value, rkids=commits)
