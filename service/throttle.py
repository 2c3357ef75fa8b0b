"""Attempt throttling that holds under parallel requests.

An attempt is counted before it is tried: :meth:`Throttle.reserve` writes the
attempt into a ``throttle:`` document with CouchDB's revision compare-and-set
(a PUT carrying the ``_rev`` it read). Two requests that read the same
revision cannot both write it: the loser gets 409, re-reads and counts again.
So however many requests arrive at once, at most ``limit`` of them are let
through to the expensive or guessable check within one window; the rest are
refused before they reach it.

No falcon here: ``service/errors.py`` maps :class:`Throttled` to 429 with
``Retry-After``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from sync.couch import CouchDBClient
from sync.errors import DocumentConflict, DocumentNotFound

__all__ = ['Throttle', 'Throttled']

#: Compare-and-set rounds before a reservation gives up. Each round lets one
#: writer through, so a caller that loses this many times is in a crowd far
#: past the limit and is refused like the crowd.
_MAX_ROUNDS = 24


class Throttled(Exception):
    """Too many recent attempts for one key.

    Attributes:
        retry_after: Whole seconds until an attempt is considered again.
    """

    def __init__(self, retry_after: float) -> None:
        super().__init__('throttled')
        self.retry_after = max(1, int(retry_after))


class Throttle:
    """Per-key attempt counter in one CouchDB database.

    Args:
        couch: CouchDB client.
        db: Physical name of the database holding the ``throttle:`` documents.
        scope: Name of what is throttled (``login``, ``enroll``); part of the
            document id, so scopes never share a counter.
        limit: Attempts allowed within ``window`` seconds.
        window: Length of the window in seconds.
        clock: Injected time source (seconds since the epoch).
    """

    def __init__(self, couch: CouchDBClient, db: str, *, scope: str, limit: int, window: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._couch = couch
        self._db = db
        self._scope = scope
        self._limit = limit
        self._window = window
        self._clock = clock

    def doc_id(self, key: str) -> str:
        """Return the id of the document counting ``key`` (hashed: keys may be names)."""
        digest = hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()
        # The login scope keeps the id it always had, so counters survive an upgrade.
        return f'throttle:{digest}' if self._scope == 'login' else f'throttle:{self._scope}:{digest}'

    def _recent(self, doc: dict[str, Any], now: float) -> list[float]:
        stamps = doc.get('failures')
        if not isinstance(stamps, list):
            return []
        return [t for t in stamps if isinstance(t, (int, float)) and t > now - self._window]

    def reserve(self, key: str) -> None:
        """Count one attempt for ``key`` now, or refuse it.

        Raises:
            Throttled: ``limit`` attempts were already counted within the
                window, or the compare-and-set lost too many rounds.
        """
        doc_id = self.doc_id(key)
        for _round in range(_MAX_ROUNDS):
            now = self._clock()
            doc = self._couch.get_or_none(self._db, doc_id) or {'_id': doc_id, 'type': 'throttle'}
            recent = self._recent(doc, now)
            if len(recent) >= self._limit:
                raise Throttled(min(recent) + self._window - now + 1)
            doc['failures'] = recent + [now]
            try:
                self._couch.put(self._db, doc)
            except DocumentConflict:
                continue  # Another attempt was counted first; count again.
            return
        raise Throttled(1)

    def reset(self, key: str) -> None:
        """Forget every counted attempt of ``key`` (after a success)."""
        doc_id = self.doc_id(key)
        for _round in range(_MAX_ROUNDS):
            doc = self._couch.get_or_none(self._db, doc_id)
            if doc is None or not doc.get('failures'):
                return
            doc['failures'] = []
            try:
                self._couch.put(self._db, doc)
            except (DocumentConflict, DocumentNotFound):
                continue
            return
