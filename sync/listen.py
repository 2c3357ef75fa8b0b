"""One shared ``_changes`` listener per database, waking only the waiters a change concerns.

Without it every waiting long-poll of every tablet holds its own upstream
long-poll, and every change to the database wakes all of them: each re-reads
the feed, finds another worker's row invisible, and polls again, so the
database answers N polls per change for N waiting tablets. With it, one
background long-poll per database and process reads each change once (with
its document, for the records database); each waiting request registers the
rows it may see (the gateway's own visibility rule) and is woken only by
those. A waiter whose position is where a batch of changes began (or one of
its rows), and to which none of its rows is visible, is moved past the batch
without a read,
so it answers the device a current ``last_seq``. This is how Sync Gateway's
channel cache serves many waiting clients from one feed.

Trust rules (a missed wake-up would delay a tablet, never lose a record):

* A waiter registers before it reads, so a change that lands between its
  read and its wait wakes it.
* The listener is used only while live: it started from the database's
  current ``update_seq`` and its last poll returned less than
  ``poll_seconds + grace`` ago. Otherwise waiters poll upstream themselves,
  exactly as without it.
* Any feed error wakes every waiter (they read upstream, then fall back).
* A visibility check that fails wakes its waiter.

The feed starts on first use in each process (after a gunicorn fork), and
stops after ``idle_seconds`` without waiters or when the client is closed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from sync.couch import CouchDBClient

__all__ = ['ChangeListener', 'Waiter']

_log = logging.getLogger('fieldvault.sync.listen')

#: Changes read per poll of the shared feed.
_PAGE = 500


def _hashable(value: Any) -> bool:
    """Return whether a sequence can be looked up in a set (not a list, say)."""
    try:
        hash(value)
    except TypeError:
        return False
    return True


class Waiter:
    """One waiting request: its position, the rows it may see, and its wake-up."""

    def __init__(self, position: Any, visible: Callable[[dict[str, Any]], bool]) -> None:
        self.position = position
        self._visible = visible
        self._event = threading.Event()

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a wake-up; return whether one came (and clear it)."""
        woke = self._event.wait(max(seconds, 0))
        self._event.clear()
        return woke

    def wake(self) -> None:
        """Wake the waiter."""
        self._event.set()

    def concerned(self, rows: list[dict[str, Any]]) -> bool:
        """Return whether any row may be visible to this waiter (True if unsure)."""
        try:
            return any(self._visible(row) for row in rows)
        except Exception:  # noqa: BLE001 - unsure: let the waiter read for itself
            return True


class ChangeListener:
    """The shared long-poll of one database's ``_changes`` feed.

    Args:
        couch: CouchDB client.
        db: Physical database name.
        include_docs: Read documents with the changes (the visibility rule
            needs them).
        poll_seconds: Upstream long-poll timeout.
        grace_seconds: Slack on top of ``poll_seconds`` for liveness.
        idle_seconds: The feed stops after this long without a waiter.
        clock: Injected monotonic clock.
    """

    def __init__(self, couch: CouchDBClient, db: str, *, include_docs: bool,
                 poll_seconds: float = 5.0, grace_seconds: float = 5.0,
                 idle_seconds: float = 120.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._couch = couch
        self._db = db
        self._include_docs = include_docs
        self._poll = poll_seconds
        self._grace = grace_seconds
        self._idle = idle_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # Weakly: a waiter whose request ended without unregistering it (a
        # streamed answer dropped before it started) goes with its request.
        self._waiters: weakref.WeakSet[Waiter] = weakref.WeakSet()
        self._live_until = 0.0
        self._last_used = clock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    @property
    def live(self) -> bool:
        """Whether the shared feed is trusted now."""
        with self._lock:
            return self._clock() < self._live_until

    def register(self, position: Any, visible: Callable[[dict[str, Any]], bool]) -> Waiter:
        """Return a registered waiter at ``position`` (start the feed if needed)."""
        waiter = Waiter(position, visible)
        with self._lock:
            self._last_used = self._clock()
            self._ensure_feed()
            self._waiters.add(waiter)
        return waiter

    def unregister(self, waiter: Waiter) -> None:
        """Forget a waiter (its request has its answer)."""
        with self._lock:
            self._waiters.discard(waiter)
            self._last_used = self._clock()

    def moved(self, waiter: Waiter, position: Any) -> None:
        """Record that the waiter read up to ``position`` itself."""
        with self._lock:
            waiter.position = position

    def _ensure_feed(self) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = None
            self._live_until = 0.0
            self._waiters = weakref.WeakSet()
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._follow, name=f'fv-listen-{self._db}',
                                        daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        since: Any = None
        failures = 0
        while True:
            with self._lock:
                if (not self._waiters and self._clock() - self._last_used > self._idle) or (
                        getattr(self._couch, 'closed', False)):
                    self._live_until = 0.0
                    self._thread = None
                    return
            try:
                if since is None:
                    since = self._couch.db_info(self._db).get('update_seq', 0)
                    self._mark_live()
                page = self._couch.changes(self._db, since=since, feed='longpoll', limit=_PAGE,
                                           include_docs=self._include_docs,
                                           style_all_docs=False,
                                           timeout_ms=int(self._poll * 1000))
                rows = page.get('results', [])
                last = page.get('last_seq', since)
                self._dispatch(since, rows, last)
                since = last
            except Exception:  # noqa: BLE001 - any failure: distrust, wake all, retry
                with self._lock:
                    self._live_until = 0.0
                    waiters = list(self._waiters)
                for waiter in waiters:
                    waiter.wake()
                since = None
                failures += 1
                _log.warning('shared change feed of %s failed; waiters poll upstream',
                             self._db, extra={'event': 'listen_feed_failed'})
                time.sleep(min(0.2 * 2 ** min(failures, 5), 5.0))
                continue
            failures = 0
            self._mark_live()

    def _dispatch(self, since: Any, rows: list[dict[str, Any]], last: Any) -> None:
        """Wake the waiters a batch concerns; move the others within it past it.

        A waiter not concerned by the batch is moved to its end when its
        position is where the batch began or one of the batch's own rows
        (its read ended inside the batch, while several changes landed at
        once): every change after that position is in the batch, and none is
        visible to it. Sequences are only compared for equality, so opaque
        ones (CouchDB 3's) work too.
        """
        with self._lock:
            waiters = list(self._waiters)
        within = {since}
        within.update(row['seq'] for row in rows if _hashable(row.get('seq')))
        for waiter in waiters:
            if rows and waiter.concerned(rows):
                waiter.wake()
                continue
            with self._lock:
                if _hashable(waiter.position) and waiter.position in within:
                    waiter.position = last

    def _mark_live(self) -> None:
        with self._lock:
            self._live_until = self._clock() + self._poll + self._grace
