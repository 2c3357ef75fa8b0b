"""Reports of a case's records by the case's dimensions, with Part 2 and sealed cases
kept out where the rules say so, and the median time to first service, through the
real API and the CouchDB views of a real pouchdb-server."""

from __future__ import annotations

import datetime as dt

import pytest

from service import program
from service.program import LINKED_MEASURES
from service.suppression import SMALL_MAX, SMALL_MIN
from tests import factories

pytestmark = pytest.mark.functional

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)
ORG = 'org-test'
SEALED_PATH = (*factories.ACTIVE_PATH, ('withdraw', 'advocate'), ('seal', 'supervisor'))


def _case(owner, *, area, age='16-17', source='school', part2=False, sealed=False,
          consented_at='2025-11-03T10:00:00Z'):
    path = SEALED_PATH if sealed else factories.ACTIVE_PATH
    overrides = {'state': 'sealed', 'current_week': factories.OMIT} if sealed else {}
    return factories.fake_sealed(factories.make_enrollment(
        owner=owner, org=ORG, history=factories._history(path, owner), service_area_code=area,
        age_band=age, referral_source=source, part2_flag=part2, consented_at=consented_at,
        **overrides))


def _checkin(case, at, *, week=1, attended=True):
    return factories.fake_sealed(factories.make_weekly_checkin(
        owner=case['owner'], org=ORG, client_id=case['client_id'], enrollment_id=case['_id'],
        week_number=week, checked_in_at=at, attended=attended,
        services_received=['education'] if attended else factories.OMIT))


def _referral(case, on, outcome='accepted', **parent):
    parent = parent or {'enrollment_id': case['_id'], 'client_id': case['client_id']}
    return factories.fake_sealed(factories.make_referral(
        owner=case['owner'] if case else 'w-dims-a', org=ORG, referred_at=on, outcome=outcome,
        outcome_at=on if outcome != 'pending' else factories.OMIT, **parent))


def _exit(case, on):
    return factories.fake_sealed(factories.make_exit(
        owner=case['owner'], org=ORG, client_id=case['client_id'], enrollment_id=case['_id'],
        enrolled_on='2025-11-03', exit_at=on, exit_reason='youth_voluntarily_left_early',
        completion_notice_sent=False, completion_notice_release_id=factories.OMIT))


def _mandated(case, at):
    return factories.fake_sealed(factories.make_mandated_report(
        owner=case['owner'], org=ORG, client_id=case['client_id'], made_at=at))


@pytest.fixture
def team(services, users):
    services.clock = lambda: NOW.timestamp()
    users.create('w-dims-a', ['worker'], team='team-a')
    users.create('w-dims-b', ['worker'], team='team-b')
    return {
        'supervisor': users.bearer(users.token('sup-dims', ['supervisor'], team='team-a')),
        'admin': users.bearer(users.token('admin-dims', ['admin'], team=None)),
        'liaison': users.bearer(users.token('liaison-dims', ['liaison'], team=None)),
    }


@pytest.fixture
def cases(services):
    """Team A, 2025-11: an open case in spa-1 (12 check-ins, a referral, an exit, a
    mandated report), a Part 2 case in spa-2 (3 check-ins, the same records), a sealed
    case in spa-3 (11 check-ins); a referral made from a contact in spa-9."""
    open_case = _case('w-dims-a', area='spa-1')
    part2 = _case('w-dims-a', area='spa-2', age='14-15', source='probation', part2=True)
    sealed = _case('w-dims-a', area='spa-3', sealed=True)
    contact = factories.fake_sealed(factories.make_contact(
        owner='w-dims-a', org=ORG, service_area_code='spa-9'))
    docs = [open_case, part2, sealed, contact,
            *[_checkin(open_case, f'2025-11-{day:02d}T10:00:00Z') for day in range(4, 16)],
            *[_checkin(part2, f'2025-11-{day:02d}T10:00:00Z') for day in range(4, 7)],
            *[_checkin(sealed, f'2025-11-{day:02d}T10:00:00Z') for day in range(4, 15)],
            _referral(open_case, '2025-11-04'), _referral(part2, '2025-11-04'),
            _referral({'owner': 'w-dims-a'}, '2025-11-05', contact_id=contact['_id'],
                      enrollment_id=None, client_id=None),
            _exit(open_case, '2025-11-20'), _exit(part2, '2025-11-20'),
            _mandated(open_case, '2025-11-06T10:00:00Z'), _mandated(part2, '2025-11-06T10:00:00Z')]
    services.couch.bulk_docs(services.db('records'), docs)
    return {'open': open_case, 'part2': part2, 'sealed': sealed}


def _get(client, headers, measure, **params):
    answer = client.simulate_get(f'/reports/{measure}', params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json


def _by_column(report):
    return {column: report['column_totals'][index]
            for index, column in enumerate(report['columns'])}


def test_records_of_a_case_are_counted_by_the_case_dimensions(client, team, cases):
    sup = team['supervisor']
    checkins = _get(client, sup, 'checkins', period='month', by='service_area')
    assert checkins['rows'] == ['2025-11']
    assert _by_column(checkins) == {'spa-1': 12}
    referrals = _get(client, sup, 'referrals', period='quarter', by='service_area')
    assert _by_column(referrals) == {'spa-1': 1, 'spa-9': 1}
    referrals = _get(client, sup, 'referrals', period='ffy', by='age_band')
    assert referrals['rows'] == ['FFY2026']
    assert _by_column(referrals) == {'16-17': 1, 'unknown': 1}
    exits = _get(client, sup, 'exits', by='referral_source')
    assert _by_column(exits) == {'school': 1}
    mandated = _get(client, sup, 'mandated_reports', by='age_band')
    assert _by_column(mandated) == {'16-17': 1}


@pytest.mark.parametrize('read', ['by_key', 'whole'])
def test_part2_cases_are_counted_nowhere_and_sealed_ones_only_suppressed(
        client, team, cases, monkeypatch, read):
    """Every record of a Part 2 case is left out for everyone; a sealed case's records
    leave the team's figures but stay in the suppressed organisation figures. The cases'
    dimensions are read by key or, past a number of cases, whole."""
    if read == 'whole':
        monkeypatch.setattr(program, '_KEYED_LINKS_MAX', 0)
    by_area = _get(client, team['admin'], 'checkins', by='service_area')
    assert by_area['suppressed'] is True
    assert _by_column(by_area) == {'spa-1': 12, 'spa-3': 11}
    for measure in LINKED_MEASURES:
        for headers in team.values():
            report = _get(client, headers, measure, by='service_area')
            assert 'spa-2' not in report['columns'], (measure, report)
            if headers is team['supervisor']:
                assert 'spa-3' not in report['columns'], (measure, report)
    # The cases' own actions follow the same rules; the sealing is the tally left.
    enrollments = _get(client, team['supervisor'], 'enrollments', by='service_area')
    assert _by_column(enrollments) == {'spa-1': 1}
    assert _get(client, team['supervisor'], 'cases_sealed')['total'] == 1
    hmis = client.simulate_get('/reports-hmis', headers=team['admin']).json
    sections = {section['element']: section for section in hmis['sections']}
    # One referral of the open case, one from the contact: the Part 2 case's is left out.
    assert sections['referrals by detail']['lines'] == ['mental_health/accepted']


def test_a_case_flagged_part2_later_takes_its_records_out_of_the_counts(
        client, services, team, cases):
    sup = team['supervisor']
    assert _by_column(_get(client, sup, 'checkins', by='service_area')) == {'spa-1': 12}
    records = services.db('records')
    stored = services.couch.get(records, cases['open']['_id'])
    services.couch.put(records, {**stored, 'part2_flag': True})
    assert _get(client, sup, 'checkins', by='service_area')['columns'] == ['count']
    assert _get(client, sup, 'checkins')['total'] == 0
    assert _get(client, sup, 'mandated_reports')['total'] == 0


# Median time to first service.

def _served(owner, area, consented_at, service):
    """A case consented at ``consented_at``; ``service`` makes its service records."""
    case = _case(owner, area=area, consented_at=consented_at)
    return [case, *service(case)]


@pytest.fixture
def first_services(services):
    """Team A, consents in 2025-11: spa-1 served after 24 h and 36 h, spa-2 after 72 h;
    one case not served yet, one Part 2 case served after 1 h. Organisation, 2025-08:
    11 cases in spa-4 served after 10 h (team B)."""
    docs = []
    docs += _served('w-dims-a', 'spa-1', '2025-11-03T10:00:00Z', lambda case: [
        _checkin(case, '2025-11-03T12:00:00Z', attended=False),
        _referral(case, '2025-11-03', outcome='youth_declined'),
        _checkin(case, '2025-11-04T10:00:00Z', week=2)])
    docs += _served('w-dims-a', 'spa-1', '2025-11-05T12:00:00Z', lambda case: [
        _referral(case, '2025-11-07'), _checkin(case, '2025-11-10T12:00:00Z')])
    docs += _served('w-dims-a', 'spa-2', '2025-11-10T00:00:00Z', lambda case: [
        _checkin(case, '2025-11-13T00:00:00Z')])
    docs += _served('w-dims-a', 'spa-2', '2025-11-11T00:00:00Z', lambda case: [])
    part2 = _case('w-dims-a', area='spa-1', part2=True, consented_at='2025-11-12T00:00:00Z')
    docs += [part2, _checkin(part2, '2025-11-12T01:00:00Z')]
    for _ in range(11):
        docs += _served('w-dims-b', 'spa-4', '2025-08-04T08:00:00Z', lambda case: [
            _checkin(case, '2025-08-04T18:00:00Z')])
    services.couch.bulk_docs(services.db('records'), docs)


def test_median_hours_to_first_service_for_the_team(client, team, first_services):
    sup = team['supervisor']
    report = _get(client, sup, 'first_service_hours', period='month', by='service_area')
    assert (report['unit'], report['suppressed'], report['scope']) == ('hours', False,
                                                                      'team:team-a')
    assert report['rows'] == ['2025-11']
    assert report['columns'] == ['spa-1', 'spa-2']
    assert report['cells'] == [[30.0, 72.0]]
    assert report['total'] == 36.0
    assert report['cases']['cells'] == [[2, 1]]
    whole = _get(client, sup, 'first_service_hours', period='quarter')
    assert (whole['rows'], whole['total'], whole['cases']['total']) == (['2025-Q4'], 36.0, 3)
    csv_lines = client.simulate_get('/reports/first_service_hours',
                                    params={'period': 'month', 'by': 'service_area',
                                            'format': 'csv'}, headers=sup).text.splitlines()
    assert csv_lines == ['period,spa-1,spa-2,total', '2025-11,30.0,72.0,36.0',
                         'total,30.0,72.0,36.0']


def test_a_median_over_a_withheld_count_is_withheld(client, team, first_services):
    for who in ('admin', 'liaison'):
        report = _get(client, team[who], 'first_service_hours', by='service_area')
        assert report['suppressed'] is True
        assert report['rows'] == ['2025-Q3', '2025-Q4']
        cases, medians = report['cases'], report
        for key in ('cells', 'row_totals', 'column_totals'):
            flat_cases = [v for row in cases[key] for v in (row if isinstance(row, list)
                                                            else [row])]
            flat_medians = [v for row in medians[key] for v in (row if isinstance(row, list)
                                                                else [row])]
            for count, median in zip(flat_cases, flat_medians):
                assert count is None or not SMALL_MIN <= count <= SMALL_MAX
                assert (median is None) == (count is None or count == 0), report
        # Team A's three served cases of 2025-Q4 are a withheld count: no median.
        q4 = report['rows'].index('2025-Q4')
        assert report['row_totals'][q4] is None
        assert set(report['cells'][q4]) == {None}
        one_way = _get(client, team[who], 'first_service_hours', until='2025-09')
        assert (one_way['rows'], one_way['cells'], one_way['cases']['cells']) == (
            ['2025-Q3'], [[10.0]], [[11]])


def test_the_liaison_gets_no_median_by_month(client, team, first_services):
    answer = client.simulate_get('/reports/first_service_hours', params={'period': 'month'},
                                 headers=team['liaison'])
    assert (answer.status_code, answer.json['code']) == (403, 'liaison_rules')


def test_the_catalogue_lists_the_median(client, team):
    catalogue = client.simulate_get('/reports', headers=team['supervisor']).json
    assert 'first_service_hours' in catalogue['medians']
