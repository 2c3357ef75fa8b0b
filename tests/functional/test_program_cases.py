"""A youth's case walked through every state of the program lifecycle by the real API.

The case record is captured by the worker (desk intake); every later action
goes through ``POST /cases/{id}/actions``, whose guards read the youth's
other records. Each refusal names its guard.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from tests import factories

pytestmark = pytest.mark.functional

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def clock(services):
    """The service's clock, moved by the test (days count in the guards and timers)."""
    state = {'now': START.timestamp()}
    services.clock = lambda: state['now']

    def advance(days: float) -> None:
        state['now'] += days * 86400
    return advance


@pytest.fixture
def staff(users):
    return {
        'worker': users.bearer(users.token('worker-1', ['worker'])),
        'advocate': users.bearer(users.token('adv-1', ['advocate'])),
        'advocate2': users.bearer(users.token('adv-2', ['advocate'])),
        'supervisor': users.bearer(users.token('sup-1', ['supervisor'])),
        'supervisor2': users.bearer(users.token('sup-2', ['supervisor'])),
        'admin': users.bearer(users.token('admin-1', ['admin'], team=None)),
        'other_team': users.bearer(users.token('sup-b', ['supervisor'], team='team-b')),
    }


class Youth:
    """One youth's records, captured as the program would."""

    def __init__(self, client, services, staff) -> None:
        self.client, self.services, self.staff = client, services, staff
        self.client_id = str(uuid.uuid4())
        self.records = services.db('records')
        case = factories.make_enrollment(
            owner='worker-1', org=services.config.org, client_id=self.client_id,
            state='contacted', history=factories._history(factories.ACTIVE_PATH[:1], 'worker-1'),
            diversion_case_ref=factories.OMIT, referring_agency_release_id=factories.OMIT,
            consented_at=factories.OMIT, enrolled_at=factories.OMIT,
            program_start=factories.OMIT, current_week=factories.OMIT,
            assigned_advocate_id=factories.OMIT, service_plan=factories.OMIT,
            age_band='14-15')
        answer = client.simulate_post('/records', json={'document': case, 'envelopes': []},
                                      headers=staff['worker'])
        assert answer.status_code == 201, answer.text
        self.case_id = case['_id']

    def put(self, doc) -> None:
        """Store a supporting record of the youth (as a synced tablet would)."""
        self.services.couch.put(self.records, factories.fake_sealed(doc))

    def screened_with_assent(self) -> None:
        self.put(factories.make_screening(client_id=self.client_id, response_notes=factories.OMIT,
                                          org=self.services.config.org))

    def signed_participation(self) -> None:
        self.put(factories.make_consent(
            client_id=self.client_id, consent_type='program_participation', recipient_org=None,
            purpose=None, data_categories=None, org=self.services.config.org))

    def checked_in(self, week: int, attended: bool = True) -> None:
        self.put(factories.make_weekly_checkin(
            client_id=self.client_id, enrollment_id=self.case_id, week_number=week,
            attended=attended, services_received=['education'] if attended else factories.OMIT,
            org=self.services.config.org))

    def act(self, who: str, action: str, **params):
        return self.client.simulate_post(f'/cases/{self.case_id}/actions',
                                         json={'action': action, **params},
                                         headers=self.staff[who])

    def ok(self, who: str, action: str, **params) -> dict:
        answer = self.act(who, action, **params)
        assert answer.status_code == 200, (action, answer.text)
        return answer.json

    def refused(self, who: str, action: str, guard: str, **params) -> None:
        answer = self.act(who, action, **params)
        assert answer.status_code == 409, (action, answer.text)
        assert answer.json['code'] == 'transition_refused'
        assert answer.json['fields'] == {'guard': [guard]}, (action, answer.json)


def _enroll_params() -> dict:
    return {'assigned_advocate_id': 'adv-1', 'service_plan': ['education', 'mental_health'],
            'program_start': START.date().isoformat()}


def _to_active(youth: Youth) -> None:
    youth.screened_with_assent()
    youth.signed_participation()
    youth.ok('worker', 'screen')
    youth.ok('worker', 'offer')
    youth.ok('worker', 'consent')
    youth.ok('advocate', 'enroll', **_enroll_params())
    youth.ok('advocate', 'start')


def test_a_youth_walks_from_contact_to_sealing(client, services, staff, clock):
    youth = Youth(client, services, staff)
    youth.refused('worker', 'screen', 'assent_recorded')
    youth.screened_with_assent()
    assert youth.ok('worker', 'screen')['state'] == 'screened'
    youth.refused('worker', 'enroll', 'state')
    assert youth.ok('worker', 'offer')['state'] == 'offered'
    youth.refused('worker', 'consent', 'participation_consent')
    youth.signed_participation()
    assert youth.ok('worker', 'consent')['state'] == 'consented'
    youth.refused('worker', 'enroll', 'actor')
    youth.refused('advocate', 'enroll', 'service_plan',
                  assigned_advocate_id='adv-1', program_start='2026-03-02')
    bad = youth.act('advocate', 'enroll', **{**_enroll_params(), 'service_plan': ['karate']})
    assert (bad.status_code, bad.json['code']) == (422, 'validation_failed')
    assert 'karate' not in bad.text
    assert services.couch.get(youth.records, youth.case_id)['state'] == 'consented'
    assert youth.ok('advocate', 'enroll', **_enroll_params())['state'] == 'enrolled'
    case = youth.ok('advocate', 'start')
    assert (case['state'], case['current_week']) == ('active', 1)
    youth.refused('advocate', 'next_week', 'checkin_for_week')
    youth.refused('advocate', 'propose_completion', 'weeks_elapsed')
    for week in range(1, 11):
        youth.checked_in(week, attended=week != 3)
        if week < 10:
            clock(7)
            assert youth.ok('advocate', 'next_week')['current_week'] == week + 1
    youth.refused('advocate', 'next_week', 'weeks_remaining')
    assert youth.ok('advocate', 'propose_completion')['state'] == 'completion_proposed'
    youth.refused('advocate', 'approve_completion', 'actor')
    case = youth.ok('supervisor', 'approve_completion')
    assert case['state'] == 'completed'
    assert [entry['action'] for entry in case['history']][-2:] == [
        'propose_completion', 'approve_completion']
    assert case['history'][-1]['by'] == 'sup-1' and case['history'][-1]['role'] == 'supervisor'
    assert case['history'][-1]['at'].endswith('Z')
    youth.refused('supervisor', 'seal', 'sealing_due')
    clock(61)
    youth.refused('supervisor', 'seal', 'sealing_approved')
    due = client.simulate_get('/program/due', headers=staff['supervisor']).json['due']
    [item] = [item for item in due if item['case'] == youth.case_id]
    assert (item['kind'], item['basis']) == ('sealing_due', 'completion')
    proposed = client.simulate_post('/sealings', json=item['proposal'], headers=staff['admin'])
    assert proposed.status_code == 201, proposed.text
    approved = client.simulate_post(f'/sealings/{proposed.json["id"]}/approve',
                                    headers=staff['supervisor'])
    assert approved.status_code == 200, approved.text
    assert youth.ok('supervisor', 'seal')['state'] == 'sealed'
    tallies = [doc for doc in services.couch.iter_prefix(services.db('records'), 'case_sealing:')
               if doc['client_id'] == youth.client_id]
    assert [(doc['basis'], doc['proposed_by'], doc['approved_by']) for doc in tallies] == [
        ('completion', 'admin-1', 'sup-1')]
    youth.refused('supervisor', 'withdraw', 'state')
    youth.refused('advocate', 'reoffer', 'state')


def test_an_action_body_of_the_wrong_shape_is_refused_naming_the_member(
        client, services, staff, clock):
    youth = Youth(client, services, staff)
    _to_active(youth)
    for params, member in (({'program_length_weeks': '12'}, 'program_length_weeks'),
                           ({'service_plan': 'education'}, 'service_plan'),
                           ({'hold_reason': ['custody']}, 'hold_reason')):
        answer = youth.act('supervisor', 'extend', **params)
        assert (answer.status_code, answer.json['code']) == (422, 'validation_failed'), params
        assert member in answer.json['fields'], answer.json
    unknown = youth.act('supervisor', 'extend', program_length_weeks=12, nickname='x')
    assert (unknown.status_code, unknown.json['code']) == (422, 'validation_failed')
    assert 'nickname' not in unknown.text
    not_text = youth.act('supervisor', ['extend'])
    assert (not_text.status_code, not_text.json['code']) == (422, 'validation_failed')
    assert services.couch.get(youth.records, youth.case_id)['state'] == 'active'


def test_completion_needs_a_second_person_who_is_a_supervisor(client, services, staff, clock):
    youth = Youth(client, services, staff)
    _to_active(youth)
    youth.ok('supervisor', 'extend', program_length_weeks=11)
    youth.refused('advocate', 'extend', 'actor', program_length_weeks=12)
    youth.refused('supervisor', 'extend', 'length_allowed', program_length_weeks=60)
    for week in range(1, 12):
        youth.checked_in(week)
        if week < 11:
            youth.ok('advocate', 'next_week')
    youth.ok('supervisor', 'propose_completion')
    youth.refused('supervisor', 'approve_completion', 'distinct_approver')
    assert youth.ok('supervisor', 'reject_completion')['state'] == 'active'
    youth.ok('advocate', 'propose_completion')
    assert youth.ok('supervisor2', 'approve_completion')['state'] == 'completed'


def test_attendance_below_the_threshold_blocks_completion(client, services, staff, clock):
    youth = Youth(client, services, staff)
    _to_active(youth)
    for week in range(1, 11):
        youth.checked_in(week, attended=week <= 5)
        if week < 10:
            youth.ok('advocate', 'next_week')
    youth.refused('advocate', 'propose_completion', 'attendance')


def test_hold_resume_and_lost_contact_then_reoffer(client, services, staff, clock):
    youth = Youth(client, services, staff)
    _to_active(youth)
    youth.refused('advocate', 'hold', 'hold_reason')
    assert youth.ok('advocate', 'hold', hold_reason='hospital')['state'] == 'on_hold'
    assert youth.ok('advocate', 'resume')['state'] == 'active'
    youth.ok('advocate', 'hold', hold_reason='missing_awol')
    youth.refused('advocate', 'lose_contact', 'hold_period_elapsed')
    clock(31)
    due = client.simulate_get('/program/due', headers=staff['supervisor']).json['due']
    assert {(item['case'], item['kind']) for item in due} >= {(youth.case_id, 'lost_contact')}
    assert youth.ok('advocate', 'lose_contact')['state'] == 'lost_contact'
    assert youth.ok('advocate', 'reoffer')['state'] == 'offered'
    assert youth.ok('advocate', 'consent')['state'] == 'consented'


def test_withdrawal_discharge_and_transfer(client, services, staff, clock):
    withdrawn = Youth(client, services, staff)
    _to_active(withdrawn)
    assert withdrawn.ok('advocate', 'withdraw', reason_code='moved_away')['state'] == 'withdrawn'
    withdrawn.refused('supervisor', 'seal', 'sealing_due')
    withdrawn.ok('advocate', 'request_sealing')
    withdrawn.refused('supervisor', 'seal', 'sealing_approved')

    discharged = Youth(client, services, staff)
    _to_active(discharged)
    discharged.refused('advocate', 'discharge', 'actor', reason_code='safety')
    discharged.refused('supervisor', 'discharge', 'written_reason')
    assert discharged.ok('supervisor', 'discharge', reason_code='safety')['state'] == 'discharged'

    transferred = Youth(client, services, staff)
    _to_active(transferred)
    transferred.refused('advocate', 'transfer', 'transfer_release',
                        recipient_org='partner-shelter')
    transferred.put(factories.make_consent(client_id=transferred.client_id,
                                           org=services.config.org))
    assert transferred.ok('advocate', 'transfer',
                          recipient_org='partner-shelter')['state'] == 'transferred'


def test_declined_screening_and_declined_offer(client, services, staff, clock):
    first = Youth(client, services, staff)
    assert first.ok('worker', 'decline_screen')['state'] == 'screen_declined'
    second = Youth(client, services, staff)
    second.screened_with_assent()
    second.ok('worker', 'screen')
    second.refused('worker', 'decline_offer', 'state')
    second.ok('worker', 'offer')
    assert second.ok('worker', 'decline_offer')['state'] == 'declined'


def test_a_case_outside_the_team_answers_as_missing(client, services, staff, clock):
    youth = Youth(client, services, staff)
    youth.screened_with_assent()
    answer = youth.act('other_team', 'screen')
    assert answer.status_code == 404
    assert client.simulate_get(f'/cases/{youth.case_id}',
                               headers=staff['other_team']).status_code == 404
    assert client.simulate_get(f'/cases/{youth.case_id}',
                               headers=staff['supervisor']).json['state'] == 'contacted'
    youth.ok('advocate', 'request_sealing')
    due = client.simulate_get('/program/due', headers=staff['supervisor']).json['due']
    assert [(item['kind'], item['basis']) for item in due if item['case'] == youth.case_id] \
        == [('sealing_due', 'youth_request')]
    due = client.simulate_get('/program/due', headers=staff['other_team']).json['due']
    assert all(item['case'] != youth.case_id for item in due)


def test_missed_checkins_are_listed_for_the_supervisor(client, services, staff, clock):
    youth = Youth(client, services, staff)
    _to_active(youth)
    clock(8)
    due = client.simulate_get('/program/due', headers=staff['supervisor']).json['due']
    assert [(item['kind'], item['week']) for item in due
            if item['case'] == youth.case_id] == [('missed_checkin', 1)]
    youth.checked_in(1, attended=False)
    due = client.simulate_get('/program/due', headers=staff['supervisor']).json['due']
    assert not [item for item in due if item['case'] == youth.case_id]


def test_a_part2_case_is_hidden_from_the_worker_and_left_out_of_counts(client, services, staff,
                                                                      clock):
    youth = Youth(client, services, staff)
    case = services.couch.get(youth.records, youth.case_id)
    services.couch.put(youth.records, {**case, 'part2_flag': True})
    assert client.simulate_get(f'/cases/{youth.case_id}',
                               headers=staff['worker']).status_code == 404
    assert client.simulate_get(f'/cases/{youth.case_id}',
                               headers=staff['advocate']).json['part2_flag'] is True
    youth.screened_with_assent()
    youth.ok('advocate', 'screen')
    youth.ok('advocate', 'offer')
    offers = client.simulate_get('/reports/offers', headers=staff['supervisor']).json
    assert offers['total'] == 0
