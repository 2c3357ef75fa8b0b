"""Aggregate reports through the real API and CouchDB views: team scope for case
staff, suppressed organisation-wide figures for the admin and the liaison."""

from __future__ import annotations

import datetime as dt

import pytest

from service.program import MEASURES, MEDIANS
from service.suppression import SMALL_MAX, SMALL_MIN
from tests import factories

pytestmark = pytest.mark.functional

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)


def _screening(owner, at, area_code='spa-1'):
    return factories.fake_sealed(factories.make_screening(
        owner=owner, administered_at=at, org='org-test'))


def _case(owner, at, area, age='14-15', source='outreach'):
    history = factories._history(factories.ACTIVE_PATH, owner)
    for entry in history:
        entry['at'] = at
    return factories.fake_sealed(factories.make_enrollment(
        owner=owner, org='org-test', history=history, service_area_code=area, age_band=age,
        referral_source=source, created_at=at, updated_at=at))


@pytest.fixture
def data(services, users):
    """Team A: 14 + 3 screenings in 2025-Q4 and 2 in 2026-Q1; team B: 12 in 2025-Q4.
    Enrollments in 2025-Q4 by service area: team A spa-1 x 13, spa-2 x 4; team B spa-1 x 12."""
    services.clock = lambda: NOW.timestamp()
    users.create('w-team-a', ['worker'], team='team-a')
    users.create('w-team-b', ['worker'], team='team-b')
    docs = ([_screening('w-team-a', '2025-11-03T10:00:00Z') for _ in range(14)]
            + [_screening('w-team-a', '2025-12-03T10:00:00Z') for _ in range(3)]
            + [_screening('w-team-a', '2026-02-03T10:00:00Z') for _ in range(2)]
            + [_screening('w-team-b', '2025-10-03T10:00:00Z') for _ in range(12)]
            + [_case('w-team-a', '2025-11-05T10:00:00Z', 'spa-1') for _ in range(13)]
            + [_case('w-team-a', '2025-11-05T10:00:00Z', 'spa-2') for _ in range(4)]
            + [_case('w-team-b', '2025-12-05T10:00:00Z', 'spa-1') for _ in range(12)])
    services.couch.bulk_docs(services.db('records'), docs)
    return docs


def _figures(report):
    yield from (value for row in report['cells'] for value in row)
    yield from report['row_totals']
    yield from report['column_totals']
    yield report['total']


def _assert_suppressed(report):
    assert report['suppressed'] is True
    assert report['scope'] == 'organisation'
    for value in _figures(report):
        assert value is None or not SMALL_MIN <= value <= SMALL_MAX, report


def test_a_supervisor_sees_the_team_figures_by_month(client, users, data):
    headers = users.bearer(users.token('sup-rep', ['supervisor'], team='team-a'))
    answer = client.simulate_get('/reports/screenings', params={'period': 'month'},
                                 headers=headers)
    assert answer.status_code == 200, answer.text
    report = answer.json
    assert (report['scope'], report['suppressed']) == ('team:team-a', False)
    assert report['rows'] == ['2025-11', '2025-12', '2026-02']
    assert report['row_totals'] == [14, 3, 2]
    assert report['total'] == 19


def test_team_scope_by_service_area_and_fiscal_year(client, users, data):
    headers = users.bearer(users.token('sup-rep-b', ['supervisor'], team='team-b'))
    report = client.simulate_get('/reports/enrollments',
                                 params={'period': 'ffy', 'by': 'service_area'},
                                 headers=headers).json
    assert report['rows'] == ['FFY2026']
    assert (report['columns'], report['cells']) == (['spa-1'], [[12]])


def test_the_liaison_gets_suppressed_lagged_quarterly_figures(client, users, data):
    headers = users.bearer(users.token('liaison-rep', ['liaison'], team=None))
    month = client.simulate_get('/reports/screenings', params={'period': 'month'},
                                headers=headers)
    assert (month.status_code, month.json['code']) == (403, 'liaison_rules')
    report = client.simulate_get('/reports/screenings', headers=headers).json
    _assert_suppressed(report)
    # 2026-Q1 ended less than 30 days ago (it has not ended): not shown.
    assert report['rows'] == ['2025-Q4']
    assert report['total'] == 14 + 3 + 12
    by_area = client.simulate_get('/reports/enrollments', params={'by': 'service_area'},
                                  headers=headers).json
    _assert_suppressed(by_area)
    assert by_area['columns'] == ['spa-1', 'spa-2']
    # spa-2 has 4: withheld, and with it enough to keep it from the totals.
    assert by_area['cells'][0][1] is None
    assert None in (by_area['cells'][0][0], by_area['row_totals'][0], by_area['total'])


def test_the_admin_sees_suppressed_organisation_figures(client, users, data):
    headers = users.bearer(users.token('admin-rep', ['admin'], team=None))
    report = client.simulate_get('/reports/screenings', params={'period': 'month'},
                                 headers=headers).json
    _assert_suppressed(report)
    assert report['cells'][report['rows'].index('2025-11')] == [14]


def test_a_liaison_who_also_holds_a_team_role_still_gets_suppressed_figures(
        client, users, data):
    headers = users.bearer(users.token('liaison-sup', ['liaison', 'supervisor'], team='team-a'))
    report = client.simulate_get('/reports/screenings', headers=headers).json
    _assert_suppressed(report)


def test_every_route_gives_a_liaison_suppressed_aggregates_only(app, client, users, data):
    headers = users.bearer(users.token('liaison-all', ['liaison'], team=None))
    reached = []
    for path, resource in app.fieldvault_routes:
        if 'liaison' not in resource.auth.get('GET', ()):
            continue
        if path == '/reports/{measure}':
            for measure in MEASURES:
                for by in (None, 'service_area', 'age_band', 'referral_source', 'detail'):
                    params = {'by': by} if by else {}
                    answer = client.simulate_get(f'/reports/{measure}', params=params,
                                                 headers=headers)
                    assert answer.status_code == 200, answer.text
                    _assert_suppressed(answer.json)
                    csv_answer = client.simulate_get(f'/reports/{measure}',
                                                     params={**params, 'format': 'csv'},
                                                     headers=headers)
                    cells = [cell for line in csv_answer.text.splitlines()[1:]
                             for cell in line.split(',')[1:]]
                    assert all(cell == 'S' or not SMALL_MIN <= int(cell) <= SMALL_MAX
                               for cell in cells), csv_answer.text
                    reached.append(measure)
        elif '{' not in path:
            answer = client.simulate_get(path, headers=headers)
            assert answer.status_code < 500
            reached.append(path)
    for measure in MEDIANS:
        for by in (None, 'service_area', 'age_band', 'referral_source'):
            params = {'by': by} if by else {}
            report = client.simulate_get(f'/reports/{measure}', params=params,
                                         headers=headers).json
            _assert_suppressed({**report, **report['cases']})
            for median, count in zip(_figures(report), _figures(report['cases'])):
                assert median is None or count not in (None, 0), report
            reached.append(measure)
    assert {*MEASURES, *MEDIANS} <= set(reached)
    for path in ('/program/due', f'/cases/{data[-1]["_id"]}'):
        assert client.simulate_get(path, headers=headers).status_code == 403


def test_csv_export_for_the_team(client, users, data):
    headers = users.bearer(users.token('sup-csv', ['supervisor'], team='team-a'))
    answer = client.simulate_get('/reports/enrollments',
                                 params={'period': 'quarter', 'by': 'service_area',
                                         'format': 'csv'}, headers=headers)
    assert answer.headers['content-type'].startswith('text/csv')
    assert answer.text.splitlines() == ['period,spa-1,spa-2,total', '2025-Q4,13,4,17',
                                        'total,13,4,17']


def test_bad_report_parameters_are_named(client, users, data):
    headers = users.bearer(users.token('sup-bad', ['supervisor'], team='team-a'))
    answer = client.simulate_get('/reports/screenings',
                                 params={'period': 'week', 'by': 'name', 'since': '2025'},
                                 headers=headers)
    assert answer.status_code == 422
    assert set(answer.json['fields']) == {'period', 'by', 'since'}
    assert client.simulate_get('/reports/names', headers=headers).status_code == 404


def test_the_comparable_database_aggregate_is_suppressed_for_everyone(client, users, data):
    for name, roles, team in (('sup-hmis', ['supervisor'], 'team-a'),
                              ('admin-hmis', ['admin'], None)):
        headers = users.bearer(users.token(name, roles, team=team))
        report = client.simulate_get('/reports-hmis', headers=headers).json
        assert (report['scope'], report['suppressed']) == ('organisation', True)
        sections = {section['element']: section for section in report['sections']}
        # 14 + 3 + 2 + 12 screenings of the instrument QYIT, both teams.
        assert sections['screenings by detail']['lines'] == ['QYIT']
        assert sections['screenings by detail']['total'] == 31
        for section in report['sections']:
            for value in [*section['counts'], section['total']]:
                assert value is None or not SMALL_MIN <= value <= SMALL_MAX, section
        lines = client.simulate_get('/reports-hmis', params={'format': 'csv'},
                                    headers=headers).text.splitlines()
        assert lines[0] == 'element,line,count'
        assert 'enrollments by age_band,14-15,29' in lines
