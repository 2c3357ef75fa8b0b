"""Documents kept in memory for as long as a ``_changes`` feed says they are unchanged.

Every replication request authenticates its device, and every push batch of
envelopes checks the key manifest. Reading those documents from CouchDB on
every request costs one upstream round trip each (on single-threaded
pouchdb-server, ~4 ms that the device's own writes wait behind). A
:class:`DocWatch` reads a document once and keeps it while a background
long-poll of the database's ``_changes`` feed reports no change to it: this
is how CouchDB's own ``chttpd_auth_cache`` keeps ``_users`` documents, and
how Sync Gateway keeps principals (invalidated from its change feed).

Safety rules (a stale device document would let a revoked device in):

* The cache is trusted only while the feed is known to be live: it started
  from the database's current ``update_seq`` before anything was cached, and
  its last poll returned less than ``poll_seconds + grace`` ago. Otherwise
  every ``get`` reads from CouchDB, exactly as without the watch.
* A change of a watched id evicts it. A read that started before an eviction
  (or before a feed restart) is never stored afterwards: a generation counter
  taken at the start of the read must still match when it is stored.
* Any feed error empties the cache and distrusts it until the feed has
  restarted from a fresh ``update_seq``.
* Writes made through this process call :meth:`DocWatch.forget` at once; so
  a revocation through the API bites on the very next request of this
  instance, and on other instances within the feed's latency (the time for
  CouchDB to answer a waiting long-poll: milliseconds, the same window as a
  request already in flight when the revocation lands).
* Misses are never cached (unknown ids cannot fill memory), and the cache is
  bounded (least recently used entries go first).

The feed thread starts on first use in each process (after a gunicorn fork),
and stops when :meth:`close` is called, when the CouchDB client is closed,
or after ``idle_seconds`` without a ``get``.
"""

from __future__ import annotations

import collections
import copy
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from sync.couch import CouchDBClient

__all__ = ['DocWatch', 'ForgetOnWrite']

_log = logging.getLogger('fieldvault.sync.watch')

#: Changes read per poll; a fuller backlog is read by the next poll at once.
_PAGE = 1000


class DocWatch:
    """A bounded cache of one database's documents, invalidated by its ``_changes`` feed.

    Args:
        couch: CouchDB client (its pool lends the feed one connection).
        db: Physical database name.
        prefixes: Only ids starting with one of these are cached and evicted
            (other changes, such as sessions, do not disturb the cache).
        poll_seconds: Long-poll timeout; the feed is live while a poll
            returned within ``poll_seconds + grace_seconds``.
        grace_seconds: Slack on top of ``poll_seconds``.
        idle_seconds: The feed stops after this long without a ``get``.
        max_entries: Most documents kept.
        clock: Injected monotonic clock.
    """

    def __init__(
        self,
        couch: CouchDBClient,
        db: str,
        *,
        prefixes: tuple[str, ...],
        poll_seconds: float = 10.0,
        grace_seconds: float = 5.0,
        idle_seconds: float = 300.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._couch = couch
        self._db = db
        self._prefixes = prefixes
        self._poll_seconds = poll_seconds
        self._grace = grace_seconds
        self._idle = idle_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        self._generation = 0
        self._live_until = 0.0  # the feed is trusted while clock() < this
        self._last_used = clock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False

    # -- reading ------------------------------------------------------------

    def get(self, doc_id: str) -> dict[str, Any] | None:
        """Return a deep copy of the document, or None when it does not exist.

        Raises:
            DatabaseUnavailable: CouchDB cannot be read (cache not trusted).
        """
        watched = doc_id.startswith(self._prefixes)
        with self._lock:
            self._last_used = self._clock()
            if watched:
                self._ensure_feed()
            trusted = watched and self._trusted()
            if trusted and doc_id in self._cache:
                self._cache.move_to_end(doc_id)
                return copy.deepcopy(self._cache[doc_id])
            generation = self._generation
        doc = self._couch.get_or_none(self._db, doc_id)
        if doc is not None and trusted:
            with self._lock:
                # Stored only if no eviction or feed restart happened since the
                # read began, and the feed is still live: otherwise this copy
                # may predate a change the feed already reported.
                if self._generation == generation and self._trusted():
                    self._cache[doc_id] = copy.deepcopy(doc)
                    self._cache.move_to_end(doc_id)
                    while len(self._cache) > self._max_entries:
                        self._cache.popitem(last=False)
        return doc

    def forget(self, doc_id: str) -> None:
        """Drop one document now (call after writing it through this process)."""
        with self._lock:
            self._generation += 1
            self._cache.pop(doc_id, None)

    def close(self) -> None:
        """Stop the feed and empty the cache (reads go to CouchDB afterwards)."""
        with self._lock:
            self._closed = True
            self._reset()

    @property
    def trusted(self) -> bool:
        """Whether cached documents are served now (for tests and health)."""
        with self._lock:
            return self._trusted()

    # -- the feed -----------------------------------------------------------

    def _trusted(self) -> bool:
        return not self._closed and self._clock() < self._live_until

    def _reset(self) -> None:
        self._generation += 1
        self._cache.clear()
        self._live_until = 0.0

    def _ensure_feed(self) -> None:
        """Start the feed thread if this process has none (lock held)."""
        if self._pid != os.getpid():
            # Forked (gunicorn worker): the parent's thread and cache are not ours.
            self._pid = os.getpid()
            self._thread = None
            self._reset()
        if self._closed or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._follow, name=f'fv-watch-{self._db}',
                                        daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        since: Any = None
        failures = 0
        while True:
            with self._lock:
                if self._closed or self._clock() - self._last_used > self._idle:
                    self._reset()
                    self._thread = None
                    return
            try:
                if since is None:
                    # Start from "now": nothing is cached yet, and every
                    # change after this point will be seen.
                    since = self._couch.db_info(self._db).get('update_seq', 0)
                    self._mark_live()
                page = self._couch.changes(self._db, since=since, feed='longpoll',
                                           limit=_PAGE, style_all_docs=False,
                                           timeout_ms=int(self._poll_seconds * 1000))
                self._evict([row.get('id') for row in page.get('results', [])])
                since = page.get('last_seq', since)
            except Exception:  # noqa: BLE001 - any failure: distrust, then retry
                with self._lock:
                    self._reset()
                    if getattr(self._couch, 'closed', False):  # the app shut down
                        self._closed = True
                        self._thread = None
                        return
                since = None
                failures += 1
                _log.warning('change feed of %s failed; reading through', self._db,
                             extra={'event': 'watch_feed_failed'})
                time.sleep(min(0.2 * 2 ** min(failures, 5), 5.0))
                continue
            failures = 0
            self._mark_live()

    def _evict(self, doc_ids: list[Any]) -> None:
        with self._lock:
            for doc_id in doc_ids:
                if isinstance(doc_id, str) and doc_id.startswith(self._prefixes):
                    self._generation += 1
                    self._cache.pop(doc_id, None)

    def _mark_live(self) -> None:
        with self._lock:
            self._live_until = self._clock() + self._poll_seconds + self._grace


class ForgetOnWrite:
    """A CouchDB client that drops every document it writes from a :class:`DocWatch`.

    Hand it to code that writes watched documents (accounts: users and
    sessions), so that a change bites on this instance's very next request
    instead of after the feed's latency. Everything else is the wrapped
    client's.

    Args:
        couch: The CouchDB client.
        watch: The watch of the database written to.
        db: Physical name of the watched database.
    """

    def __init__(self, couch: CouchDBClient, watch: DocWatch, db: str) -> None:
        self._couch = couch
        self._watch = watch
        self._db = db

    def __getattr__(self, name: str) -> Any:
        return getattr(self._couch, name)

    def put(self, db: str, doc: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """Write a document, then forget it (also when the write failed)."""
        try:
            return self._couch.put(db, doc, *args, **kwargs)
        finally:
            if db == self._db:
                self._watch.forget(doc.get('_id', ''))

    def delete(self, db: str, doc_id: str, *args: Any, **kwargs: Any) -> Any:
        """Delete a document, then forget it (also when the delete failed)."""
        try:
            return self._couch.delete(db, doc_id, *args, **kwargs)
        finally:
            if db == self._db:
                self._watch.forget(doc_id)
