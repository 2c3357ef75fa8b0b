"""The sealed-youth registry: nothing arrives for a youth after their sealing.

A sealing shreds the record keys of one youth's records. Whatever arrives
for that youth afterwards (a record pushed by a reissued tablet, an edit
resealed under a new record key, a record re-created through desk intake
after its tombstone, an envelope a tablet kept) must be refused, or the
youth could be read again. Both the gateway and desk intake ask one
question of every document: :func:`LateArrivals.refusal`.

The registry is one document, ``sealed-youths``, in ``directory``:

* it lives beside the sealing documents, outside ``keyvault``, so a
  key-vault backup and restore neither carries nor loses it;
* it holds keyed BLAKE2b digests of the linking keys (``client_id``,
  ``youth_code``) and record ids of sealed youths, never the values. The
  key is random per deployment and kept in the same document: it holds no
  secret from someone who can read ``directory`` (the sealing documents
  there name the same pseudonymous ids), but the registry itself, and
  anything that copies it, names nobody;
* its digests are one space-separated string, so the ``DocWatch`` that
  keeps it between changes copies one string per read, and the set built
  from it is kept per ``_rev``: a push batch costs a dictionary lookup and
  at most three digests per document, no database read while the
  directory's change feed reports no change.

Registered record ids cover records of the youth that carry neither
linking key; a record refused here is registered too, so its envelope is
refused when it arrives in a later batch.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
import threading
from collections.abc import Callable, Container, Iterable
from typing import TYPE_CHECKING, Any

from sync.errors import DocumentConflict
from sync.filtering import ENVELOPE_PREFIX, Refusal

if TYPE_CHECKING:
    from sync.couch import CouchDBClient
    from sync.watch import DocWatch

__all__ = ['REGISTRY_ID', 'YOUTH_SEALED', 'ENVELOPE_DELETED', 'LateArrivals', 'SealedSet',
           'SealedRegistry']

#: The registry document in ``directory``.
REGISTRY_ID = 'sealed-youths'

#: A record or envelope of a sealed youth. Its quarantine copy keeps no key material.
YOUTH_SEALED = Refusal(
    'youth_sealed',
    "This youth's records were sealed; nothing more may be added for them.")
#: A record key a sealing shredded (keyvault holds a deleted ``rk:`` document).
ENVELOPE_DELETED = Refusal(
    'envelope_deleted',
    'This record key was shredded when its youth was sealed; devices may not bring it back.')

#: The linking keys a sealing names, as record fields.
_LINKS = ('client_id', 'youth_code')


def _digest(key: bytes, kind: str, value: str) -> str:
    return hashlib.blake2b(f'{kind}\0{value}'.encode(), key=key, digest_size=16).hexdigest()


@dataclasses.dataclass(frozen=True)
class SealedSet:
    """One read of the registry.

    Attributes:
        key: The deployment's digest key.
        digests: Digests of every sealed linking key and record id.
    """

    key: bytes
    digests: frozenset[str]

    def has(self, kind: str, value: Any) -> bool:
        """Return True when ``value`` (a ``client_id``, ``youth_code`` or ``record``) is sealed."""
        return isinstance(value, str) and bool(value) and \
            _digest(self.key, kind, value) in self.digests

    def record_sealed(self, doc: dict[str, Any]) -> bool:
        """Return True when a record document belongs to a sealed youth."""
        return self.has('record', doc.get('_id')) or any(
            self.has(name, doc.get(name)) for name in _LINKS)


def _is_envelope(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get('_id', '')).startswith(ENVELOPE_PREFIX)


class LateArrivals:
    """The sealing rule applied to one batch of documents (a push or a desk intake).

    Args:
        sealed: The registry as read for this batch.
        docs: Every document of the batch: an envelope is refused when its
            record is sealed or is a record of a sealed youth in the same
            batch, in whichever order they come.
    """

    def __init__(self, sealed: SealedSet, docs: Iterable[Any]) -> None:
        self.sealed = sealed
        #: Ids of records of sealed youths in this batch.
        self.records: set[str] = set()
        for doc in docs:
            if isinstance(doc, dict) and isinstance(doc.get('_id'), str) \
                    and not _is_envelope(doc) and not doc.get('_deleted') \
                    and sealed.record_sealed(doc):
                self.records.add(doc['_id'])
        #: Of those, the ids the registry does not list yet (register them).
        self.new_records = sorted(record_id for record_id in self.records
                                  if not sealed.has('record', record_id))

    def refusal(self, doc: Any, shredded: Container[str] = ()) -> Refusal | None:
        """Return the refusal of one document, or None when the sealing rule allows it.

        Args:
            doc: A record or an ``rk:`` envelope.
            shredded: Envelope ids whose stored document is deleted (a
                sealing shredded them); such an envelope is refused even
                when its record is not known to the registry.
        """
        if not isinstance(doc, dict):
            return None
        if _is_envelope(doc):
            if doc['_id'] in shredded:
                return ENVELOPE_DELETED
            record_id = doc.get('doc')
            if record_id in self.records or self.sealed.has('record', record_id):
                return YOUTH_SEALED
            return None
        # A tombstone removes data; it never brings any back.
        if doc.get('_deleted'):
            return None
        return YOUTH_SEALED if doc.get('_id') in self.records else None


class SealedRegistry:
    """Reads and extends the registry document.

    Args:
        couch: CouchDB client.
        directory_db: Physical name of ``directory``.
        watch: A ``DocWatch`` of ``directory`` that keeps ``REGISTRY_ID``
            (reads go to CouchDB without one).
    """

    def __init__(self, couch: CouchDBClient, directory_db: str,
                 watch: DocWatch | None = None) -> None:
        self._couch = couch
        self._db = directory_db
        self._watch = watch
        self._lock = threading.Lock()
        self._cached: tuple[str, SealedSet] | None = None

    def snapshot(self) -> SealedSet:
        """Return the registry as it is now (creating an empty one on first use)."""
        doc = self._watch.get(REGISTRY_ID) if self._watch is not None else \
            self._couch.get_or_none(self._db, REGISTRY_ID)
        if doc is None:
            # Created once, so later reads are cache hits (misses are never kept).
            doc = self._write(lambda current: None)
        with self._lock:
            if self._cached is None or self._cached[0] != doc['_rev']:
                self._cached = (doc['_rev'], SealedSet(
                    base64.b64decode(doc['key']), frozenset(doc.get('digests', '').split())))
            return self._cached[1]

    def add(self, *, client_ids: Iterable[Any] = (), youth_codes: Iterable[Any] = (),
            record_ids: Iterable[Any] = ()) -> None:
        """Register linking keys and record ids of a sealed youth (idempotent)."""
        values = [('client_id', value) for value in client_ids] + \
            [('youth_code', value) for value in youth_codes] + \
            [('record', value) for value in record_ids]
        values = [(kind, value) for kind, value in values if isinstance(value, str) and value]
        if values:
            self._write(lambda current: {_digest(current, kind, value) for kind, value in values})

    def _seed(self, key: bytes) -> set[str]:
        """Digests of every sealing already carried out (a registry created late)."""
        found: set[str] = set()
        for sealing in self._couch.iter_prefix(self._db, 'sealing:'):
            if sealing.get('status') not in ('approving', 'sealed'):
                continue
            values = [('client_id', sealing.get('client_id')),
                      ('youth_code', sealing.get('youth_code'))]
            values += [('record', record_id) for record_id in sealing.get('records_sealed') or ()]
            found.update(_digest(key, kind, value) for kind, value in values
                         if isinstance(value, str) and value)
        return found

    def _write(self, new_digests: Callable[[bytes], set[str] | None]) -> dict[str, Any]:
        """Read-modify-write the registry, retrying on a concurrent change."""
        for _attempt in range(20):
            doc = self._couch.get_or_none(self._db, REGISTRY_ID)
            if doc is None:
                key = secrets.token_bytes(32)
                doc = {'_id': REGISTRY_ID, 'type': 'sealed_registry',
                       'key': base64.b64encode(key).decode(), 'digests': ''}
                seeded = self._seed(key)
            else:
                seeded = set()
            added = (new_digests(base64.b64decode(doc['key'])) or set()) | seeded
            known = set(doc['digests'].split())
            if '_rev' in doc and added <= known:
                return doc
            doc['digests'] = ' '.join(sorted(known | added))
            try:
                doc['_rev'] = self._couch.put(self._db, doc)
            except DocumentConflict:
                continue
            finally:
                if self._watch is not None:
                    self._watch.forget(REGISTRY_ID)
            return doc
        raise DocumentConflict(409, 'conflict', f'PUT {REGISTRY_ID}')
