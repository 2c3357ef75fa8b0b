"""Replication checkpoints: the ``_local`` documents of each device.

A checkpoint is stored upstream under an id namespaced by device, and a copy
is kept in memory from its last write, so the read a replicator makes before
every write costs no upstream request.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import threading
from collections.abc import Callable
from typing import Any

from sync.couch import CouchDBClient
from sync.devices import DeviceIdentity
from sync.errors import BadRequest, DocumentNotFound

__all__ = ['Checkpoints']

#: Longest checkpoint id a device may name.
_MAX_ID_LENGTH = 512

#: Most checkpoints one gateway keeps in memory (a few hundred bytes each).
_MAX_CHECKPOINTS = 10_000


def _local_addressable(local_id: Any) -> bool:
    """Return whether a checkpoint id is one a replicator could have made."""
    return (isinstance(local_id, str) and 0 < len(local_id) <= _MAX_ID_LENGTH
            and local_id not in ('.', '..') and '/' not in local_id)


class _Kept:
    """The ``_local`` checkpoints this instance last read or wrote, by upstream id.

    A replicator reads its checkpoint before every write of it (once per
    batch), and a live device writes it after every batch, so the read is
    answered from the copy kept at the last write. Keeping it is safe
    although another instance may write the same checkpoint: a stale copy
    holds an older ``last_seq`` (the device replays from there, which writes
    nothing new) and an older ``_rev``, so the device's next write gets 409,
    which drops the copy; PouchDB then reads again (upstream) and writes.
    """

    def __init__(self, max_entries: int = _MAX_CHECKPOINTS) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._docs: collections.OrderedDict[tuple[str, str], dict[str, Any]] = (
            collections.OrderedDict())

    def get(self, key: tuple[str, str]) -> dict[str, Any] | None:
        """Return a copy of the kept checkpoint, or None."""
        with self._lock:
            doc = self._docs.get(key)
            if doc is None:
                return None
            self._docs.move_to_end(key)
            return copy.deepcopy(doc)

    def keep(self, key: tuple[str, str], doc: dict[str, Any], *, replace: bool = True) -> None:
        """Keep ``doc`` (a read keeps it only when nothing newer is kept)."""
        with self._lock:
            if not replace and key in self._docs:
                return
            self._docs[key] = copy.deepcopy(doc)
            self._docs.move_to_end(key)
            while len(self._docs) > self._max:
                self._docs.popitem(last=False)

    def forget(self, key: tuple[str, str]) -> None:
        """Drop a copy that proved stale."""
        with self._lock:
            self._docs.pop(key, None)



class Checkpoints:
    """The ``_local`` documents devices read and write while replicating.

    Args:
        couch: CouchDB client.
        physical: Returns the physical name of a replicated logical database
            (raises ``UnknownDatabase`` for any other).
    """

    def __init__(self, couch: CouchDBClient, physical: Callable[[str], str]) -> None:
        self._couch = couch
        self._physical = physical
        self._kept = _Kept()

    @staticmethod
    def _local_id(device: DeviceIdentity, db: str, local_id: str) -> str:
        # Namespacing by device means one device can neither read nor
        # overwrite another's checkpoints, whatever replication id it sends.
        digest = hashlib.sha256(f'{db}\0{local_id}'.encode()).hexdigest()[:40]
        return f'_local/fv.{device.device_id}.{digest}'

    def read(self, device: DeviceIdentity, db: str, local_id: str) -> dict[str, Any]:
        """Return a device's ``_local`` document.

        Raises:
            DocumentNotFound: No such checkpoint.
        """
        physical = self._physical(db)
        if not _local_addressable(local_id):
            raise DocumentNotFound(404, 'not_found', 'GET _local')
        key = (physical, self._local_id(device, db, local_id))
        doc = self._kept.get(key)
        if doc is None:
            doc = self._couch.get(*key)
            self._kept.keep(key, doc, replace=False)
        doc['_id'] = f'_local/{local_id}'
        return doc

    def write(
        self, device: DeviceIdentity, db: str, local_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Store a device's ``_local`` document and return ``{ok, id, rev}``.

        Of CouchDB's special members only ``_rev`` is passed on (checkpoints
        need nothing else, and ``_deleted`` or ``_attachments`` would be
        acted on by the database).

        Raises:
            BadRequest: The id is not addressable, or `_rev` is not a string.
            DocumentConflict: ``_rev`` is stale.
        """
        if not isinstance(body, dict):
            raise BadRequest('body')
        if not _local_addressable(local_id):
            raise BadRequest('id')
        if '_rev' in body and not isinstance(body['_rev'], str):
            raise BadRequest('_rev')
        stored = {key: value for key, value in body.items()
                  if key == '_rev' or not key.startswith('_')}
        stored['_id'] = self._local_id(device, db, local_id)
        key = (self._physical(db), stored['_id'])
        try:
            rev = self._couch.put(key[0], stored)
        except Exception:
            # A conflict means the kept copy is stale (another instance
            # wrote); any other failure leaves the upstream state unknown.
            self._kept.forget(key)
            raise
        self._kept.keep(key, dict(stored, _rev=rev))
        return {'ok': True, 'id': f'_local/{local_id}', 'rev': rev}
