"""Pure functions that lift a document from one schema major to the next.

marshmallow leaves versioning to the application (marshmallow issues #171,
#1107): each major's schema is a frozen copy, every document says which one
it was written under (``"schema": "contact/1"``), and upgrade functions lift
old documents before the current schema loads them.

``UPGRADES[(type, n)]`` lifts ``<type>/n`` to ``<type>/n+1``. It receives a
deep copy, so it cannot mutate the caller's document, and returns the lifted
document; ``upgrade`` then sets ``schema`` to the new tag. All record types
are at major 1 today, so the registry is empty.

APPSEC: an upgrade may not move, rename or recompute an identifying field.
Its sealed value's AAD binds the field's JSON Pointer, and the server cannot
open it; such a change needs an advocate to re-seal the records.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from schemas.errors import SchemasError
from schemas.errors import UnknownSchema

__all__ = ['UPGRADES', 'Upgrade', 'register_upgrade', 'upgrade']

Upgrade = Callable[[dict[str, Any]], dict[str, Any]]

#: (record type, from major) -> function lifting it to from major + 1.
UPGRADES: dict[tuple[str, int], Upgrade] = {}


def register_upgrade(doc_type: str, from_major: int) -> Callable[[Upgrade], Upgrade]:
    """Register the decorated function as the upgrade from ``doc_type/from_major``.

    Raises:
        SchemasError: An upgrade from that major is already registered.
    """
    def decorator(function: Upgrade) -> Upgrade:
        if (doc_type, from_major) in UPGRADES:
            raise SchemasError(f'An upgrade from {doc_type}/{from_major} is already registered.')
        UPGRADES[(doc_type, from_major)] = function
        return function
    return decorator


def upgrade(document: dict[str, Any], doc_type: str, from_major: int,
            to_major: int) -> dict[str, Any]:
    """Return ``document`` lifted from ``from_major`` to ``to_major``.

    The input is never modified. Each step runs on a copy and the result's
    ``schema`` tag is set to the step's target major.

    Raises:
        UnknownSchema: A step of the chain has no registered upgrade.
    """
    lifted = copy.deepcopy(document)
    for major in range(from_major, to_major):
        step = UPGRADES.get((doc_type, major))
        if step is None:
            raise UnknownSchema('No upgrade path from this schema version.')
        lifted = step(lifted)
        lifted['schema'] = f'{doc_type}/{major + 1}'
    return lifted
