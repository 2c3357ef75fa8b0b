"""The CouchDB replication gateway: what each ``/sync/{db}`` request does.

Tablets (PouchDB 9) and the CouchDB replicator talk to the gateway as if it
were CouchDB. The gateway passes upstream sequences through verbatim, filters
the real ``_changes`` feed per device, validates every pushed document, and
stores checkpoints namespaced per device. Methods are named after the steps of
the CouchDB replication protocol and work on plain data; ``service`` maps them
to HTTP. See docs/SYNC.md for the rules and what is not covered.

Pull cost: ``changes`` reads the upstream feed from the device's checkpoint
onwards (with ``include_docs`` to see owners), so it follows the changes since
the checkpoint, never the size of the database.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from sync import filtering, key_policy, sealed
from sync.couch import CouchDBClient, doc_path
from sync.devices import DeviceIdentity
from sync.errors import DatabaseUnavailable, DocumentNotFound
from sync.listen import ChangeListener, Waiter

__all__ = ['Gateway', 'RecordRules', 'SYNC_DATABASES', 'UnknownDatabase', 'BadRequest',
           'TooManyDocuments']

#: Logical databases devices replicate.
SYNC_DATABASES = ('records', 'config')

_SINCE = re.compile(r'now|[0-9]{1,20}|[A-Za-z0-9_.-]{1,512}')

#: Upstream ``_changes`` page size while scanning for visible rows.
_SCAN_PAGE = 500

#: Largest ``limit`` honoured, so one request cannot ask for the whole db.
_MAX_LIMIT = 1000

#: Longest single upstream long-poll of a waiting device (seconds); the
#: device's own deadline is checked between them.
_UPSTREAM_SLICE = 5.0


def _clamp_limit(limit: int | None) -> int:
    """Return ``limit`` within ``1.._MAX_LIMIT`` (``_MAX_LIMIT`` when unset)."""
    return min(max(int(limit), 1), _MAX_LIMIT) if limit else _MAX_LIMIT


#: Longest document id a device may name on a read path.
_MAX_ID_LENGTH = 512


def _addressable(doc_id: Any) -> bool:
    """Return whether a device-sent id can only name a document of its database.

    An empty id, ``.`` or ``..`` (dot segments: the URL ``/db/..`` is the
    server's welcome and ``/db/.`` the database's info), an id with ``/``,
    or one starting with ``_`` (``_security``, ``_design/``, ``_local/``:
    checkpoints have their own route) is answered as a missing document,
    never sent upstream. Envelopes are never read through the gateway.
    """
    return (isinstance(doc_id, str) and 0 < len(doc_id) <= _MAX_ID_LENGTH
            and doc_id not in ('.', '..') and '/' not in doc_id
            and not doc_id.startswith(('_', filtering.ENVELOPE_PREFIX)))


def _local_addressable(local_id: Any) -> bool:
    """Return whether a checkpoint id is one a replicator could have made."""
    return (isinstance(local_id, str) and 0 < len(local_id) <= _MAX_ID_LENGTH
            and local_id not in ('.', '..') and '/' not in local_id)


def _decoy_id() -> str:
    """Return an id no database holds, to ask upstream what a missing id answers."""
    return f'missing:{uuid.uuid4().hex}'


def _rename(value: Any, old: str, new: str) -> Any:
    """Return ``value`` with every string equal to ``old`` replaced by ``new``."""
    if isinstance(value, dict):
        return {key: _rename(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_rename(item, old, new) for item in value]
    return new if value == old else value

#: Runs a push's owner lookup and its chunk writes (I/O) while the request
#: thread validates (CPU).
_UPSTREAM = ThreadPoolExecutor(max_workers=16, thread_name_prefix='fv-push-io')

#: A push batch with at least this many records is checked and written in two
#: halves: the first half is written while the second is validated, so schema
#: validation (Python, ~0.2-0.3 ms a record) and CouchDB's write overlap
#: instead of adding up. PouchDB's batches (100 documents) are written in one
#: ``_bulk_docs``: on a single-threaded database every request costs a few ms
#: of its one core whatever its size, and the database is the shared part
#: (docs/BENCHMARKS.md); couch_replicator's (500) are split.
_SPLIT_AT_RECORDS = 200

#: Most checkpoints one gateway keeps in memory (a few hundred bytes each).
_MAX_CHECKPOINTS = 10_000


class _Checkpoints:
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


class UnknownDatabase(Exception):
    """The path names a database devices do not replicate."""


class BadRequest(Exception):
    """A malformed replication request; the message names the parameter."""


class TooManyDocuments(BadRequest):
    """A bulk request names more documents than one request may carry."""


@dataclasses.dataclass(frozen=True)
class RecordRules:
    """Validators the gateway applies to pushed documents (from schemas/keys).

    Attributes:
        record_types: Types a device may write.
        validate_document: Schema check of a record without metadata.
        identifying_paths: JSON pointers of a type's identifying fields.
        schema_errors: Exceptions meaning "does not match its schema".
        unknown_schema_errors: Exceptions meaning "unknown type or version".
        validate_envelope: Structural check of an ``rk:`` envelope.
        envelope_errors: Exceptions meaning "malformed envelope".
        manifest_body: Returns the verified current key manifest body (or
            None); when given, pushed envelopes must be sealed to a key version
            it still accepts (``sync.key_policy``). Read once per push batch.
        sealed_registry: The sealed-youth registry (``sync.sealed``); when
            given, records and envelopes of a sealed youth are refused.
        check_capture: ``(doc, worker, stored doc or None)`` -> ``(rule,
            reason)`` or None: whether a worker may capture this record
            (type, case actions), given the revision stored.
        check_guards: ``(doc, stored doc or None, the batch's documents)``
            -> ``(guard, reason)`` or None: whether the case actions a
            record adds pass their guards against the youth's other records.
    """

    record_types: tuple[str, ...]
    validate_document: Callable[[dict[str, Any]], Any]
    identifying_paths: Callable[[str], Iterable[str]]
    schema_errors: tuple[type[Exception], ...]
    unknown_schema_errors: tuple[type[Exception], ...]
    validate_envelope: Callable[[dict[str, Any]], Any]
    envelope_errors: tuple[type[Exception], ...]
    manifest_body: Callable[[], dict[str, Any] | None] | None = None
    sealed_registry: Any = None
    check_capture: Callable[[dict[str, Any], str, dict[str, Any] | None],
                            tuple[str, str] | None] | None = None
    check_guards: Callable[[dict[str, Any], dict[str, Any] | None, list[Any]],
                           tuple[str, str] | None] | None = None


def _q(db: str) -> str:
    return quote(db, safe='')


def _envelope_id(doc: Any) -> str | None:
    """Return the ``_id`` of a pushed ``rk:`` envelope, or None for anything else."""
    if isinstance(doc, dict):
        doc_id = doc.get('_id')
        if isinstance(doc_id, str) and doc_id.startswith(filtering.ENVELOPE_PREFIX):
            return doc_id
    return None


@dataclasses.dataclass(frozen=True)
class _Stored:
    """What a push batch is checked against, read once per batch.

    Attributes:
        owners: Owner of each pushed record id stored live, by id.
        envelopes: For each pushed envelope id keyvault holds, the pushed
            revisions it already has.
        deleted_envelopes: Those of them whose winning revision is deleted
            (only a sealing deletes envelopes: shredded).
    """

    owners: dict[str, str]
    envelopes: dict[str, frozenset[str]]
    deleted_envelopes: frozenset[str] = frozenset()
    records: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


_ENVELOPE_EXISTS = filtering.Refusal(
    'envelope_exists',
    'An envelope with this id is already stored; devices may only create envelopes.')
#: Its quarantine copy keeps no key material (see ``Gateway._quarantine``).
_ENVELOPE_DELETED = filtering.Refusal(
    'envelope_deleted',
    'This record key was shredded when its youth was sealed; devices may not bring it back.')


@dataclasses.dataclass
class _Batch:
    """The state of one ``_bulk_docs`` request while its chunks are decided."""

    stored: Any = None  # Future[_Stored], submitted before the first chunk
    manifest: list[Any] = dataclasses.field(default_factory=list)  # read at most once
    answers: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    refused: list[tuple[Any, filtering.Refusal]] = dataclasses.field(default_factory=list)
    envelope_revs: dict[str, Any] = dataclasses.field(default_factory=dict)
    late: sealed.LateArrivals | None = None  # built at the first document
    new_edits: bool = True

    def refuse(self, index: int, doc: Any, refusal: filtering.Refusal) -> None:
        """Answer ``forbidden`` for ``docs[index]`` and keep it for quarantine."""
        doc_id = doc.get('_id') if isinstance(doc, dict) else None
        answer: dict[str, Any] = {
            'id': doc_id if isinstance(doc_id, str) else None,
            'error': 'forbidden', 'reason': refusal.reason, 'rule': refusal.rule}
        if refusal.fields:
            # Schema messages are ours and name fields, never a value.
            answer['fields'] = refusal.fields
        if isinstance(doc, dict) and isinstance(doc.get('_rev'), str) and doc['_rev']:
            answer['rev'] = doc['_rev']
        self.answers[index] = answer
        self.refused.append((doc, refusal))

    def check_envelope_revision(
        self, doc: dict[str, Any], stored: _Stored,
    ) -> filtering.Refusal | None:
        """Refuse a revision that would change an envelope instead of creating it.

        Devices only ever create envelopes (rotation rewraps them on the
        server, and no device ever pulls one). So a pushed revision is
        accepted when keyvault does not hold the id yet (once per batch: a
        second, different revision of the same id in the batch would start
        a conflict), or when keyvault already has that very revision (a
        retried push, which writes nothing). Anything else would add a
        branch to an envelope that may be another worker's, whose winning
        revision an attacker could choose, so no advocate could open the
        record any more; on a deleted envelope it would undo a shredding
        (sealing leaves a deleted ``rk:`` document for every shredded key,
        even one whose envelope had not arrived yet).
        """
        doc_id, rev = doc['_id'], doc.get('_rev')
        if doc_id in stored.envelopes:
            if rev in stored.envelopes[doc_id]:
                return None
            return _ENVELOPE_DELETED if doc_id in stored.deleted_envelopes else _ENVELOPE_EXISTS
        first = self.envelope_revs.setdefault(doc_id, rev)
        return None if first == rev else _ENVELOPE_EXISTS


class Gateway:
    """Replication endpoints of one deployment.

    Args:
        couch: CouchDB client.
        databases: Physical names by logical name (records, config, keyvault,
            quarantine).
        rules: Validators for pushed documents.
        server_uuid: Stable uuid answered at ``GET /sync/``.
        max_doc_bytes: Largest accepted pushed document.
        max_bulk_docs: Most documents one ``_bulk_docs`` or ``_bulk_get`` may name.
        longpoll_max_seconds: Longest a long-poll is held open.
        audit: ``record(kind, actor=, subject=, details=)`` callable.
        clock: Injected time source.
        monotonic: Injected monotonic clock (long-poll deadlines).
    """

    def __init__(
        self,
        couch: CouchDBClient,
        databases: dict[str, str],
        rules: RecordRules,
        *,
        server_uuid: str,
        max_doc_bytes: int,
        longpoll_max_seconds: int,
        audit: Callable[..., Any],
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        max_bulk_docs: int = 1000,
    ) -> None:
        self._couch = couch
        self._dbs = databases
        self._rules = rules
        self.server_uuid = server_uuid
        self._max_doc_bytes = max_doc_bytes
        self._max_bulk_docs = max_bulk_docs
        self._longpoll_max = longpoll_max_seconds
        self._audit = audit
        self._clock = clock
        self._monotonic = monotonic
        # One shared change feed per database wakes the waiting long-polls.
        self._listeners: dict[str, ChangeListener] = {}
        self._listeners_lock = threading.Lock()
        self._checkpoints = _Checkpoints()

    @staticmethod
    def derive_server_uuid(org: str) -> str:
        """Return a uuid that is the same on every instance of one org."""
        return uuid.uuid5(uuid.NAMESPACE_URL, f'fieldvault:{org}').hex

    def physical(self, db: str) -> str:
        """Return the physical name of a replicated logical database.

        Raises:
            UnknownDatabase: ``db`` is not replicated to devices.
        """
        if db not in SYNC_DATABASES:
            raise UnknownDatabase(db)
        return self._dbs[db]

    # -- peer information -------------------------------------------------

    def server_info(self) -> dict[str, Any]:
        """Return the welcome document of ``GET /sync/``."""
        return {'couchdb': 'Welcome', 'version': '3.3.3', 'vendor': {'name': 'fieldvault'},
                'uuid': self.server_uuid}

    def db_info(self, db: str) -> dict[str, Any]:
        """Return ``GET /{db}``: name, upstream update_seq, instance_start_time."""
        info = self._couch.db_info(self.physical(db))
        # NOTE: no doc_count: it would tell a device how much other workers hold.
        return {'db_name': db, 'update_seq': info.get('update_seq', 0),
                'instance_start_time': '0'}

    # -- checkpoints --------------------------------------------------------

    @staticmethod
    def _local_id(device: DeviceIdentity, db: str, local_id: str) -> str:
        # Namespacing by device means one device can neither read nor
        # overwrite another's checkpoints, whatever replication id it sends.
        digest = hashlib.sha256(f'{db}\0{local_id}'.encode()).hexdigest()[:40]
        return f'_local/fv.{device.device_id}.{digest}'

    def read_checkpoint(self, device: DeviceIdentity, db: str, local_id: str) -> dict[str, Any]:
        """Return a device's ``_local`` document.

        Raises:
            DocumentNotFound: No such checkpoint.
        """
        physical = self.physical(db)
        if not _local_addressable(local_id):
            raise DocumentNotFound(404, 'not_found', 'GET _local')
        key = (physical, self._local_id(device, db, local_id))
        doc = self._checkpoints.get(key)
        if doc is None:
            doc = self._couch.get(*key)
            self._checkpoints.keep(key, doc, replace=False)
        doc['_id'] = f'_local/{local_id}'
        return doc

    def write_checkpoint(
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
        key = (self.physical(db), stored['_id'])
        try:
            rev = self._couch.put(key[0], stored)
        except Exception:
            # A conflict means the kept copy is stale (another instance
            # wrote); any other failure leaves the upstream state unknown.
            self._checkpoints.forget(key)
            raise
        self._checkpoints.keep(key, dict(stored, _rev=rev))
        return {'ok': True, 'id': f'_local/{local_id}', 'rev': rev}

    # -- pull ---------------------------------------------------------------

    def _visible(self, device: DeviceIdentity, db: str, doc_id: str,
                 doc: dict[str, Any] | None) -> bool:
        if db == 'config':
            return filtering.visible_config_id(doc_id, device.device_id)
        if doc is not None and doc.get('_deleted') and 'owner' not in doc:
            # NOTE: an unattributed tombstone carries no data, only an opaque
            # id; refusing it would abort the device's batch (see docs/SYNC.md).
            return not doc_id.startswith((filtering.ENVELOPE_PREFIX, '_design/'))
        return filtering.visible_record(doc, device.worker)

    def _scan(
        self, device: DeviceIdentity, db: str, since: Any, limit: int, style_all_docs: bool
    ) -> tuple[list[dict[str, Any]], Any, bool]:
        """Read upstream changes from ``since`` until ``limit`` visible rows.

        Returns:
            (visible rows, upstream position scanned, whether the feed ended).
        """
        physical = self.physical(db)
        results: list[dict[str, Any]] = []
        position = since
        while True:
            page = self._couch.changes(physical, since=position, limit=_SCAN_PAGE,
                                       include_docs=db == 'records',
                                       style_all_docs=style_all_docs)
            rows = page.get('results', [])
            position, full = self._filter_rows(device, db, rows, results, limit, position)
            if full:
                return results, position, False
            if len(rows) < _SCAN_PAGE:
                return results, page.get('last_seq', position), True

    def _filter_rows(self, device: DeviceIdentity, db: str, rows: list[dict[str, Any]],
                     results: list[dict[str, Any]], limit: int,
                     position: Any) -> tuple[Any, bool]:
        """Append the visible ``rows`` to ``results``; stop at ``limit``."""
        for row in rows:
            position = row['seq']
            if self._visible(device, db, row['id'], row.get('doc')):
                change = {'seq': row['seq'], 'id': row['id'], 'changes': row['changes']}
                if row.get('deleted'):
                    change['deleted'] = True
                results.append(change)
                if len(results) >= limit:
                    return position, True
        return position, False

    def changes(
        self,
        device: DeviceIdentity,
        db: str,
        *,
        since: str | None,
        limit: int | None,
        feed: str,
        timeout_ms: int | None,
        style_all_docs: bool = True,
    ) -> dict[str, Any]:
        """Return the device's filtered ``_changes`` (normal or longpoll).

        Every row keeps its upstream ``seq``; ``last_seq`` is the upstream
        position scanned, so the device checkpoints past invisible changes.
        A long-poll is answered as soon as a visible change arrives, and
        empty at ``longpoll_max_seconds`` at the latest.
        """
        if feed not in ('normal', 'longpoll'):
            raise BadRequest('feed')
        if feed == 'normal':
            return self._first_scan(device, db, since, limit, style_all_docs)
        first, waiter = self._scan_registered(device, db, since, limit, style_all_docs)
        if waiter is None:
            return first
        answer = next(self._wait(device, db, waiter, limit, timeout_ms, None,
                                 style_all_docs, stop_on_error=False))
        # Without a heartbeat the wait yields its answer only, never None.
        assert answer is not None
        return answer

    def _scan_registered(self, device: DeviceIdentity, db: str, since: str | None,
                         limit: int | None, style_all_docs: bool,
                         ) -> tuple[dict[str, Any], Waiter | None]:
        """Register a waiter for the device's changes, then scan from ``since``.

        Registered first, so a change landing during or after the scan wakes
        the waiter, and the wait needs no second read before it sleeps.

        Returns:
            The scan's answer, and the waiter at its position when the scan
            found nothing (None, unregistered, when it found rows).
        """
        listener = self._listener(db)
        waiter = listener.register(None, lambda row: self._visible(
            device, db, row.get('id', ''), row.get('doc')))
        try:
            first = self._first_scan(device, db, since, limit, style_all_docs)
        except BaseException:
            listener.unregister(waiter)
            raise
        if first['results']:
            listener.unregister(waiter)
            return first, None
        listener.moved(waiter, first['last_seq'])
        return first, waiter

    def _first_scan(self, device: DeviceIdentity, db: str, since: str | None,
                    limit: int | None, style_all_docs: bool) -> dict[str, Any]:
        """Return the visible changes already there, from ``since`` (``now`` too)."""
        since = self._check_since(since)
        if since == 'now':
            since = self._couch.db_info(self.physical(db)).get('update_seq', 0)
        results, position, _ended = self._scan(device, db, since, _clamp_limit(limit),
                                               style_all_docs)
        return {'results': results, 'last_seq': position}

    def changes_stream(
        self,
        device: DeviceIdentity,
        db: str,
        *,
        since: str | None,
        limit: int | None,
        timeout_ms: int | None,
        heartbeat_ms: int,
        style_all_docs: bool = True,
    ) -> dict[str, Any] | Iterator[bytes]:
        """Return a ``feed=longpoll&heartbeat=`` answer, streamed when it waits.

        Rows already there are answered at once as a plain dict (errors still
        map to statuses). Otherwise the answer is an iterator of bytes for an
        unbuffered response body: a ``\\n`` every ``heartbeat_ms`` while
        waiting, then the JSON ``{"results","last_seq"}`` (leading newlines
        are JSON whitespace), at ``longpoll_max_seconds`` at the latest, so
        the server closes the poll before gunicorn's timeout.
        """
        first, waiter = self._scan_registered(device, db, since, limit, style_all_docs)
        if waiter is None:
            return first
        beat = min(max(heartbeat_ms, 100) / 1000, float(self._longpoll_max))
        # The generator owns the waiter: it unregisters it when it ends, and a
        # generator dropped before it started frees it (the listener holds
        # waiters weakly).
        waiting = self._wait(device, db, waiter, limit, timeout_ms, beat,
                             style_all_docs, stop_on_error=True)
        return (b'\n' if answer is None else json.dumps(answer, separators=(',', ':')).encode()
                for answer in waiting)

    def _wait(self, device: DeviceIdentity, db: str, waiter: Waiter, limit: int | None,
              timeout_ms: int | None, beat: float | None, style_all_docs: bool, *,
              stop_on_error: bool) -> Iterator[dict[str, Any] | None]:
        """Wait for the device's next visible change, up to a wall-clock deadline.

        The one loop of both long-poll forms. The deadline is the gateway's
        own (``longpoll_max_seconds``, or the device's smaller ``timeout``),
        checked on the monotonic clock between upstream polls of at most
        ``_UPSTREAM_SLICE`` seconds, each itself cut off on the wall clock
        (``CouchDBClient.changes``): an upstream that keeps the connection
        alive with newlines (pouchdb-server) cannot stretch the wait.

        Yields:
            None whenever a heartbeat is due (only when ``beat`` is given),
            then the answer ``{"results", "last_seq"}`` last, at the
            deadline at the latest (empty results then).
        """
        limit = _clamp_limit(limit)
        wait = float(self._longpoll_max)
        if timeout_ms is not None:
            wait = min(timeout_ms / 1000, wait)
        physical = self.physical(db)
        results: list[dict[str, Any]] = []
        deadline = self._monotonic() + wait
        next_beat = self._monotonic() + beat if beat else deadline
        listener = self._listener(db)
        # The waiter was registered before the scan that found nothing, so
        # any change since then has woken it: no read is due before waiting.
        read = False
        try:
            while (remaining := deadline - self._monotonic()) > 0.05:
                slice_s = max(min(remaining, next_beat - self._monotonic(), _UPSTREAM_SLICE),
                              0.05)
                if read or not listener.live:
                    try:
                        if listener.live:
                            page = self._couch.changes(
                                physical, since=waiter.position, limit=_SCAN_PAGE,
                                include_docs=db == 'records', style_all_docs=style_all_docs)
                        else:
                            page = self._couch.changes(
                                physical, since=waiter.position, limit=_SCAN_PAGE,
                                include_docs=db == 'records', style_all_docs=style_all_docs,
                                feed='longpoll', timeout_ms=int(slice_s * 1000))
                    except DatabaseUnavailable:
                        if not stop_on_error:
                            raise
                        # Headers are sent: end with what we have; the device
                        # polls again and then gets the 503.
                        break
                    rows = page.get('results', [])
                    moved, full = self._filter_rows(device, db, rows, results, limit,
                                                    waiter.position)
                    if not full:
                        moved = page.get('last_seq', moved)
                    listener.moved(waiter, moved)
                    if results:
                        break
                    # A full page may have more behind it: read on at once.
                    read = len(rows) >= _SCAN_PAGE
                else:
                    read = waiter.wait(slice_s)
                if beat and self._monotonic() >= next_beat - 0.01:
                    next_beat = self._monotonic() + beat
                    yield None
        finally:
            listener.unregister(waiter)
        position = waiter.position
        yield {'results': results, 'last_seq': position}

    def _listener(self, db: str) -> ChangeListener:
        """Return the shared change feed of a replicated database (made on first use)."""
        with self._listeners_lock:
            listener = self._listeners.get(db)
            if listener is None:
                listener = self._listeners[db] = ChangeListener(
                    self._couch, self.physical(db), include_docs=db == 'records',
                    poll_seconds=_UPSTREAM_SLICE)
            return listener

    @staticmethod
    def _check_since(since: str | None) -> Any:
        if since in (None, ''):
            return 0
        if not _SINCE.fullmatch(since):
            raise BadRequest('since')
        return int(since) if since.isdigit() else since

    def bulk_get(
        self, device: DeviceIdentity, db: str, requests: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Return ``_bulk_get`` results, 1:1 and in request order.

        A document the device may not see, and an id no device may name
        (``_addressable``), is answered exactly as upstream answers a
        missing id (asked under a decoy id), so ids cannot be probed. An
        empty request is answered here: pouchdb-server never answers it.
        """
        if isinstance(requests, list) and len(requests) > self._max_bulk_docs:
            raise TooManyDocuments('docs')
        if not isinstance(requests, list) or not all(
                isinstance(item, dict) and isinstance(item.get('id'), str)
                and isinstance(item.get('rev', ''), str) for item in requests):
            raise BadRequest('docs')
        self.physical(db)
        if not requests:
            return {'results': []}
        clean: list[dict[str, Any]] = [
            {key: item[key] for key in ('id', 'rev') if key in item} for item in requests]
        asked = [item if _addressable(item['id']) else dict(item, id=_decoy_id())
                 for item in clean]
        results = self._bulk_get_entries(db, asked)
        hidden = [index for index, entry in enumerate(results)
                  if asked[index] is clean[index] and any(
                      item.get('ok') is not None
                      and not self._visible(device, db, clean[index]['id'], item['ok'])
                      for item in entry.get('docs', []))]
        if hidden:
            decoys = [dict(clean[index], id=_decoy_id()) for index in hidden]
            for index, decoy, entry in zip(hidden, decoys, self._bulk_get_entries(db, decoys)):
                asked[index], results[index] = decoy, entry
        answer = []
        for request, sent, entry in zip(clean, asked, results):
            docs = entry.get('docs', [])
            if sent is not request:  # asked under a decoy: name the requested id
                docs = _rename(docs, sent['id'], request['id'])
            answer.append({'id': request['id'], 'docs': docs})
        return {'results': answer}

    def _bulk_get_entries(self, db: str, asked: list[dict[str, Any]]) -> list[dict[str, Any]]:
        upstream = self._couch.bulk_get(self.physical(db), asked, revs=True).get('results', [])
        return [upstream[index] if index < len(upstream) else {'docs': []}
                for index in range(len(asked))]

    def all_docs_by_keys(
        self, device: DeviceIdentity, db: str, keys: list[Any], *, include_docs: bool
    ) -> dict[str, Any]:
        """Return ``POST /{db}/_all_docs`` by ``keys``, rows 1:1 in key order.

        PouchDB 7 replicators (the one inside pouchdb-server among them)
        fetch first-generation revisions this way before ``_bulk_get``. A
        document the device may not see, an envelope, a tombstone or a
        missing id is answered ``{"key", "error": "not_found"}``, exactly
        like a missing one, so ids cannot be probed.
        """
        if not isinstance(keys, list) or len(keys) > _MAX_LIMIT or not all(
                isinstance(key, str) for key in keys):
            raise BadRequest('keys')
        physical = self.physical(db)
        wanted = [key for key in keys if _addressable(key)]
        found: dict[str, dict[str, Any]] = {}
        if wanted:
            upstream = self._couch.request(
                'POST', f'/{_q(physical)}/_all_docs',
                params={'include_docs': 'true', 'conflicts': 'true'},
                json_body={'keys': wanted}).json()
            for row in upstream.get('rows', []):
                doc = row.get('doc')
                if doc and not doc.get('_deleted') and self._visible(device, db, row['key'], doc):
                    found[row['key']] = row
        rows = []
        for key in keys:
            row = found.get(key)
            if row is None:
                rows.append({'key': key, 'error': 'not_found'})
                continue
            answer = {'id': row['id'], 'key': key, 'value': row.get('value', {})}
            if include_docs:
                answer['doc'] = row['doc']
            rows.append(answer)
        return {'total_rows': len(rows), 'offset': 0, 'rows': rows}

    def open_revs(
        self, device: DeviceIdentity, db: str, doc_id: str, open_revs: str | None
    ) -> Any:
        """Return ``GET /{db}/{id}`` (with ``open_revs`` as a JSON array).

        A document the device may not see, and an id no device may name, is
        answered exactly as a missing id: 404 without ``open_revs``, and
        with it what upstream answers a decoy id (404 for ``all``, a
        ``{"missing": rev}`` per asked revision otherwise).

        Raises:
            DocumentNotFound: The document does not exist or is not visible.
        """
        physical = self.physical(db)
        revs: Any = None
        if open_revs is not None:
            try:
                revs = 'all' if open_revs == 'all' else json.loads(open_revs)
            except ValueError:
                raise BadRequest('open_revs') from None
            if revs != 'all' and not (isinstance(revs, list)
                                      and all(isinstance(r, str) for r in revs)):
                raise BadRequest('open_revs')
        if not _addressable(doc_id):
            return self._missing_open_revs(physical, revs)
        if revs is None:
            doc = self._couch.get(physical, doc_id, revs='true')
            if not self._visible(device, db, doc_id, doc):
                raise DocumentNotFound(404, 'not_found', 'GET doc')
            return doc
        answer = self._couch.open_revs(physical, doc_id, revs)
        if any(item.get('ok') is not None
               and not self._visible(device, db, doc_id, item['ok']) for item in answer):
            return self._missing_open_revs(physical, revs)
        return answer

    def _missing_open_revs(self, physical: str, revs: Any) -> Any:
        """Return (or raise) what upstream answers for a missing id."""
        if revs is None:
            raise DocumentNotFound(404, 'not_found', 'GET doc')
        return self._couch.open_revs(physical, _decoy_id(), revs)

    # -- push ---------------------------------------------------------------

    def revs_diff(self, device: DeviceIdentity, db: str,
                  revs: dict[str, Any]) -> dict[str, Any]:
        """Return which revisions the gateway lacks; envelopes via keyvault.

        A document the device may not see, and an id no device may name, is
        answered exactly as a missing id (upstream's answer for a decoy id),
        so ids and their revisions cannot be probed: a device that then
        pushes such a document meets the push rules.
        """
        if not isinstance(revs, dict) or not all(
                isinstance(value, list) and all(isinstance(rev, str) for rev in value)
                for value in revs.values()):
            raise BadRequest('body')
        physical = self.physical(db)
        envelopes = {key: value for key, value in revs.items()
                     if key.startswith(filtering.ENVELOPE_PREFIX)}
        decoys = {key: _decoy_id() for key in revs
                  if key not in envelopes and not _addressable(key)}
        others = {decoys.get(key, key): value for key, value in revs.items()
                  if key not in envelopes}
        answer: dict[str, Any] = {}
        if others:
            answer.update(self._couch.revs_diff(physical, others))
        if envelopes:
            if db == 'records':
                answer.update(self._couch.revs_diff(self._dbs['keyvault'], envelopes))
            else:
                answer.update(self._couch.revs_diff(physical, envelopes))
        stored = [key for key in revs if key not in envelopes and key not in decoys
                  and set(answer.get(key, {}).get('missing', ())) != set(revs[key])]
        hidden = self._hidden_ids(device, db, physical, stored)
        if hidden:
            more = {key: _decoy_id() for key in hidden}
            for key in hidden:
                answer.pop(key, None)
            decoys.update(more)
            answer.update(self._couch.revs_diff(physical, {more[key]: revs[key]
                                                           for key in hidden}))
        for key, decoy in decoys.items():
            if decoy in answer:
                answer[key] = answer.pop(decoy)
        return answer

    def _hidden_ids(self, device: DeviceIdentity, db: str, physical: str,
                    ids: list[str]) -> list[str]:
        """Return those of ``ids`` (stored upstream) the device may not see."""
        if not ids:
            return []
        if db == 'config':
            return [doc_id for doc_id in ids if not self._visible(device, db, doc_id, None)]
        entries = self._bulk_get_entries(db, [{'id': doc_id} for doc_id in ids])
        hidden = []
        for doc_id, entry in zip(ids, entries):
            docs = [item['ok'] for item in entry.get('docs', []) if item.get('ok') is not None]
            if not docs or not all(self._visible(device, db, doc_id, doc) for doc in docs):
                hidden.append(doc_id)
        return hidden

    def bulk_docs(
        self, device: DeviceIdentity, db: str, docs: list[Any], *, new_edits: bool
    ) -> list[dict[str, Any]]:
        """Validate and store pushed documents; return per-document results.

        Refused documents get ``{"id","rev","error":"forbidden","reason"}``
        in request order while the rest land, and a redacted copy goes to
        quarantine with who, when and why.

        One lookup of what is already stored (the owners of pushed records,
        the pushed envelopes keyvault already has) runs while the first
        chunk is validated; a batch of ``_SPLIT_AT_RECORDS`` records or more
        is checked and written in two halves, the first half's write running
        while the second half is validated. A failed write fails the request
        after the chunk before it landed; with ``new_edits=false`` the
        device's retry rewrites it harmlessly.

        Raises:
            TooManyDocuments: More than ``max_bulk_docs`` documents.
        """
        if not isinstance(docs, list):
            raise BadRequest('docs')
        if len(docs) > self._max_bulk_docs:
            raise TooManyDocuments('docs')
        physical = self.physical(db)
        batch = _Batch(new_edits=new_edits)
        if db == 'config':
            refusal = filtering.Refusal('read_only', 'The config database is read-only for devices.')
            for index, doc in enumerate(docs):
                batch.refuse(index, doc, refusal)
        else:
            batch.stored = _UPSTREAM.submit(self._stored_state, physical, docs)
            pending = None
            records = sum(1 for doc in docs if _envelope_id(doc) is None)
            chunk = -(-len(docs) // 2) if records >= _SPLIT_AT_RECORDS else max(len(docs), 1)
            try:
                for start in range(0, len(docs), chunk):
                    to_store = self._check_chunk(device, docs, start, chunk, batch)
                    if pending is not None:
                        pending.result()
                        pending = None
                    if to_store['records'] or to_store['keyvault']:
                        pending = _UPSTREAM.submit(self._store_chunk, physical, to_store,
                                                   batch.answers, new_edits)
                if pending is not None:
                    pending.result()
                    pending = None
            finally:
                if pending is not None:
                    pending.cancel()
        if batch.refused:
            self._quarantine(device, db, batch.refused)
        self._audit_accepted(device, db, docs, batch)
        return [batch.answers[index] for index in sorted(batch.answers)]

    def _audit_accepted(self, device: DeviceIdentity, db: str, docs: list[Any],
                        batch: _Batch) -> None:
        """One ``push_accepted`` event per batch that stored anything: counts only."""
        failed = {index for index, answer in batch.answers.items() if answer.get('error')}
        accepted = [doc for index, doc in enumerate(docs) if index not in failed]
        if not accepted:
            return
        envelopes = sum(1 for doc in accepted if _envelope_id(doc) is not None)
        deleted = sum(1 for doc in accepted
                      if _envelope_id(doc) is None and isinstance(doc, dict)
                      and doc.get('_deleted') is True)
        self._audit('push_accepted', actor=f'device:{device.device_id}', subject=None,
                    details={'db': db, 'worker': device.worker,
                             'records': len(accepted) - envelopes - deleted,
                             'envelopes': envelopes, 'deletions': deleted,
                             'refused': len(batch.refused)})

    def _check_chunk(self, device: DeviceIdentity, docs: list[Any], start: int, chunk: int,
                     batch: _Batch) -> dict[str, list[tuple[int, dict[str, Any]]]]:
        """Decide every document of ``docs[start:start + chunk]``.

        Revision metadata and attachments are checked first, for every
        document (``filtering.check_metadata``). Documents are then checked
        on their own (records as if new), then,
        once the batch's lookup of stored state is back, against it: a record
        whose stored owner is another worker gets the owner refusal (it
        precedes the schema rules), and an envelope whose id keyvault already
        holds under another revision is refused. Refusals go to ``batch``;
        the rest is returned by target database.
        """
        to_store: dict[str, list[tuple[int, dict[str, Any]]]] = {'records': [], 'keyvault': []}
        verdicts: list[tuple[int, str, Any, filtering.Refusal | None]] = []
        for index in range(start, min(start + chunk, len(docs))):
            doc = docs[index]
            refusal = filtering.check_metadata(doc, new_edits=batch.new_edits)
            if refusal is not None:
                verdicts.append((index, 'refused', doc, refusal))
                continue
            if _envelope_id(doc) is not None:
                verdicts.append((index, 'keyvault', doc, self._check_envelope(doc, batch)))
                continue
            verdicts.append((index, 'records', doc, self._check_record(device, doc, None)))
        stored = batch.stored.result()
        for index, target, doc, refusal in verdicts:
            if target == 'records':
                doc_id = doc.get('_id') if isinstance(doc, dict) else None
                stored_owner = stored.owners.get(doc_id) if isinstance(doc_id, str) else None
                if stored_owner is not None and stored_owner != device.worker:
                    refusal = self._check_record(device, doc, stored_owner)
                if refusal is None:
                    refusal = self._check_capture(device, doc, stored, docs)
                if refusal is None and doc.get('_deleted'):
                    # A tombstone keeps its metadata only, stamped with the
                    # owner so it stays attributable (and pullable).
                    # new_edits=false keeps the revision id as sent.
                    doc = filtering.tombstone(doc, device.worker)
            elif target == 'keyvault' and refusal is None:
                refusal = batch.check_envelope_revision(doc, stored)
            if refusal is None:
                refusal = self._check_sealed(doc, docs, batch)
            if refusal is None:
                to_store[target].append((index, doc))
            else:
                batch.refuse(index, doc, refusal)
        return to_store

    def _check_record(self, device: DeviceIdentity, doc: Any,
                      stored_owner: str | None) -> filtering.Refusal | None:
        refusal = filtering.check_pushed_record(
            doc, worker=device.worker, record_types=self._rules.record_types,
            max_doc_bytes=self._max_doc_bytes, validate=self._rules.validate_document,
            current_owner=stored_owner, schema_errors=self._rules.schema_errors,
            unknown_schema_errors=self._rules.unknown_schema_errors)
        return refusal

    def _check_capture(self, device: DeviceIdentity, doc: dict[str, Any],
                       stored: _Stored, docs: list[Any]) -> filtering.Refusal | None:
        """Refuse what this device's worker may not capture, given the stored revision."""
        if self._rules.check_capture is None or doc.get('_deleted'):
            return None
        problem = self._rules.check_capture(doc, device.worker, stored.records.get(doc['_id']))
        if problem is None and self._rules.check_guards is not None:
            problem = self._rules.check_guards(doc, stored.records.get(doc['_id']), docs)
        return None if problem is None else filtering.Refusal(*problem)

    def _check_sealed(self, doc: Any, docs: list[Any], batch: _Batch) -> filtering.Refusal | None:
        """Refuse a record or envelope of a sealed youth (``sync.sealed``).

        The registry is read once per batch (a cache hit while the
        directory's change feed reports no change); records of sealed youths
        refused in this batch are registered, so their envelopes are refused
        in a later batch too.
        """
        registry = self._rules.sealed_registry
        if registry is None:
            return None
        if batch.late is None:
            batch.late = sealed.LateArrivals(registry.snapshot(), docs)
            if batch.late.new_records:
                registry.add(record_ids=batch.late.new_records)
        return batch.late.refusal(doc)

    def _store_chunk(self, physical: str, to_store: dict[str, list[tuple[int, dict[str, Any]]]],
                     answers: dict[int, dict[str, Any]], new_edits: bool) -> None:
        """Write one chunk's accepted documents (records, then envelopes)."""
        for target, items in to_store.items():
            if not items:
                continue
            target_db = physical if target == 'records' else self._dbs['keyvault']
            stored = self._couch.bulk_docs(target_db, [doc for _i, doc in items],
                                           new_edits=new_edits)
            self._merge_upstream(items, stored, answers, new_edits)

    @staticmethod
    def _merge_upstream(items: list[tuple[int, dict[str, Any]]], stored: list[dict[str, Any]],
                        answers: dict[int, dict[str, Any]], new_edits: bool) -> None:
        if new_edits:
            for (index, _doc), result in zip(items, stored):
                answers[index] = result
            return
        # With new_edits=false CouchDB answers errors only (pouchdb-server
        # may list successes too): keep the errors, by id.
        by_id = {result.get('id'): result for result in stored if result.get('error')}
        for index, doc in items:
            if doc.get('_id') in by_id:
                answers[index] = by_id[doc['_id']]

    def _stored_state(self, physical: str, docs: list[Any]) -> _Stored:
        """Look up what a push batch must be checked against (I/O only).

        Owners (and the documents): the winning revision of each pushed
        record id that is stored and live. Envelopes: for each pushed ``rk:`` id keyvault already holds
        (live or deleted), which of the pushed revisions it already has.
        """
        record_ids: set[str] = set()
        envelope_revs: dict[str, set[str]] = {}
        for doc in docs:
            envelope = _envelope_id(doc)
            if envelope is not None:
                revs = envelope_revs.setdefault(envelope, set())
                if isinstance(doc.get('_rev'), str):
                    revs.add(doc['_rev'])
            elif (isinstance(doc, dict) and isinstance(doc.get('_id'), str)
                  and not doc['_id'].startswith('_')):
                record_ids.add(doc['_id'])
        current = self._couch.current_docs(physical, sorted(record_ids))
        owners = {doc_id: doc.get('owner') or '' for doc_id, doc in current.items()}
        return _Stored(owners, *self._stored_envelope_revs(envelope_revs), records=current)

    def _stored_envelope_revs(
        self, pushed: dict[str, set[Any]],
    ) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
        """Look up pushed envelope ids in keyvault.

        ``_all_docs`` by key answers deleted documents too, so a shredded
        envelope counts as stored; ``_revs_diff`` then says which pushed
        revisions are already in its history (a retried or already rewrapped
        push writes nothing new and is accepted).

        Returns:
            ``({id: pushed revisions already stored}, ids whose winning
            revision is deleted)``, both over the ids keyvault holds.
        """
        if not pushed:
            return {}, frozenset()
        keyvault = self._dbs['keyvault']
        rows = [row for row in self._couch.all_docs(keyvault, keys=sorted(pushed))
                if isinstance(row.get('value'), dict)]
        if not rows:
            return {}, frozenset()
        asked = {row['id']: sorted(rev for rev in pushed[row['id']] if isinstance(rev, str))
                 for row in rows}
        winning = {row['id']: row['value'].get('rev') for row in rows}
        # A retried push names the winning revision itself: known without
        # asking; only other revisions need the history (``_revs_diff``).
        to_ask = {doc_id: [rev for rev in revs if rev != winning[doc_id]]
                  for doc_id, revs in asked.items()}
        to_ask = {doc_id: revs for doc_id, revs in to_ask.items() if revs}
        missing = self._couch.revs_diff(keyvault, to_ask) if to_ask else {}
        known = {doc_id: frozenset(rev for rev in revs
                                   if rev not in missing.get(doc_id, {}).get('missing', ()))
                 for doc_id, revs in asked.items()}
        return known, frozenset(row['id'] for row in rows if row['value'].get('deleted'))

    def _check_envelope(self, doc: dict[str, Any], batch: _Batch) -> filtering.Refusal | None:
        if filtering.doc_size(doc) > self._max_doc_bytes:
            return filtering.Refusal('max_doc_bytes',
                                     f'The envelope is larger than {self._max_doc_bytes} bytes.')
        if doc.get('_deleted'):
            return filtering.Refusal('envelope', 'Devices may not delete envelopes.')
        try:
            self._rules.validate_envelope(filtering.strip_meta(doc))
        except self._rules.envelope_errors:
            return filtering.Refusal('envelope', 'The record-key envelope is malformed.')
        if self._rules.manifest_body is not None:
            if not batch.manifest:
                batch.manifest.append(self._rules.manifest_body())
            reason = key_policy.check_new_envelope(doc, batch.manifest[0], self._clock())
            if reason is not None:
                return filtering.Refusal('key_version', str(reason))
        return None

    def _quarantine(self, device: DeviceIdentity, db: str,
                    refused: list[tuple[Any, filtering.Refusal]]) -> None:
        """Keep the refused documents of one batch, redacted, and audit them.

        One ``_bulk_docs`` into quarantine and one audit event for the whole
        batch, however many documents were refused (each request carries at
        most ``max_bulk_docs``), so a refused batch costs no more upstream
        writes than an accepted one. Only ids that passed the id rules are
        recorded (``filtering.safe_id``).
        """
        now = round(self._clock(), 3)
        batch = uuid.uuid4().hex
        entries = []
        for doc, refusal in refused:
            kept, redacted = filtering.redact_for_quarantine(
                doc, record_types=self._rules.record_types, worker=device.worker,
                device_id=device.device_id,
                # The sealed record key of a shredded record, or of a sealed
                # youth's, must not survive anywhere, quarantine included.
                key_material=refusal.rule not in (_ENVELOPE_DELETED.rule,
                                                  sealed.YOUTH_SEALED.rule))
            entries.append({
                '_id': f'q:{uuid.uuid4().hex}', 'type': 'quarantine', 'device': device.device_id,
                'worker': device.worker, 'db': db, 'at': now, 'batch': batch,
                'rule': refusal.rule, 'reason': refusal.reason, 'fields': refusal.fields,
                'doc_id': filtering.safe_id(doc.get('_id') if isinstance(doc, dict) else None,
                                            self._rules.record_types),
                'doc': kept, 'redacted': redacted,
            })
        self._couch.bulk_docs(self._dbs['quarantine'], entries)
        rules = collections.Counter(entry['rule'] for entry in entries)
        self._audit('push_refused', actor=f'device:{device.device_id}',
                    subject=entries[0]['doc_id'] if len(entries) == 1 else None,
                    details={'db': db, 'count': len(entries), 'batch': batch,
                             'rules': dict(sorted(rules.items())),
                             'doc_ids': [entry['doc_id'] for entry in entries]})

    @staticmethod
    def doc_path(db: str, doc_id: str) -> str:
        """Return the escaped upstream path of a document (for callers)."""
        return doc_path(db, doc_id)

