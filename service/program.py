"""The program behind the records: case actions, what is due, and aggregate reports.

No falcon here: resources call these classes and ``service.errors`` maps
their errors. Four parts:

* ``Cases``: take a lifecycle action on a case (``schemas.lifecycle``), with
  the facts its guards need looked up in the youth's other records, team
  scoped, audited, written with the case's ``_rev`` (compare-and-set).
* ``Cases.due``: the timers a supervisor acts on: missed check-ins, holds
  passing into lost contact, sealings falling due (each with the body of the
  two-person sealing proposal, ``POST /sealings``, that carries it out).
* ``CaptureGuards``: the same guards for the field actions of a case
  captured on a tablet (sync push) or at the desk.
* ``Reports``: counts and medians from non-identifying fields only, read
  from CouchDB map/reduce views (``VIEWS``), so a report costs what changed
  since the view was last read; records of a case are joined to the case's
  dimensions by case id, and Part 2 and sealed cases are kept out where the
  rules say so (``counted``). Case staff see their team's figures; the admin
  and the liaison see suppressed organisation-wide aggregates
  (``service.suppression``), the liaison quarterly, at most two-way, after a
  lag.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
import statistics
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import schemas
import schemas.errors
from schemas import lifecycle
from schemas import program_codes
from schemas.lifecycle import CaseFacts, ProgramSettings
from service.suppression import Table, suppress
from sync.errors import DocumentConflict

__all__ = ['CaptureGuards', 'Cases', 'DESIGN_ID', 'DIMENSIONS', 'HMIS_SECTIONS',
           'LINKED_MEASURES', 'MEASURES', 'MEDIANS', 'PERIODS', 'ProgramError', 'Reports',
           'SEALING_TALLIES', 'case_facts', 'counted', 'hmis_csv', 'install_views',
           'settings_from_config', 'table_csv', 'warm_views']

DESIGN_ID = '_design/fieldvault_program'

# Map functions read coded, non-identifying fields only; a sealed value is
# never read. A view cannot join two documents, so the reports use three:
#
# * ``counts``: records that carry their own dimensions (contacts,
#   screenings, and a case's own actions), keyed [measure, month, owner,
#   service area, age band, referral source, detail, sealed]; a 42 CFR Part 2
#   case emits nothing;
# * ``linked``: records of a case (check-ins, referrals, exits, mandated
#   reports, sealing tallies), keyed [measure, month, owner, link, detail],
#   where ``link`` names the case (``enrollment:...``), the contact of a
#   referral made before any case, or ``client:<client_id>``;
# * ``dims``: each link's dimensions [service area, age band, referral
#   source, part 2, sealed], read for the links a report found; so a case's
#   dimensions, its Part 2 flag and its sealing reach its records as they are
#   now, not as they were when the record was written.
_COUNTS_MAP = r"""function (doc) {
  if (!doc.type || typeof doc._id !== 'string' || doc._id.indexOf('rk:') === 0) { return; }
  var owner = typeof doc.owner === 'string' ? doc.owner : '';
  var sealed = doc.type === 'enrollment' && doc.state === 'sealed' ? 'sealed' : '';
  function month(t) { return (typeof t === 'string' && /^[0-9]{4}-[0-9]{2}/.test(t)) ? t.substring(0, 7) : null; }
  function code(v) { return typeof v === 'string' ? v : 'unknown'; }
  function out(measure, when, detail, area, age, source) {
    var m = month(when);
    if (m) { emit([measure, m, owner, code(area), code(age), code(source), code(detail), sealed], 1); }
  }
  if (doc.type === 'contact') { out('contacts', doc.contact_at, doc.contact_type, doc.service_area_code); }
  if (doc.type === 'screening') {
    out('screenings', doc.administered_at, doc.instrument);
    if (doc.result && doc.result.positive_screen === true) {
      out('positive_screens', doc.administered_at, code(doc.instrument) + '/' + code(doc.result.concern_level));
    }
  }
  if (doc.type === 'enrollment' && doc.part2_flag !== true && doc.history && doc.history.length) {
    var names = {offer: 'offers', consent: 'consents', enroll: 'enrollments', start: 'active_weeks',
                 next_week: 'active_weeks', approve_completion: 'completions', withdraw: 'withdrawals',
                 discharge: 'discharges', transfer: 'transfers', lose_contact: 'lost_contact',
                 seal: 'cases_sealed'};
    for (var i = 0; i < doc.history.length; i++) {
      var e = doc.history[i];
      var measure = e && names[e.action];
      if (measure) {
        var detail = e.action === 'withdraw' ? (e.reason_code || 'unspecified') : 'all';
        out(measure, e.at, detail, doc.service_area_code, doc.age_band, doc.referral_source);
      }
    }
  }
}"""

_LINKED_MAP = r"""function (doc) {
  if (!doc.type || typeof doc._id !== 'string' || doc._id.indexOf('rk:') === 0) { return; }
  var owner = typeof doc.owner === 'string' ? doc.owner : '';
  function month(t) { return (typeof t === 'string' && /^[0-9]{4}-[0-9]{2}/.test(t)) ? t.substring(0, 7) : null; }
  function code(v) { return typeof v === 'string' ? v : 'unknown'; }
  function client(v) { return typeof v === 'string' ? 'client:' + v : ''; }
  function out(measure, when, link, detail) {
    var m = month(when);
    if (m) { emit([measure, m, owner, typeof link === 'string' && link ? link : '', code(detail)], 1); }
  }
  if (doc.type === 'weekly_checkin') {
    out('checkins', doc.checked_in_at, doc.enrollment_id, doc.attended === true ? 'attended' : 'missed');
  }
  if (doc.type === 'referral') {
    out('referrals', doc.referred_at, doc.enrollment_id || doc.contact_id,
        code(doc.category) + '/' + code(doc.outcome));
  }
  if (doc.type === 'exit') { out('exits', doc.exit_at, doc.enrollment_id, doc.exit_reason); }
  if (doc.type === 'mandated_report') { out('mandated_reports', doc.made_at, client(doc.client_id), doc.agency); }
  if (doc.type === 'case_sealing') {
    out('records_sealed', doc.sealed_at, doc.enrollment_id || client(doc.client_id), doc.basis);
  }
}"""

_DIMS_MAP = r"""function (doc) {
  if (typeof doc._id !== 'string' || doc._id.indexOf('rk:') === 0) { return; }
  function code(v) { return typeof v === 'string' ? v : 'unknown'; }
  if (doc.type === 'enrollment') {
    var dims = [code(doc.service_area_code), code(doc.age_band), code(doc.referral_source),
                doc.part2_flag === true, doc.state === 'sealed'];
    emit(doc._id, dims);
    if (typeof doc.client_id === 'string') { emit('client:' + doc.client_id, dims); }
  }
  if (doc.type === 'contact') { emit(doc._id, [code(doc.service_area_code), 'unknown', 'unknown', false, false]); }
}"""

# Time to first service, per case: the consent (start) and the earliest
# service (an attended check-in that records a service received, or an
# accepted referral), in milliseconds; the case's own dimensions ride along.
# The reduce keeps one small value per case, so a grouped read returns one
# row per case.
_FIRST_SERVICE_MAP = r"""function (doc) {
  if (typeof doc._id !== 'string' || doc._id.indexOf('rk:') === 0) { return; }
  function ms(t) { var v = typeof t === 'string' ? Date.parse(t) : NaN; return isNaN(v) ? null : v; }
  function code(v) { return typeof v === 'string' ? v : 'unknown'; }
  if (doc.type === 'enrollment' && ms(doc.consented_at) !== null) {
    emit(doc._id, {s: ms(doc.consented_at), f: null,
                   d: [typeof doc.owner === 'string' ? doc.owner : '', code(doc.service_area_code),
                       code(doc.age_band), code(doc.referral_source), doc.part2_flag === true,
                       doc.state === 'sealed', doc.consented_at.substring(0, 7)]});
  }
  if (typeof doc.enrollment_id !== 'string') { return; }
  if (doc.type === 'weekly_checkin' && doc.attended === true && doc.services_received
      && doc.services_received.length && ms(doc.checked_in_at) !== null) {
    emit(doc.enrollment_id, {s: null, f: ms(doc.checked_in_at), d: null});
  }
  if (doc.type === 'referral' && doc.outcome === 'accepted' && ms(doc.referred_at + 'T00:00:00Z') !== null) {
    emit(doc.enrollment_id, {s: null, f: ms(doc.referred_at + 'T00:00:00Z'), d: null});
  }
}"""

_FIRST_SERVICE_REDUCE = r"""function (keys, values, rereduce) {
  var out = {s: null, f: null, d: null};
  for (var i = 0; i < values.length; i++) {
    var v = values[i];
    if (v.s !== null && (out.s === null || v.s < out.s)) { out.s = v.s; }
    if (v.f !== null && (out.f === null || v.f < out.f)) { out.f = v.f; }
    if (v.d !== null) { out.d = v.d; }
  }
  return out;
}"""

_CASES_MAP = r"""function (doc) {
  if (doc.type === 'enrollment' && typeof doc.state === 'string') { emit(doc.state, null); }
}"""

_BY_CLIENT_MAP = r"""function (doc) {
  if (doc.type && typeof doc.client_id === 'string' && typeof doc._id === 'string'
      && doc._id.indexOf('rk:') !== 0) { emit(doc.client_id, doc.type); }
}"""

_CHECKINS_MAP = r"""function (doc) {
  if (doc.type === 'weekly_checkin' && typeof doc.enrollment_id === 'string') {
    emit(doc.enrollment_id, [doc.week_number, doc.attended === true]);
  }
}"""

#: The design document of ``records`` (CouchDB 3 and pouchdb-server serve it).
VIEWS = {
    'counts': {'map': _COUNTS_MAP, 'reduce': '_count'},
    'linked': {'map': _LINKED_MAP, 'reduce': '_count'},
    'dims': {'map': _DIMS_MAP},
    'first_service': {'map': _FIRST_SERVICE_MAP, 'reduce': _FIRST_SERVICE_REDUCE},
    'cases': {'map': _CASES_MAP},
    'by_client': {'map': _BY_CLIENT_MAP},
    'checkins': {'map': _CHECKINS_MAP},
}

#: Measures a report can count, with what their detail column holds.
MEASURES = {
    'contacts': 'contact type',
    'screenings': 'instrument',
    'positive_screens': 'instrument/concern level',
    'offers': '-', 'consents': '-', 'enrollments': '-',
    'active_weeks': '- (case-weeks begun)',
    'completions': '-', 'withdrawals': 'reason code', 'discharges': '-', 'transfers': '-',
    'lost_contact': '-', 'cases_sealed': '-',
    'checkins': 'attended/missed',
    'referrals': 'category/outcome',
    'exits': 'exit reason',
    'mandated_reports': 'agency',
    'records_sealed': 'sealing basis',
}
#: Measures counted from records of a case, whose dimensions the case holds
#: (the ``linked`` view, joined to ``dims``).
LINKED_MEASURES = ('checkins', 'referrals', 'exits', 'mandated_reports', 'records_sealed')
#: Past this many cases a report reads the ``dims`` view whole, not by key.
_KEYED_LINKS_MAX = 500
#: Measures that count sealings themselves: the tally a sealing leaves.
SEALING_TALLIES = ('cases_sealed', 'records_sealed')
#: Medians a report can give, with their unit.
MEDIANS = {
    'first_service_hours': 'hours from consent to the first service (an attended check-in '
                           'recording a service, or an accepted referral), by month of consent',
}
#: Columns a report can be broken down by (besides the period rows).
DIMENSIONS = ('service_area', 'age_band', 'referral_source', 'detail')
_DIMENSION_INDEX = {'service_area': 0, 'age_band': 1, 'referral_source': 2, 'detail': 3}
PERIODS = ('month', 'quarter', 'ffy')
_MONTH = '^[0-9]{4}-(0[1-9]|1[0-2])$'

#: Elements of the comparable-database aggregate: (measure, broken down by).
HMIS_SECTIONS = (('screenings', 'detail'), ('positive_screens', 'detail'),
                 ('enrollments', 'referral_source'), ('enrollments', 'age_band'),
                 ('completions', 'service_area'), ('withdrawals', 'detail'), ('exits', 'detail'),
                 ('referrals', 'detail'), ('mandated_reports', 'detail'),
                 ('records_sealed', 'detail'))

#: Roles that see their team's figures unsuppressed (they read its rows anyway).
TEAM_ROLES = ('advocate', 'supervisor')


class ProgramError(Exception):
    """A refused program request; ``status``, ``code`` and a message naming no value."""

    def __init__(self, status: int, code: str, message: str,
                 fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


def settings_from_config(config) -> ProgramSettings:
    """Return the program rules a deployment configured."""
    return ProgramSettings(default_length_weeks=config.program_length_weeks,
                           attendance_threshold=config.program_attendance_percent / 100,
                           hold_to_lost_days=config.program_hold_to_lost_days)


def install_views(couch, records_db: str) -> bool:
    """Create or update the program design document of ``records``; True when written."""
    current = couch.get_or_none(records_db, DESIGN_ID)
    wanted = {'_id': DESIGN_ID, 'language': 'javascript', 'views': VIEWS}
    if current is not None and current.get('views') == VIEWS:
        return False
    if current is not None:
        wanted['_rev'] = current['_rev']
    couch.put(records_db, wanted)
    return True


def warm_views(couch, records_db: str, *, timeout: float = 3600) -> None:
    """Bring every program view up to date (a first build reads every record once).

    Run after installing the views (``fieldvault db init``), so the first
    report after an upgrade or an import does not pay for the build. A
    report that still finds a view building gets 503 and retry-after; the
    database finishes the build meanwhile.
    """
    for name in VIEWS:
        _view(couch, records_db, name, limit=0, timeout=timeout)


def _view(couch, db: str, name: str, *, timeout: float | None = None,
          **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = couch.view(db, DESIGN_ID, name, timeout=timeout, **params)
    return rows


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def _team_of(couch, directory_db: str) -> Callable[[str | None], str | None]:
    cache: dict[str, str | None] = {}

    def team_of(username: str | None) -> str | None:
        if not username:
            return None
        if username not in cache:
            user = couch.get_or_none(directory_db, f'user:{username}')
            cache[username] = user.get('team') if user else None
        return cache[username]
    return team_of


def case_facts(couch, records_db: str, directory_db: str, case: dict[str, Any],
               request: dict[str, Any], extra: Iterable[dict[str, Any]] = (), *,
               field_only: bool = False) -> CaseFacts:
    """Gather what a case's guards need from the youth's other records.

    Args:
        couch: The database client.
        records_db: The ``records`` database.
        directory_db: The ``directory`` database (sealing proposals).
        case: The case record.
        request: The action's parameters (``recipient_org`` of a transfer).
        extra: Records of the youth not stored yet (the rest of a pushed
            batch), counted as if stored.
        field_only: Gather only what field actions need (screenings and
            consents), not check-ins or sealings: a captured case carries
            no other action, and a push should not pay for the rest.
    """
    rows = _view(couch, records_db, 'by_client', key=case['client_id'], include_docs='true')
    docs = [row['doc'] for row in rows if row.get('doc')]
    docs += [doc for doc in extra if doc.get('client_id') == case['client_id']]
    screenings = [doc for doc in docs if doc.get('type') == 'screening']
    consents = [doc for doc in docs if doc.get('type') == 'consent' and not doc.get('revoked_at')]
    participation = any(
        doc.get('consent_type') == 'program_participation'
        and doc.get('signer') in ('youth', 'youth_and_guardian')
        and doc.get('method') != 'oral' for doc in consents)
    transfer = any(
        doc.get('consent_type') == 'release_of_information'
        and request.get('recipient_org') and doc.get('recipient_org') == request['recipient_org']
        for doc in consents)
    checkins = [] if field_only else [
        row['value'] for row in _view(couch, records_db, 'checkins', key=case['_id'])]
    sealed = not field_only and any(
        doc.get('status') == 'sealed' and doc.get('client_id') == case['client_id']
        for doc in couch.iter_prefix(directory_db, 'sealing:'))
    return CaseFacts(
        screening_assent=any(doc.get('assent') == 'given' for doc in screenings),
        confidentiality_explained=any(doc.get('confidentiality_limits_explained') is True
                                      for doc in screenings),
        participation_consent=participation,
        transfer_release=bool(transfer),
        checkin_weeks=frozenset(week for week, _attended in checkins),
        attended_weeks=frozenset(week for week, attended in checkins if attended),
        sealing_approved=sealed,
    )


class CaptureGuards:
    """The guards of field actions on a captured case, checked against the youth's records.

    A case captured on a tablet (sync push) or at the desk may carry field
    actions (``schemas.lifecycle.FIELD_ACTIONS``) whose guards need other
    records: a screening recording assent, a signed participation consent.
    The capture rule itself (``capture_refusal``) sees the case alone; this
    checks each newly recorded action's guards as ``POST
    /cases/{id}/actions`` would, counting the rest of a pushed batch as
    stored (a tablet pushes the screening and the case together).
    """

    def __init__(self, services) -> None:
        self._couch = services.couch
        self._records = services.db('records')
        self._directory = services.db('directory')
        self._settings = settings_from_config(services.config)

    def __call__(self, doc: dict[str, Any], stored: dict[str, Any] | None,
                 batch: Iterable[Any] = ()) -> tuple[str, str] | None:
        """Return ``(guard, reason)`` for the first guard a new action fails, or None.

        Args:
            doc: The record as captured.
            stored: The revision stored under its id, if any.
            batch: The other documents pushed with it; only records of the
                same youth that pass their schema count.
        """
        if doc.get('type') != 'enrollment' or not isinstance(doc.get('client_id'), str) \
                or not lifecycle.captured_needs_facts(doc, stored):
            return None
        extra = []
        for other in batch:
            if isinstance(other, dict) and other is not doc and not other.get('_deleted') \
                    and other.get('type') in ('screening', 'consent') \
                    and other.get('client_id') == doc['client_id']:
                try:
                    schemas.validate_document(other, sealed=True)
                except schemas.errors.SchemasError:
                    continue
                extra.append(other)
        facts = case_facts(self._couch, self._records, self._directory, doc, {}, extra,
                           field_only=True)
        return lifecycle.captured_guard_refusal(doc, stored, facts, self._settings)


class Cases:
    """Lifecycle actions on cases, and what is due, for one service instance."""

    def __init__(self, services) -> None:
        self._couch = services.couch
        self._records = services.db('records')
        self._directory = services.db('directory')
        self._audit = services.audit
        self._clock = lambda: services.clock()
        self.settings = settings_from_config(services.config)

    def now(self) -> dt.datetime:
        """Return the service's present time (tests move the clock)."""
        return dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc).replace(microsecond=0)

    def get(self, case_id: str, principal) -> dict[str, Any]:
        """Return a case of the caller's team.

        Raises:
            ProgramError: 404 when missing, not a case, or outside the team
                (the same answer, so ids cannot be probed).
        """
        doc = (self._couch.get_or_none(self._records, case_id)
               if case_id.startswith('enrollment:') else None)
        team_of = _team_of(self._couch, self._directory)
        if doc is None or doc.get('type') != 'enrollment' or not principal.team \
                or team_of(doc.get('owner')) != principal.team:
            raise ProgramError(404, 'not_found', 'No such case on your team.')
        return doc

    def facts(self, case: dict[str, Any], request: dict[str, Any]) -> CaseFacts:
        """Gather what the guards need from the youth's other records."""
        return case_facts(self._couch, self._records, self._directory, case, request)

    def act(self, case_id: str, action: str, principal,
            request: dict[str, Any]) -> dict[str, Any]:
        """Take ``action`` on a case as ``principal``; return the case as stored.

        The actor's role is the first of their roles the action allows (so a
        refusal for a role that may not act names the ``actor`` guard).

        Raises:
            ProgramError: 404 (no such case on the team), 409 (changed meanwhile).
            TransitionRefused: A guard failed; ``guard`` names it.
        """
        case = self.get(case_id, principal)
        known = lifecycle.ACTIONS.get(action)
        allowed = [role for role in principal.roles if known and role in known.actors]
        role = allowed[0] if allowed else (principal.roles[0] if principal.roles else '')
        at = _iso(self.now())
        after = lifecycle.next_case(case, action, role=role, by=principal.id, at=at,
                                    facts=self.facts(case, request), settings=self.settings,
                                    request=request)
        # The case as it will be stored must still be a valid record (the
        # parameters of the action included); sealed fields stay as they are.
        schemas.validate_document(after, sealed=True)
        try:
            after['_rev'] = self._couch.put(self._records, after)
        except DocumentConflict:
            raise ProgramError(409, 'conflict', 'The case changed meanwhile; read it and retry.'
                               ) from None
        if action == 'seal':
            self._record_sealing(after, principal, at)
        self._audit.record('case_action', actor=f'user:{principal.id}', subject=case_id,
                           team=principal.team,
                           details={'action': action, 'from': case['state'], 'to': after['state']})
        return after

    def _record_sealing(self, case: dict[str, Any], principal, at: str) -> None:
        """Keep the non-identifying tally of a sealing carried out (``case_sealing``)."""
        proposal: dict[str, Any] = next(
            (doc for doc in self._couch.iter_prefix(self._directory, 'sealing:')
             if doc.get('status') == 'sealed' and doc.get('client_id') == case['client_id']),
            {})
        basis = {'erasure_request': 'youth_request', 'legal_order': 'court_order'}.get(
            proposal.get('reason', ''), 'completion' if case['history'][-1]['from'] == 'completed'
            else 'retention_expiry')
        proposed_at = proposal.get('proposed_at')
        self._couch.put(self._records, {
            '_id': f'case_sealing:{uuid.uuid4()}', 'type': 'case_sealing',
            'schema': 'case_sealing/1', 'org': case['org'], 'owner': principal.id,
            'created_at': at, 'updated_at': at, 'client_id': case['client_id'],
            'enrollment_id': case['_id'], 'basis': basis,
            'proposed_by': proposal.get('proposed_by', 'unknown'),
            'proposed_at': _iso(dt.datetime.fromtimestamp(proposed_at, dt.timezone.utc))
            if proposed_at else at,
            'approved_by': proposal.get('approved_by', principal.id),
            'sealed_at': at, 'keys_destroyed': True,
        })

    def due(self, principal) -> list[dict[str, Any]]:
        """Return what is due on the caller's team's cases, oldest first."""
        now = self.now()
        team_of = _team_of(self._couch, self._directory)
        cases = [row['doc'] for row in _view(self._couch, self._records, 'cases',
                                             include_docs='true')
                 if row.get('doc') and principal.team
                 and team_of(row['doc'].get('owner')) == principal.team]
        active = [case['_id'] for case in cases if case['state'] == 'active']
        weeks: dict[str, set[int]] = {}
        if active:
            for row in _view(self._couch, self._records, 'checkins', keys=active):
                weeks.setdefault(row['key'], set()).add(row['value'][0])
        pending = {doc.get('client_id') for doc in self._couch.iter_prefix(
            self._directory, 'sealing:') if doc.get('status') in ('proposed', 'approving')}
        items = []
        for case in cases:
            items += self._case_due(case, now, weeks.get(case['_id'], set()), pending)
        return sorted(items, key=lambda item: (item['due_at'], item['case']))

    def _case_due(self, case: dict[str, Any], now: dt.datetime, weeks: set[int],
                  pending: set[Any]) -> list[dict[str, Any]]:
        items = []
        base = {'case': case['_id'], 'state': case['state']}
        if case['state'] == 'active' and case.get('program_start') and case.get('current_week'):
            start = dt.datetime.combine(dt.date.fromisoformat(case['program_start']),
                                        dt.time(), dt.timezone.utc)
            for week in range(1, case['current_week'] + 1):
                ends = start + dt.timedelta(days=7 * week)
                if ends <= now and week not in weeks:
                    items.append({**base, 'kind': 'missed_checkin', 'week': week,
                                  'due_at': _iso(ends)})
        if case['state'] == 'on_hold':
            held = next(entry for entry in reversed(case['history'])
                        if entry['action'] == 'hold')
            due = dt.datetime.fromisoformat(held['at'].replace('Z', '+00:00')) + dt.timedelta(
                days=self.settings.hold_to_lost_days)
            if due <= now:
                items.append({**base, 'kind': 'lost_contact', 'action': 'lose_contact',
                              'due_at': _iso(due)})
        if case['state'] != 'sealed':
            requested = case.get('sealing_requested_at')
            due_at = lifecycle.sealing_due_at(case, self.settings)
            if requested or (due_at is not None and due_at <= now):
                basis = ('youth_request' if requested else
                         'completion' if case['state'] == 'completed' else 'retention_expiry')
                items.append({
                    **base, 'kind': 'sealing_due', 'basis': basis,
                    'due_at': requested or (_iso(due_at) if due_at is not None else None),
                    'proposal_pending': case['client_id'] in pending,
                    'proposal': {'client_id': case['client_id'],
                                 'reason': ('erasure_request' if requested
                                            else 'retention_expired')}})
        return items


@dataclasses.dataclass(frozen=True)
class ReportQuery:
    """What a caller asked for, once checked."""

    measure: str
    period: str
    by: str | None
    since: str | None
    until: str | None


def _period_of(month: str, period: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    if period == 'month':
        return month
    if period == 'quarter':
        return f'{year}-Q{(number - 1) // 3 + 1}'
    # The federal fiscal year starts on 1 October.
    return f'FFY{year + 1 if number >= 10 else year}'


def _quarter_end(label: str) -> dt.date:
    year, quarter = int(label[:4]), int(label[-1])
    first_of_next = dt.date(year + (quarter == 4), 1 if quarter == 4 else quarter * 3 + 1, 1)
    return first_of_next - dt.timedelta(days=1)


def counted(measure: str, *, part2: bool, sealed: bool, suppressed: bool) -> bool:
    """Decide whether a record of a case enters a report's figures.

    APPSEC: a 42 CFR Part 2 case blocks every export and every view but its
    advocates' own (domain reference §2.6), so nothing of it is counted,
    for anyone. A sealed case leaves only non-identifying aggregate tallies
    behind (§2.7): its records stay in the suppressed organisation figures,
    but leave a team's unsuppressed figures, which are close to its rows;
    the sealing itself (``cases_sealed``, ``records_sealed``) is the tally
    and is counted everywhere.

    Args:
        measure: The measure being counted.
        part2: The case is flagged ``part2_flag``.
        sealed: The case is sealed.
        suppressed: The figures are suppressed (admin, liaison, export).
    """
    if part2:
        return False
    return not sealed or suppressed or measure in SEALING_TALLIES


@dataclasses.dataclass(frozen=True)
class _Counted:
    """One grouped view row, with its case's dimensions joined."""

    month: str
    owner: str
    dims: tuple[str, str, str, str]
    part2: bool
    sealed: bool
    count: int


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def hmis_csv(report: dict[str, Any]) -> str:
    """Return the comparable-database aggregate as CSV: element, line, count (``S`` withheld)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(['element', 'line', 'count'])
    for section in report['sections']:
        for line, count in zip(section['lines'], section['counts']):
            writer.writerow([section['element'], line, 'S' if count is None else count])
        total = section['total']
        writer.writerow([section['element'], 'total', 'S' if total is None else total])
    return buffer.getvalue()


def table_csv(report: dict[str, Any]) -> str:
    """Return a report table as CSV: one row per period, totals last; withheld as ``S``.

    A median with no case behind it is left empty, not marked withheld.
    """
    counts = report.get('cases') or {
        'cells': report['cells'], 'row_totals': report['row_totals'],
        'column_totals': report['column_totals'], 'total': report['total']}

    def shown(value: Any, count: Any) -> Any:
        if value is None:
            return '' if count == 0 else 'S'
        return value
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(['period', *report['columns'], 'total'])
    for label, cells, total, cell_counts, total_count in zip(
            report['rows'], report['cells'], report['row_totals'], counts['cells'],
            counts['row_totals']):
        writer.writerow([label, *map(shown, cells, cell_counts), shown(total, total_count)])
    writer.writerow(['total', *map(shown, report['column_totals'], counts['column_totals']),
                     shown(report['total'], counts['total'])])
    return buffer.getvalue()


def _grid(table: Table, hidden: set, figure_of: Callable[[tuple], Any],
          empty: Any = 0) -> dict[str, Any]:
    """Lay a table's figures out as cells and totals, withheld positions as None.

    A one-column table has no separate row totals: each row's total is its
    cell. A table without rows has the total ``empty``.
    """
    def figure(position: tuple) -> Any:
        return None if position in hidden else figure_of(position)
    rows, columns = len(table.rows), len(table.cols)
    two_way = columns > 1
    return {
        'cells': [[figure(('cell', r, c)) for c in range(columns)] for r in range(rows)],
        'row_totals': [figure(('row', r)) if two_way else figure(('cell', r, 0))
                       for r in range(rows)],
        'column_totals': [figure(('col', c)) for c in range(columns)],
        'total': (figure(('total',)) if two_way else figure(('col', 0))) if rows else empty,
    }


class Reports:
    """Aggregate counts from the ``counts`` view, scoped and suppressed by role."""

    def __init__(self, services, *, view_timeout: float | None = None) -> None:
        self._couch = services.couch
        self._records = services.db('records')
        self._directory = services.db('directory')
        self._audit = services.audit
        self._clock = lambda: services.clock()
        self._lag_days = services.config.report_liaison_lag_days
        self._view_timeout = view_timeout

    def check(self, measure: str, params: dict[str, Any], principal) -> ReportQuery:
        """Check a request against the measures and the caller's rules.

        Raises:
            ProgramError: 404 for an unknown measure, 422 for a bad
                parameter, 403 (``liaison_rules``) for what a liaison may not ask.
        """
        if measure not in MEASURES and measure not in MEDIANS:
            raise ProgramError(404, 'not_found', 'No such report measure.')
        fields = {}
        period = params.get('period', 'quarter')
        if period not in PERIODS:
            fields['period'] = [f'Must be one of: {", ".join(PERIODS)}.']
        by = params.get('by') or None
        if by is not None and by not in DIMENSIONS:
            fields['by'] = [f'Must be one of: {", ".join(DIMENSIONS)}.']
        for name in ('since', 'until'):
            value = params.get(name)
            if value is not None and not re.fullmatch(_MONTH, value):
                fields[name] = ['Must be a month YYYY-MM.']
        if fields:
            raise ProgramError(422, 'validation_failed', 'The report parameters are not valid.',
                               fields)
        if 'liaison' in principal.roles and period != 'quarter':
            raise ProgramError(403, 'liaison_rules', 'The liaison sees quarterly figures only.')
        return ReportQuery(measure, period, by, params.get('since'), params.get('until'))

    def scope(self, principal) -> tuple[str, bool]:
        """Return ``(team or '', suppressed)`` for the caller.

        APPSEC: the liaison role wins over any other role the same account
        holds, so it never sees an unsuppressed figure.
        """
        if 'liaison' in principal.roles or not set(principal.roles) & set(TEAM_ROLES):
            return '', True
        if not principal.team:
            raise ProgramError(403, 'no_team', 'Team figures need a team on your account.')
        return principal.team, False

    def _rows(self, measure: str, since: str | None, until: str | None) -> list[_Counted]:
        """Read one measure's grouped rows, each with its case's dimensions.

        Records of a case (``LINKED_MEASURES``) get the dimensions, Part 2
        flag and sealing of the case they name, read from ``dims`` for the
        links found; a link not (yet) stored counts as ``unknown``.
        """
        start, end = [measure, since or '0000-00'], [measure, until or '9999-99', {}]
        if measure not in LINKED_MEASURES:
            return [_Counted(key[1], key[2], (key[3], key[4], key[5], key[6]), False,
                             key[7] == 'sealed', row['value'])
                    for row in _view(self._couch, self._records, 'counts', startkey=start,
                                     endkey=end, group='true', timeout=self._view_timeout)
                    for key in (row['key'],)]
        rows = _view(self._couch, self._records, 'linked', startkey=start, endkey=end,
                     group='true', timeout=self._view_timeout)
        links = sorted({row['key'][3] for row in rows if row['key'][3]})
        if len(links) > _KEYED_LINKS_MAX:
            # pouchdb-server answers a keyed read key by key: past a few
            # hundred cases one sequential read of every case's dimensions
            # is several times faster (docs/BENCHMARKS.md).
            found = _view(self._couch, self._records, 'dims', timeout=self._view_timeout)
        else:
            found = (_view(self._couch, self._records, 'dims', keys=links,
                           timeout=self._view_timeout) if links else [])
        wanted = set(links)
        dims: dict[str, list[Any]] = {}
        for row in found:
            if row['key'] in wanted:
                known = dims.get(row['key'])
                # A youth with more than one case: any Part 2 or sealed case
                # marks all of the youth's client-linked records.
                dims[row['key']] = row['value'] if known is None else [
                    *known[:3], known[3] or row['value'][3], known[4] or row['value'][4]]
        unknown = ['unknown', 'unknown', 'unknown', False, False]
        result = []
        for row in rows:
            key = row['key']
            area, age, source, part2, sealed = dims.get(key[3], unknown)
            result.append(_Counted(key[1], key[2], (area, age, source, key[4]), part2 is True,
                                   sealed is True, row['value']))
        return result

    def _visible(self, label: str, liaison: bool, today: dt.date) -> bool:
        """Whether a period may be shown: the liaison sees quarters only after the lag."""
        return not liaison or _quarter_end(label) + dt.timedelta(days=self._lag_days) <= today

    def report(self, measure: str, params: dict[str, Any], principal) -> dict[str, Any]:
        """Return one table: periods by (at most) one dimension, with totals."""
        query = self.check(measure, params, principal)
        team, suppressed = self.scope(principal)
        if query.measure in MEDIANS:
            return self._median_report(query, team, suppressed, principal)
        liaison = 'liaison' in principal.roles
        team_of = _team_of(self._couch, self._directory)
        today = dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc).date()
        counts: dict[tuple[str, str], int] = {}
        for row in self._rows(query.measure, query.since, query.until):
            if not counted(query.measure, part2=row.part2, sealed=row.sealed,
                           suppressed=suppressed):
                continue
            if team and team_of(row.owner) != team:
                continue
            label = _period_of(row.month, query.period)
            if not self._visible(label, liaison, today):
                continue
            column = row.dims[_DIMENSION_INDEX[query.by]] if query.by else 'count'
            counts[(label, column)] = counts.get((label, column), 0) + row.count
        labels = sorted({label for label, _ in counts})
        columns = sorted({column for _, column in counts}) or ['count']
        table = Table(labels, columns, [[counts.get((label, column), 0) for column in columns]
                                        for label in labels])
        hidden = suppress(table) if suppressed and labels else set()
        report = {
            'measure': query.measure, 'period': query.period, 'by': query.by,
            'scope': f'team:{team}' if team else 'organisation', 'suppressed': suppressed,
            'rows': labels, 'columns': columns,
            **_grid(table, hidden, lambda position: table.value(position)),
        }
        if liaison:
            report['lag_days'] = self._lag_days
        self._audit_read(principal, query, suppressed)
        return report

    def _median_report(self, query: ReportQuery, team: str, suppressed: bool,
                       principal) -> dict[str, Any]:
        """Return median hours to first service: periods of consent by one dimension.

        Each figure is the median over the cases behind it that have had a
        first service; ``cases`` gives how many. Where the count of those
        cases is withheld (primary or secondary suppression of the count
        table), the median is withheld too.
        """
        liaison = 'liaison' in principal.roles
        team_of = _team_of(self._couch, self._directory)
        today = dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc).date()
        hours: dict[tuple[str, str], list[float]] = {}
        for row in _view(self._couch, self._records, 'first_service', group='true',
                         timeout=self._view_timeout):
            value = row['value']
            if value.get('d') is None or value.get('s') is None or value.get('f') is None:
                continue
            owner, area, age, source, part2, sealed, month = value['d']
            if not counted(query.measure, part2=part2 is True, sealed=sealed is True,
                           suppressed=suppressed):
                continue
            if (query.since and month < query.since) or (query.until and month > query.until):
                continue
            if team and team_of(owner) != team:
                continue
            label = _period_of(month, query.period)
            if not self._visible(label, liaison, today):
                continue
            column = ((area, age, source, 'all')[_DIMENSION_INDEX[query.by]]
                      if query.by else 'median')
            # A service recorded before the consent (a referral dated the same
            # day) counts as served at once, never as negative time.
            hours.setdefault((label, column), []).append(
                max(0.0, (value['f'] - value['s']) / 3_600_000))
        labels = sorted({label for label, _ in hours})
        columns = sorted({column for _, column in hours}) or ['median']
        table = Table(labels, columns, [[len(hours.get((label, column), ()))
                                         for column in columns] for label in labels])
        hidden = suppress(table) if suppressed and labels else set()

        def pooled(position: tuple) -> float | None:
            if position[0] == 'cell':
                picked = [(labels[position[1]], columns[position[2]])]
            elif position[0] == 'row':
                picked = [(labels[position[1]], column) for column in columns]
            elif position[0] == 'col':
                picked = [(label, columns[position[1]]) for label in labels]
            else:
                picked = list(hours)
            values = [value for cell in picked for value in hours.get(cell, ())]
            return _median(values) if values else None
        report = {
            'measure': query.measure, 'unit': 'hours', 'period': query.period, 'by': query.by,
            'scope': f'team:{team}' if team else 'organisation', 'suppressed': suppressed,
            'rows': labels, 'columns': columns, **_grid(table, hidden, pooled, empty=None),
            'cases': _grid(table, hidden, lambda position: table.value(position)),
        }
        if liaison:
            report['lag_days'] = self._lag_days
        self._audit_read(principal, query, suppressed)
        return report

    def _audit_read(self, principal, query: ReportQuery, suppressed: bool) -> None:
        self._audit.record('report_read', actor=f'user:{principal.id}', subject=query.measure,
                           team=principal.team,
                           details={'period': query.period, 'by': query.by,
                                    'suppressed': suppressed})

    def hmis_aggregate(self, params: dict[str, Any], principal) -> dict[str, Any]:
        """Return the comparable-database aggregate: one suppressed section per element.

        For a funder or an HMIS comparable-database submission, so always
        organisation-wide and suppressed, whoever asks. Each section is a
        one-way table (its lines add up to its total) suppressed on its own.
        """
        fields = {name: ['Must be a month YYYY-MM.'] for name in ('since', 'until')
                  if params.get(name) is not None and not re.fullmatch(_MONTH, params[name])}
        if fields:
            raise ProgramError(422, 'validation_failed', 'The report parameters are not valid.',
                               fields)
        sections = []
        for measure, by in HMIS_SECTIONS:
            counts: dict[str, int] = {}
            for row in self._rows(measure, params.get('since'), params.get('until')):
                if counted(measure, part2=row.part2, sealed=row.sealed, suppressed=True):
                    line = row.dims[_DIMENSION_INDEX[by]]
                    counts[line] = counts.get(line, 0) + row.count
            lines = sorted(counts)
            table = Table(lines, ['count'], [[counts[line]] for line in lines])
            hidden = suppress(table) if lines else set()
            sections.append({
                'element': f'{measure} by {by}', 'lines': lines,
                'counts': [None if ('cell', i, 0) in hidden else counts[line]
                           for i, line in enumerate(lines)],
                'total': (None if ('col', 0) in hidden else table.value(('col', 0)))
                if lines else 0})
        self._audit.record('report_read', actor=f'user:{principal.id}', subject='hmis_aggregate',
                           team=principal.team, details={'suppressed': True})
        return {'report': 'hmis_aggregate', 'scope': 'organisation', 'suppressed': True,
                'since': params.get('since'), 'until': params.get('until'),
                'sections': sections}

    @staticmethod
    def catalogue() -> dict[str, Any]:
        """Return the measures, dimensions and periods a report can use."""
        return {'measures': MEASURES, 'medians': MEDIANS, 'dimensions': list(DIMENSIONS),
                'periods': list(PERIODS),
                'age_bands': list(program_codes.AGE_BANDS)}
