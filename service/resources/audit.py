"""``GET /audit``: the audit log, paged, for supervisors (their team) and admins (all)."""

from __future__ import annotations

import re
from typing import Any

from service.errors import ApiError

__all__ = ['AuditResource']

_PREFIX = 'event:'
MAX_LIMIT = 500
#: Events a supervisor's page may scan past (other teams') before it answers
#: with what it found and a cursor, so one request stays bounded.
_SCAN_CAP = 5000
_DIGITS = re.compile(r'[0-9]{1,13}')


def _int_param(req, name: str, default: int, low: int, high: int) -> int:
    raw = req.get_param(name)
    if raw is None:
        return default
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise ApiError(422, 'validation_failed', 'The query is not valid.',
                       fields={name: [f'Must be a whole number from {low} to {high}.']})
    return int(raw)


def _public(event: dict[str, Any]) -> dict[str, Any]:
    return {name: event.get(name) for name in
            ('seq', 'at', 'kind', 'actor', 'subject', 'team', 'details', 'prev', 'hash')}


class AuditResource:
    """``GET /audit?after=SEQ&limit=N``: audit events after ``after`` in chain order.

    Admins see every event; a supervisor sees the events whose ``team`` is
    theirs. The answer's ``next`` is the ``after`` of the next page, or null
    at the end of the log.
    """

    auth = {'GET': ('supervisor', 'admin')}

    def __init__(self, services) -> None:
        self._couch = services.couch
        self._db = services.db('audit')

    def on_get(self, req, resp):
        unknown = set(req.params) - {'after', 'limit'}
        if unknown:
            # The names are not repeated: a query string is submitted data.
            raise ApiError(422, 'validation_failed', 'The query is not valid.',
                           fields={'_query': [f'{len(unknown)} unknown parameter(s); only '
                                              '"after" and "limit" are accepted.']})
        after = _int_param(req, 'after', 0, 0, 10 ** 12 - 1)
        limit = _int_param(req, 'limit', 100, 1, MAX_LIMIT)
        principal = req.context.principal
        team = None if 'admin' in principal.roles else (principal.team or '')
        events: list[dict[str, Any]] = []
        scanned = 0
        last_seq = after
        start = f'{_PREFIX}{after + 1:012d}'
        more = True
        while more and len(events) < limit and scanned < _SCAN_CAP:
            page = min(MAX_LIMIT, max(limit - len(events), 50) if team is not None
                       else limit - len(events))
            rows = self._couch.all_docs(self._db, include_docs=True, start_key=start,
                                        end_key=_PREFIX + '\ufff0', limit=page)
            more = len(rows) == page
            for row in rows:
                event = row['doc']
                scanned += 1
                last_seq = event.get('seq', last_seq)
                start = row['id'] + '\x00'
                if team is None or (team and event.get('team') == team):
                    events.append(_public(event))
                    if len(events) == limit:
                        more = more or row is not rows[-1]
                        break
        resp.media = {'events': events, 'next': last_seq if more else None}
