"""The append-only, hash-chained audit log.

Each event is a document ``event:<seq>`` (seq zero-padded to 12 digits) in the
audit database, carrying the SHA-256 of the event before it. The event's own id
is the lock: two service instances racing for the same ``seq`` both PUT the
same id, CouchDB accepts one and answers 409 to the other, which re-reads the
tail and tries the next ``seq``. No event ever holds an identifying value:
callers pass ids, kinds, counts and codes (a release purpose is a code too).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sync.couch import CouchDBClient
from sync.errors import DocumentConflict

__all__ = ['AuditLog', 'event_hash', 'GENESIS', 'directory_team_of']

#: The ``prev`` of the first event.
GENESIS = '0' * 64
_PREFIX = 'event:'


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode()


def _timestamp(seconds: float) -> str:
    """Return an ISO 8601 UTC timestamp with milliseconds."""
    whole = int(seconds)
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole)) + f'.{int((seconds - whole) * 1000):03d}Z'


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_float(item) for item in value)
    return False


def event_hash(event: dict[str, Any]) -> str:
    """Return the SHA-256 (hex) of an event's chained content.

    The content is every field but ``_id``, ``_rev`` and ``hash`` itself, in
    canonical JSON, so editing any of them, or ``prev``, changes the hash.
    """
    content = {k: v for k, v in event.items() if k not in ('_id', '_rev', 'hash')}
    return hashlib.sha256(_canonical(content)).hexdigest()


def directory_team_of(
    couch: CouchDBClient, directory_db: str,
    read: Callable[[str], dict[str, Any] | None] | None = None,
) -> Callable[[str | None], str | None]:
    """Return a resolver of ``user:<name>`` and ``device:<id>`` to a team.

    A device belongs to its worker's team. Anything else (a record id, a
    sealing, ``cli:...``) has no team. ``read`` (an id to the directory
    document or None; the directory's ``DocWatch.get`` in the service) takes
    the place of a database read per lookup.
    """
    if read is None:
        def read(doc_id: str) -> dict[str, Any] | None:
            return couch.get_or_none(directory_db, doc_id)

    def team_of(who: str | None) -> str | None:
        if not isinstance(who, str):
            return None
        if who.startswith('device:'):
            device = read(who)
            who = f'user:{device["worker"]}' if device and device.get('worker') else None
        if not who or not who.startswith('user:'):
            return None
        user = read(who)
        return user.get('team') if user else None

    return team_of


class AuditLog:
    """Writer and reader of the audit chain.

    Args:
        couch: CouchDB client.
        db: Physical name of the audit database.
        clock: Injected time source.
    """

    def __init__(self, couch: CouchDBClient, db: str, *,
                 clock: Callable[[], float] = time.time,
                 team_of: Callable[[str | None], str | None] | None = None) -> None:
        self._couch = couch
        self._db = db
        self._clock = clock
        # Resolves ``user:<name>`` / ``device:<id>`` to a team, so an event
        # whose caller passed no team still reaches that team's supervisors.
        self._team_of = team_of
        # The chain's tail as this process last wrote it, so an append
        # costs one write; appends of one process take turns, so they never
        # race each other for a ``seq``.
        self._append_lock = threading.Lock()
        self._last: tuple[int, str] | None = None

    def _tail(self) -> tuple[int, str]:
        rows = self._couch.all_docs(self._db, include_docs=True, descending=True, limit=1,
                                    start_key=_PREFIX + '\ufff0', end_key=_PREFIX)
        if not rows:
            return 0, GENESIS
        doc = rows[0]['doc']
        return doc['seq'], doc['hash']

    def record(
        self,
        kind: str,
        *,
        actor: str | None,
        subject: str | None = None,
        team: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one event and return it.

        Args:
            kind: Event kind, such as ``login`` or ``record_released``.
            actor: ``user:<name>`` or ``device:<id>``; None when unknown.
            subject: What the event is about (a record id, a user), never a value.
            team: Team the event belongs to, so supervisors see their team's
                events; when omitted, the team of a ``user:``/``device:``
                subject, else of the actor (see ``team_of``).
            details: Small non-identifying facts (counts, purpose, versions).
        """
        if team is None and self._team_of is not None:
            # The subject's team first (a grant to, or a device of, a team
            # member), then the actor's (a login, a push).
            team = self._team_of(subject) or self._team_of(actor)
        if _has_float(details):
            # Floats do not survive the trip through CouchDB byte for byte
            # (2.0 comes back as 2), so a stored event would fail verification.
            raise TypeError('audit details take integers and strings, not floats')
        with self._append_lock:
            return self._append(kind, actor=actor, subject=subject, team=team,
                                details=details)

    def _append(self, kind: str, *, actor: str | None, subject: str | None,
                team: str | None, details: dict[str, Any] | None) -> dict[str, Any]:
        """Write the next event after the known tail; on 409 read the tail and retry.

        Another instance (or the CLI) appending meanwhile makes the PUT of
        the next ``seq`` answer 409, so a kept tail that went stale costs
        one retry and never a gap or fork in the chain.
        """
        for _attempt in range(50):
            if self._last is None:
                self._last = self._tail()
            seq, prev = self._last
            event = {
                '_id': f'{_PREFIX}{seq + 1:012d}',
                'type': 'audit',
                'seq': seq + 1,
                # A string, not a float: CouchDB (JavaScript) gives 1795868304.0
                # back as 1795868304, which would change the canonical JSON and
                # so the hash of an untouched event.
                'at': _timestamp(self._clock()),
                'kind': kind,
                'actor': actor,
                'subject': subject,
                'team': team,
                'details': details or {},
                'prev': prev,
            }
            event['hash'] = event_hash(event)
            try:
                self._couch.put(self._db, event)
            except DocumentConflict:
                self._last = None
                continue
            except Exception:
                self._last = None
                raise
            self._last = (seq + 1, str(event['hash']))
            return event
        raise DocumentConflict(409, 'conflict', 'audit append')

    def events(self, *, page_size: int = 500) -> Iterator[dict[str, Any]]:
        """Yield every event in chain order."""
        yield from self._couch.iter_prefix(self._db, _PREFIX, page_size=page_size)
