"""The caseload of a team: record metadata, follow-up and the supervisor's queues.

Every route is scoped to the caller's team (the team of a record's owner),
and a record outside it answers exactly like a missing one. Listings carry
metadata only (ids, types, dates, codes, worker names): never an
identifying value and never ciphertext. Ciphertext leaves only through the
audited releases (``POST /records/{id}/open`` and the revisions release
here), and is opened on the caller's own machine.
"""

from __future__ import annotations

import re
import time
from typing import Any

import schemas
from schemas.codes import CONCERN_LEVELS
from schemas.v1.contact import YOUTH_CODE_PATTERN
from service.errors import ApiError
from service.intake import DeskIntake
from service.keystore import envelope_rows
from service.openapi_bodies import (ConflictResolutionBody, RecordCorrectionBody, ReleaseBody,
                                    load_body)
from service.resources import CASE_STAFF
from service.teams import team_record
from sync.errors import DocumentConflict

__all__ = ['caseload_routes']

MAX_LIMIT = 200
_DATE = re.compile(r'^\d{4}-\d{2}-\d{2}$')
_TOKEN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$')
#: The date a record is about, by type (else its ``created_at``).
_DATE_FIELD = {'contact': 'contact_at', 'screening': 'administered_at',
               'consent': 'effective_at'}
#: ``result`` filter values besides the concern levels.
_RESULTS = ('positive', 'negative', *CONCERN_LEVELS)
_SUPERVISOR = ('supervisor',)
#: Audit events one record-trail request may scan before answering.
_AUDIT_SCAN_CAP = 200_000


def _bad_query(name: str, message: str) -> ApiError:
    return ApiError(422, 'validation_failed', 'The query is not valid.',
                    fields={name: [message]})


def _query(req, allowed: dict[str, re.Pattern | tuple]) -> dict[str, str]:
    """Return the known query parameters, each checked; never echo a value."""
    unknown = set(req.params) - set(allowed) - {'limit', 'offset'}
    if unknown:
        raise ApiError(422, 'validation_failed', 'The query is not valid.',
                       fields={name: ['Unknown parameter.'] for name in sorted(unknown)})
    found = {}
    for name, rule in allowed.items():
        value = req.get_param(name)
        if value is None:
            continue
        ok = value in rule if isinstance(rule, tuple) else bool(rule.fullmatch(value))
        if not ok:
            choices = f'One of: {", ".join(rule)}.' if isinstance(rule, tuple) else \
                'Not in the expected form.'
            raise _bad_query(name, choices)
        found[name] = value
    return found


def _paging(req) -> tuple[int, int]:
    values = []
    for name, default, high in (('limit', 50, MAX_LIMIT), ('offset', 0, 10 ** 9)):
        raw = req.get_param(name)
        if raw is None:
            values.append(default)
            continue
        if not raw.isdigit() or int(raw) > high or (name == 'limit' and int(raw) < 1):
            raise _bad_query(name, f'Must be a whole number up to {high}.')
        values.append(int(raw))
    return values[0], values[1]


def team_members(couch, directory_db: str, team: str | None) -> set[str]:
    """Return the usernames of ``team`` (none for a caller without a team)."""
    if not team:
        return set()
    return {doc['username'] for doc in couch.iter_prefix(directory_db, 'user:')
            if doc.get('team') == team and isinstance(doc.get('username'), str)}


def record_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """Return a record's metadata: allow-listed, never an identifying value.

    Every member is either envelope metadata or a coded, non-identifying
    field of the record's schema; the identifying paths are sealed and are
    never read here.
    """
    kind = doc.get('type')
    date = doc.get(_DATE_FIELD.get(str(kind), 'created_at')) or doc.get('created_at')
    summary = {
        'id': doc['_id'], 'rev': doc.get('_rev'), 'type': kind, 'schema': doc.get('schema'),
        'worker': doc.get('owner'), 'device': doc.get('device'),
        'date': date if isinstance(date, str) else None,
        'created_at': doc.get('created_at'), 'updated_at': doc.get('updated_at'),
        'youth_code': doc.get('youth_code') if isinstance(doc.get('youth_code'), str) else None,
        'conflicts': len(doc.get('_conflicts') or []),
    }
    if kind == 'screening':
        result = doc.get('result')
        if not isinstance(result, dict):
            result = {}
        summary['instrument'] = doc.get('instrument')
        summary['result'] = {'positive_screen': result.get('positive_screen'),
                             'concern_level': result.get('concern_level')}
    return summary


def _matches(summary: dict[str, Any], query: dict[str, str]) -> bool:
    date = (summary['date'] or '')[:10]
    if 'from' in query and date < query['from']:
        return False
    if 'to' in query and date > query['to']:
        return False
    if 'worker' in query and summary['worker'] != query['worker']:
        return False
    if 'type' in query and summary['type'] != query['type']:
        return False
    if 'youth_code' in query and summary['youth_code'] != query['youth_code']:
        return False
    if query.get('conflicts') == 'open' and not summary['conflicts']:
        return False
    if 'result' in query:
        result = summary.get('result') or {}
        wanted = query['result']
        if wanted == 'positive' and result.get('positive_screen') is not True:
            return False
        if wanted == 'negative' and result.get('positive_screen') is not False:
            return False
        if wanted in CONCERN_LEVELS and result.get('concern_level') != wanted:
            return False
    return True


class CaseloadResource:
    """``GET /caseload``: the team's records as metadata, filtered and paged.

    Filters: ``from``/``to`` (YYYY-MM-DD, the record's own date),
    ``worker``, ``type``, ``result`` (``positive``, ``negative`` or a concern
    level), ``conflicts=open``, ``youth_code``; ``limit`` and ``offset``
    page the answer, newest first. ``next`` is the offset of the next page,
    or null.
    """

    auth = {'GET': CASE_STAFF}

    def __init__(self, services) -> None:
        self._couch = services.couch
        self._records_db = services.db('records')
        self._directory_db = services.db('directory')

    def on_get(self, req, resp):
        query = _query(req, {
            'from': _DATE, 'to': _DATE, 'worker': _TOKEN,
            'type': tuple(schemas.RECORD_TYPES), 'result': _RESULTS,
            'conflicts': ('open',), 'youth_code': re.compile(YOUTH_CODE_PATTERN)})
        limit, offset = _paging(req)
        members = team_members(self._couch, self._directory_db, req.context.principal.team)
        found = []
        for doc in self._team_docs(members):
            summary = record_summary(doc)
            if _matches(summary, query):
                found.append(summary)
        found.sort(key=lambda item: (item['date'] or '', item['id']), reverse=True)
        page = found[offset:offset + limit]
        resp.media = {'records': page, 'total': len(found),
                      'next': offset + limit if offset + limit < len(found) else None}

    def _team_docs(self, members: set[str]):
        """Yield the live records owned by ``members`` (a bounded page at a time)."""
        if not members:
            return
        start, page_size = None, 500
        while True:
            rows = self._couch.all_docs(self._records_db, include_docs=True, conflicts=True,
                                        limit=page_size, start_key=start,
                                        skip=None if start is None else 1)
            for row in rows:
                doc = row.get('doc') or {}
                if not row['id'].startswith('_') and doc.get('owner') in members \
                        and doc.get('type') in schemas.RECORD_TYPES:
                    yield doc
            if len(rows) < page_size:
                return
            start = rows[-1]['id']




class RevisionsResource:
    """``POST /caseload/{record_id}/revisions``: release every open revision.

    For resolving a conflict: the body is ``{"purpose": <code>}`` as for
    ``/records/{id}/open``; the answer is each leaf revision (the current
    one first) and the envelopes of every record key they name, audited as
    ``record_released`` with the number of revisions.
    """

    auth = {'POST': CASE_STAFF}
    openapi_request = {'POST': 'ReleaseBody'}

    def __init__(self, services) -> None:
        self._couch = services.couch
        self._records_db = services.db('records')
        self._keyvault_db = services.db('keyvault')
        self._directory_db = services.db('directory')
        self._audit = services.audit

    def on_post(self, req, resp, record_id):
        body = load_body(req, ReleaseBody)
        principal = req.context.principal
        team_record(self._couch, self._records_db, self._directory_db, record_id,
                    principal.team)
        current = self._couch.get(self._records_db, record_id, conflicts='true')
        revisions = [current]
        for rev in current.pop('_conflicts', []):
            revisions.append(self._couch.get(self._records_db, record_id, rev=rev))
        rkids = sorted({rkid for doc in revisions for rkid in (doc.get('fle') or {}).get('keys', {})})
        rows = envelope_rows(self._couch, self._keyvault_db, rkids)
        envelopes = [row['doc'] for row in rows if row.get('doc')]
        self._audit.record('record_released', actor=f'user:{principal.id}', subject=record_id,
                           team=principal.team,
                           details={'purpose': body['purpose'], 'envelopes': len(envelopes),
                                    'revisions': len(revisions)})
        resp.media = {'revisions': revisions, 'envelopes': envelopes}


class CorrectionResource:
    """``PUT /caseload/{record_id}``: a corrected record, resealed on the desk.

    The body is ``{"document": <sealed record with its current _rev>,
    "envelopes": [<rk: docs of the new record keys>]}``. The rules of desk
    intake apply (identifying fields sealed, every new header key with its
    envelope, sealed to a key the manifest accepts, nothing for a sealed
    youth), and a correction changes no envelope metadata: the id, type,
    schema, org, owner and creation time stay. A stale ``_rev`` is a 409:
    the desk reloads and corrects again. Audited as ``record_corrected``.
    """

    auth = {'PUT': CASE_STAFF}
    openapi_request = {'PUT': 'RecordCorrectionBody'}
    _KEPT = ('_id', 'type', 'schema', 'org', 'owner', 'created_at')

    def __init__(self, services, intake: DeskIntake) -> None:
        self._couch = services.couch
        self._records_db = services.db('records')
        self._keyvault_db = services.db('keyvault')
        self._directory_db = services.db('directory')
        self._audit = services.audit
        self._intake = intake

    def on_put(self, req, resp, record_id):
        body = load_body(req, RecordCorrectionBody)
        document, envelopes = body['document'], body['envelopes']
        principal = req.context.principal
        current = team_record(self._couch, self._records_db, self._directory_db, record_id,
                              principal.team)
        changed = [name for name in self._KEPT if document.get(name) != current.get(name)]
        extra = sorted({'_revisions', '_deleted', '_conflicts'} & set(document))
        if changed or extra:
            raise ApiError(422, 'immutable_field', 'A correction changes record values only.',
                           fields={name: ['Must stay as stored.'] for name in changed + extra})
        if document.get('_rev') != current['_rev']:
            raise ApiError(409, 'stale_revision', 'The record changed since you opened it: '
                                                  'open it again and correct that revision.')
        document = schemas.validate_document(document, sealed=True)
        known = set((current.get('fle') or {}).get('keys', {}))
        listed = set((document.get('fle') or {}).get('keys', {}))
        new = listed - known
        self._intake.check_envelopes(
            document, envelopes, expected=new,
            unexpected_reason='The envelope is not a new key of the corrected header.')
        self._intake.refuse_late_arrival(principal, document, envelopes)
        results = self._couch.bulk_docs(self._keyvault_db, envelopes)
        stored = [result for result in results if not result.get('error')]
        try:
            if len(stored) != len(envelopes):
                raise DocumentConflict('envelope')
            rev = self._couch.put(self._records_db, document)
        except DocumentConflict:
            # Nothing half-written: the new envelopes go with the refusal.
            self._couch.bulk_docs(self._keyvault_db, [
                {'_id': result['id'], '_rev': result['rev'], '_deleted': True}
                for result in stored])
            raise ApiError(409, 'stale_revision', 'The record changed since you opened it: '
                                                  'open it again and correct that revision.') \
                from None
        self._audit.record('record_corrected', actor=f'user:{principal.id}', subject=record_id,
                           team=principal.team,
                           details={'type': document['type'], 'envelopes': len(envelopes)})
        resp.media = {'id': record_id, 'rev': rev}


class ResolutionResource:
    """``POST /caseload/{record_id}/resolution``: end a conflict with one revision.

    The body is ``{"keep": <rev>}``, one of the record's open revisions. A
    kept losing revision becomes the current one (a new revision on the
    winning branch, so every replica converges on it); every other open
    branch is deleted. To merge, the desk first corrects the current
    revision and then keeps it. Audited as ``conflict_resolved``.
    """

    auth = {'POST': CASE_STAFF}
    openapi_request = {'POST': 'ConflictResolutionBody'}

    def __init__(self, services) -> None:
        self._couch = services.couch
        self._records_db = services.db('records')
        self._directory_db = services.db('directory')
        self._audit = services.audit

    def on_post(self, req, resp, record_id):
        body = load_body(req, ConflictResolutionBody)
        principal = req.context.principal
        team_record(self._couch, self._records_db, self._directory_db, record_id,
                    principal.team)
        current = self._couch.get(self._records_db, record_id, conflicts='true')
        losers = current.pop('_conflicts', [])
        if not losers:
            raise ApiError(409, 'no_conflict', 'This record has no open conflict.')
        keep = body['keep']
        if keep != current['_rev'] and keep not in losers:
            raise ApiError(422, 'validation_failed', 'Keep one of the open revisions.',
                           fields={'keep': ['Not an open revision of this record.']})
        rev = current['_rev']
        try:
            if keep != current['_rev']:
                kept = self._couch.get(self._records_db, record_id, rev=keep)
                kept['_rev'] = current['_rev']
                rev = self._couch.put(self._records_db, kept)
        except DocumentConflict:
            raise ApiError(409, 'stale_revision', 'The record changed: list it again.') \
                from None
        self._couch.bulk_docs(self._records_db, [
            {'_id': record_id, '_rev': loser, '_deleted': True} for loser in losers])
        self._audit.record('conflict_resolved', actor=f'user:{principal.id}',
                           subject=record_id, team=principal.team,
                           details={'kept': 'current' if keep == current['_rev'] else 'other',
                                    'discarded': len(losers)})
        resp.media = {'id': record_id, 'rev': rev}


class RecordAuditResource:
    """``GET /caseload/{record_id}/audit``: the audit events about one record.

    For the team's supervisor; events carry codes and counts only.
    """

    auth = {'GET': _SUPERVISOR}

    def __init__(self, services) -> None:
        self._couch = services.couch
        self._records_db = services.db('records')
        self._directory_db = services.db('directory')
        self._audit_db = services.db('audit')

    def on_get(self, req, resp, record_id):
        _query(req, {})
        team_record(self._couch, self._records_db, self._directory_db, record_id,
                    req.context.principal.team)
        events = []
        for scanned, event in enumerate(self._couch.iter_prefix(self._audit_db, 'event:')):
            if scanned >= _AUDIT_SCAN_CAP:
                break
            if event.get('subject') == record_id:
                events.append({name: event.get(name) for name in
                               ('seq', 'at', 'kind', 'actor', 'details')})
        resp.media = {'events': events}


def _quarantine_summary(entry: dict[str, Any]) -> dict[str, Any]:
    doc = entry.get('doc')
    if not isinstance(doc, dict):
        doc = {}
    return {'id': entry['_id'], 'rule': entry.get('rule'), 'reason': entry.get('reason'),
            'device': entry.get('device') or None, 'worker': entry.get('worker') or entry.get('user'),
            'at': entry.get('at'), 'source': entry.get('source', 'sync'), 'db': entry.get('db'),
            'doc_id': entry.get('doc_id'), 'type': doc.get('type'),
            'redacted': entry.get('redacted', 0),
            'releasable': _releasable(entry)}


def _releasable(entry: dict[str, Any]) -> bool:
    doc = entry.get('doc')
    return (entry.get('db') == 'records' and not entry.get('redacted')
            and isinstance(doc, dict) and doc.get('type') in schemas.RECORD_TYPES
            and doc.get('_id') == entry.get('doc_id'))


class QuarantineResource:
    """``GET /quarantine``: the team's refused documents, as metadata.

    Filters: ``rule``, ``device``, ``from``/``to`` (YYYY-MM-DD of the
    refusal). The kept documents stay sealed and are not returned.
    """

    auth = {'GET': _SUPERVISOR}

    def __init__(self, services) -> None:
        self._couch = services.couch
        self._quarantine_db = services.db('quarantine')
        self._directory_db = services.db('directory')

    def on_get(self, req, resp):
        query = _query(req, {'rule': _TOKEN, 'device': _TOKEN, 'from': _DATE, 'to': _DATE})
        limit, offset = _paging(req)
        members = team_members(self._couch, self._directory_db, req.context.principal.team)
        found = []
        for entry in self._couch.iter_prefix(self._quarantine_db, 'q:'):
            summary = _quarantine_summary(entry)
            if summary['worker'] not in members:
                continue
            day = time.strftime('%Y-%m-%d', time.gmtime(summary['at'] or 0))
            if ('rule' in query and summary['rule'] != query['rule']) \
                    or ('device' in query and summary['device'] != query['device']) \
                    or ('from' in query and day < query['from']) \
                    or ('to' in query and day > query['to']):
                continue
            found.append(summary)
        found.sort(key=lambda item: (item['at'] or 0, item['id']), reverse=True)
        resp.media = {'entries': found[offset:offset + limit], 'total': len(found),
                      'next': offset + limit if offset + limit < len(found) else None}


class QuarantineEntryResource:
    """``POST /quarantine/{entry_id}/release`` puts a refused record back;
    ``DELETE /quarantine/{entry_id}`` discards the entry.

    A release is allowed only for a record kept whole (nothing redacted)
    that passes today's rules, including the sealing rule; it is stored as
    it was pushed, revision history included, so the tablet and the server
    agree on it. Both are audited (``quarantine_released``,
    ``quarantine_discarded``) with the rule, never a value.
    """

    def __init__(self, services, intake: DeskIntake) -> None:
        self._couch = services.couch
        self._quarantine_db = services.db('quarantine')
        self._records_db = services.db('records')
        self._directory_db = services.db('directory')
        self._audit = services.audit
        self._intake = intake

    def _entry(self, req, entry_id: str) -> dict[str, Any]:
        entry = self._couch.get_or_none(self._quarantine_db, entry_id) \
            if entry_id.startswith('q:') else None
        members = team_members(self._couch, self._directory_db, req.context.principal.team)
        if entry is None or (entry.get('worker') or entry.get('user')) not in members:
            raise ApiError(404, 'not_found', 'No such quarantine entry for your team.')
        return entry

    def on_post(self, req, resp, entry_id):
        entry = self._entry(req, entry_id)
        if not _releasable(entry):
            raise ApiError(409, 'not_releasable', 'This entry was not kept whole (or is not a '
                                                  'record): it can only be discarded.')
        doc = dict(entry['doc'])
        schemas.validate_document(doc, sealed=True)
        refusal = self._intake.sealed_refusal(doc)
        if refusal is not None:
            raise ApiError(409, refusal.rule, refusal.reason)
        if '_revisions' in doc:
            self._couch.bulk_docs(self._records_db, [doc], new_edits=False)
        else:
            doc.pop('_rev', None)
            try:
                self._couch.put(self._records_db, doc)
            except DocumentConflict:
                raise ApiError(409, 'conflict', 'A record with that id exists.') from None
        self._couch.delete(self._quarantine_db, entry['_id'], entry['_rev'])
        principal = req.context.principal
        self._audit.record('quarantine_released', actor=f'user:{principal.id}',
                           subject=entry['doc_id'], team=principal.team,
                           details={'rule': entry.get('rule'), 'quarantine': entry['_id']})
        resp.media = {'released': entry['doc_id']}

    def on_delete(self, req, resp, entry_id):
        entry = self._entry(req, entry_id)
        self._couch.delete(self._quarantine_db, entry['_id'], entry['_rev'])
        principal = req.context.principal
        self._audit.record('quarantine_discarded', actor=f'user:{principal.id}',
                           subject=entry.get('doc_id'), team=principal.team,
                           details={'rule': entry.get('rule'), 'quarantine': entry['_id']})
        resp.media = {'discarded': entry['_id']}


def caseload_routes(services, intake: DeskIntake) -> list[tuple[str, Any]]:
    """Return the caseload routes (``intake``: the desk-submission rules)."""
    entry = QuarantineEntryResource(services, intake)
    return [
        ('/caseload', CaseloadResource(services)),
        ('/caseload/{record_id}', CorrectionResource(services, intake)),
        ('/caseload/{record_id}/revisions', RevisionsResource(services)),
        ('/caseload/{record_id}/resolution', ResolutionResource(services)),
        ('/caseload/{record_id}/audit', RecordAuditResource(services)),
        ('/quarantine', QuarantineResource(services)),
        ('/quarantine/{entry_id}', _DiscardOnly(entry)),
        ('/quarantine/{entry_id}/release', _ReleaseOnly(entry)),
    ]


class _ReleaseOnly:
    """``POST /quarantine/{entry_id}/release``: put a refused record back (audited)."""

    auth = {'POST': _SUPERVISOR}
    # The entry to release is named by the path; the body carries nothing.
    openapi_request = {'POST': 'EmptyBody'}

    def __init__(self, entry: QuarantineEntryResource) -> None:
        self.on_post = entry.on_post


class _DiscardOnly:
    """``DELETE /quarantine/{entry_id}``: discard a quarantine entry (audited)."""

    auth = {'DELETE': _SUPERVISOR}

    def __init__(self, entry: QuarantineEntryResource) -> None:
        self.on_delete = entry.on_delete
