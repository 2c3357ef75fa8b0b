"""The pull half of replication: what a device reads through the gateway.

``_changes`` (normal and long-poll, one wait loop for both forms),
``_bulk_get``, ``_all_docs`` by keys, ``GET /{db}/{id}`` with ``open_revs``
and ``_revs_diff``. Every answer is filtered per device: a document the
device may not see, and an id no device may name, is answered exactly as a
missing id, so ids cannot be probed.

Pull cost: ``changes`` reads the upstream feed from the device's checkpoint
onwards (with ``include_docs`` to see owners), so it follows the changes since
the checkpoint, never the size of the database.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from sync import filtering
from sync.couch import CouchDBClient
from sync.devices import DeviceIdentity
from sync.errors import BadRequest, DatabaseUnavailable, DocumentNotFound, TooManyDocuments
from sync.listen import ChangeListener, Waiter

__all__ = ['Pull']

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

class Pull:
    """The read steps of replication for one deployment.

    Args:
        couch: CouchDB client.
        physical: Returns the physical name of a replicated logical database
            (raises ``UnknownDatabase`` for any other).
        keyvault: Physical name of the keyvault database (envelopes'
            revisions are asked there).
        max_bulk_docs: Most documents one ``_bulk_get`` may name.
        longpoll_max_seconds: Longest a long-poll is held open.
        monotonic: Injected monotonic clock (long-poll deadlines).
    """

    def __init__(
        self,
        couch: CouchDBClient,
        physical: Callable[[str], str],
        keyvault: str,
        *,
        max_bulk_docs: int,
        longpoll_max_seconds: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._couch = couch
        self._physical = physical
        self._keyvault = keyvault
        self._max_bulk_docs = max_bulk_docs
        self._longpoll_max = longpoll_max_seconds
        self._monotonic = monotonic
        # One shared change feed per database wakes the waiting long-polls.
        self._listeners: dict[str, ChangeListener] = {}
        self._listeners_lock = threading.Lock()

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
        physical = self._physical(db)
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
            since = self._couch.db_info(self._physical(db)).get('update_seq', 0)
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
        physical = self._physical(db)
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
                    self._couch, self._physical(db), include_docs=db == 'records',
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
        self._physical(db)
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
        upstream = self._couch.bulk_get(self._physical(db), asked, revs=True).get('results', [])
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
        physical = self._physical(db)
        wanted = [key for key in keys if _addressable(key)]
        found: dict[str, dict[str, Any]] = {}
        if wanted:
            for stored in self._couch.all_docs(physical, keys=wanted, include_docs=True,
                                               conflicts=True):
                doc = stored.get('doc')
                if doc and not doc.get('_deleted') and self._visible(device, db, stored['key'],
                                                                     doc):
                    found[stored['key']] = stored
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
        physical = self._physical(db)
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
        physical = self._physical(db)
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
                answer.update(self._couch.revs_diff(self._keyvault, envelopes))
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

