"""Routes of the program: case actions, what is due, and aggregate reports.

Thin: the rules live in ``schemas.lifecycle`` (which action, by whom, under
which guards), ``service.program`` (facts, timers, views, scoping) and
``service.suppression``.
"""

from __future__ import annotations

import falcon

from service.openapi_bodies import CaseActionBody, load_body
from service.program import Cases, ProgramError, Reports, hmis_csv, table_csv

__all__ = ['program_routes']

#: Read-only aggregate figures: case staff (their team), admin and liaison (suppressed).
REPORT_READERS = ('advocate', 'supervisor', 'admin', 'liaison')


def _case_view(case: dict) -> dict:
    """The non-identifying part of a case (sealed fields are left out)."""
    shown = ('_id', 'state', 'history', 'client_id', 'referral_source', 'service_area_code',
             'age_band', 'program_length_weeks', 'current_week', 'assigned_advocate_id',
             'service_plan', 'program_start', 'consented_at', 'enrolled_at',
             'sealing_requested_at', 'part2_flag')
    return {name: case[name] for name in shown if name in case}


class CaseResource:
    """``GET /cases/{case_id}``: a case of your team, its state and history."""

    auth = {'GET': ('worker', 'advocate', 'supervisor')}

    def __init__(self, cases: Cases) -> None:
        self._cases = cases

    def on_get(self, req, resp, case_id):
        principal = req.context.principal
        case = self._cases.get(case_id, principal)
        # A 42 CFR Part 2 case is shown to case staff only, as if missing to others.
        if case.get('part2_flag') and not principal.has_any(('advocate', 'supervisor')):
            raise ProgramError(404, 'not_found', 'No such case on your team.')
        resp.media = _case_view(case)


class CaseActionsResource:
    """``POST /cases/{case_id}/actions``: take a lifecycle action on a case.

    Body: ``{"action": <name>, ...parameters}``. A refused action answers 409
    ``transition_refused`` with ``fields.guard`` naming the failed guard.
    """

    auth = {'POST': ('worker', 'advocate', 'supervisor')}
    openapi_request = {'POST': 'CaseActionBody'}

    def __init__(self, cases: Cases) -> None:
        self._cases = cases

    def on_post(self, req, resp, case_id):
        body = dict(load_body(req, CaseActionBody))
        action = body.pop('action')
        case = self._cases.act(case_id, action, req.context.principal, body)
        resp.media = _case_view(case)


class DueResource:
    """``GET /program/due``: missed check-ins, holds passing to lost contact, sealings due."""

    auth = {'GET': ('supervisor',)}

    def __init__(self, cases: Cases) -> None:
        self._cases = cases

    def on_get(self, req, resp):
        resp.media = {'due': self._cases.due(req.context.principal)}


class ReportsResource:
    """``GET /reports``: the measures, dimensions and periods reports offer."""

    auth = {'GET': REPORT_READERS}

    def on_get(self, req, resp):
        resp.media = Reports.catalogue()


class ReportResource:
    """``GET /reports/{measure}``: one aggregate table (``?period=&by=&since=&until=&format=csv``)."""

    auth = {'GET': REPORT_READERS}

    def __init__(self, reports: Reports) -> None:
        self._reports = reports

    def on_get(self, req, resp, measure):
        params = {name: req.get_param(name) for name in ('period', 'by', 'since', 'until')
                  if req.get_param(name) is not None}
        report = self._reports.report(measure, params, req.context.principal)
        if req.get_param('format') == 'csv':
            resp.content_type = 'text/csv; charset=utf-8'
            resp.text = table_csv(report)
            resp.status = falcon.HTTP_200
            return
        resp.media = report


class HmisAggregateResource:
    """``GET /reports-hmis``: the comparable-database aggregate, suppressed (``?since=&until=&format=csv``)."""

    auth = {'GET': ('supervisor', 'admin')}

    def __init__(self, reports: Reports) -> None:
        self._reports = reports

    def on_get(self, req, resp):
        params = {name: req.get_param(name) for name in ('since', 'until')
                  if req.get_param(name) is not None}
        report = self._reports.hmis_aggregate(params, req.context.principal)
        if req.get_param('format') == 'csv':
            resp.content_type = 'text/csv; charset=utf-8'
            resp.text = hmis_csv(report)
            return
        resp.media = report


def program_routes(services) -> list[tuple[str, object]]:
    """Return the program's routes, wired to one ``Cases`` and one ``Reports``."""
    cases, reports = Cases(services), Reports(services)
    return [
        ('/cases/{case_id}', CaseResource(cases)),
        ('/cases/{case_id}/actions', CaseActionsResource(cases)),
        ('/program/due', DueResource(cases)),
        ('/reports', ReportsResource()),
        ('/reports/{measure}', ReportResource(reports)),
        ('/reports-hmis', HmisAggregateResource(reports)),
    ]
