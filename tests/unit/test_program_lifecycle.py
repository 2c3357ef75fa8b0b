"""The case lifecycle as pure rules: every illegal action is refused and names its guard."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from schemas import lifecycle
from schemas.lifecycle import ACTIONS, CaseFacts, STATES, TransitionRefused

pytestmark = pytest.mark.unit

AT = '2026-03-02T09:00:00Z'
EVERYTHING = CaseFacts(screening_assent=True, confidentiality_explained=True,
                       participation_consent=True, transfer_release=True,
                       checkin_weeks=frozenset(range(1, 53)),
                       attended_weeks=frozenset(range(1, 53)), sealing_approved=True,
                       youth_requested_sealing=True)


def _case(state: str) -> dict:
    return {'state': state, 'history': [], 'age_band': '14-15', 'current_week': 1,
            'program_length_weeks': 10, 'assigned_advocate_id': 'adv-1',
            'service_plan': ['education'], 'program_start': '2026-03-01'}


ILLEGAL = [(state, name) for state in ('', *STATES) for name, action in ACTIONS.items()
           if state not in action.sources]


@pytest.mark.parametrize(('state', 'action'), ILLEGAL)
def test_every_action_from_a_state_it_does_not_leave_is_refused_by_the_state_guard(
        state, action):
    with pytest.raises(TransitionRefused) as refused:
        lifecycle.check_action(_case(state), action, role='supervisor', by='sup-1', at=AT,
                               facts=EVERYTHING)
    assert refused.value.guard == 'state'


WRONG_ACTOR = [(name, role) for name, action in ACTIONS.items()
               for role in lifecycle.ROLES if role not in action.actors]


@pytest.mark.parametrize(('action', 'role'), WRONG_ACTOR)
def test_every_role_that_may_not_take_an_action_is_refused_by_the_actor_guard(action, role):
    source = ACTIONS[action].sources[0]
    with pytest.raises(TransitionRefused) as refused:
        lifecycle.check_action(_case(source), action, role=role, by='someone', at=AT,
                               facts=EVERYTHING)
    assert refused.value.guard == 'actor'


def test_no_state_leaves_sealed():
    assert all('sealed' not in action.sources for action in ACTIONS.values())


def test_an_unknown_action_is_refused():
    with pytest.raises(TransitionRefused) as refused:
        lifecycle.check_action(_case('active'), 'skip_ahead', role='supervisor', by='s', at=AT)
    assert refused.value.guard == 'action'


@pytest.mark.parametrize('action', [name for name, action in ACTIONS.items()
                                    if 'active' in action.sources])
def test_a_case_that_requires_cooperation_with_law_enforcement_moves_nowhere(action):
    case = {**_case('active'), 'le_cooperation_required': True}
    with pytest.raises(TransitionRefused) as refused:
        lifecycle.check_action(case, action, role=ACTIONS[action].actors[0], by='s', at=AT,
                               facts=EVERYTHING,
                               request={'hold_reason': 'custody', 'reason_code': 'x',
                                        'program_length_weeks': 12})
    assert refused.value.guard == 'no_le_condition'


def test_history_records_who_and_when_and_a_legal_history_checks_clean():
    case: dict = {}
    steps = [('open', 'worker', {}), ('screen', 'worker', {}), ('offer', 'worker', {}),
             ('consent', 'advocate', {}),
             ('enroll', 'advocate', {'assigned_advocate_id': 'adv-1',
                                     'service_plan': ['education'],
                                     'program_start': '2026-03-01'}),
             ('start', 'system', {}), ('hold', 'advocate', {'hold_reason': 'custody'}),
             ('resume', 'advocate', {})]
    for index, (action, role, request) in enumerate(steps):
        case = lifecycle.next_case({**case, 'age_band': '16-17'}, action, role=role,
                                   by=f'{role}-1', at=f'2026-03-02T09:{index:02d}:00Z',
                                   facts=EVERYTHING, request=request)
    assert case['state'] == 'active'
    assert [(e['action'], e['by'], e['role']) for e in case['history']][-2:] == [
        ('hold', 'advocate-1', 'advocate'), ('resume', 'advocate-1', 'advocate')]
    assert lifecycle.check_history(case['history']) is None
    tampered = [dict(entry) for entry in case['history']]
    tampered[4]['role'] = 'worker'
    assert lifecycle.check_history(tampered) == (4, 'actor')


def test_enrolment_takes_the_configured_program_length():
    case = {'state': 'consented', 'history': [], 'program_length_weeks': 30}
    enrolled = lifecycle.next_case(case, 'enroll', role='advocate', by='adv-1', at=AT,
                                   settings=lifecycle.ProgramSettings(default_length_weeks=6),
                                   request={'assigned_advocate_id': 'adv-1',
                                            'service_plan': ['education'],
                                            'program_start': '2026-03-02'})
    assert enrolled['program_length_weeks'] == 6


def test_capture_allows_field_actions_by_the_capturer_only():
    history = [{'action': 'open', 'by': 'worker-1', 'role': 'worker'}]
    assert lifecycle.capture_refusal({'type': 'enrollment', 'history': history},
                                     by='worker-1', roles=['worker']) is None
    enrolled = [*history, {'action': 'enroll', 'by': 'worker-1', 'role': 'worker'}]
    assert lifecycle.capture_refusal({'type': 'enrollment', 'history': enrolled},
                                     by='worker-1', roles=['worker'])[0] == 'field_actions_only'
    assert lifecycle.capture_refusal({'type': 'enrollment', 'history': history},
                                     by='worker-2', roles=['worker'])[0] == 'actor'
    assert lifecycle.capture_refusal({'type': 'case_sealing'}, by='sup-1',
                                     roles=['supervisor'])[0] == 'capture'
    assert lifecycle.capture_refusal({'type': 'weekly_checkin'}, by='worker-1',
                                     roles=['worker'])[0] == 'capture'


class CaseMachine(RuleBasedStateMachine):
    """Random actions by random roles: accepted exactly when the table allows them."""

    def __init__(self) -> None:
        super().__init__()
        self.case: dict = {'age_band': '14-15'}
        self.minute = 0

    @rule(action=st.sampled_from(sorted(ACTIONS)), role=st.sampled_from(lifecycle.ROLES))
    def take(self, action, role):
        self.minute += 1
        at = f'2026-03-{2 + self.minute // 1440:02d}T{self.minute // 60 % 24:02d}:' \
             f'{self.minute % 60:02d}:00Z'
        spec = ACTIONS[action]
        before = dict(self.case)
        request = {'hold_reason': 'custody', 'reason_code': 'other',
                   'program_length_weeks': min(52, (before.get('program_length_weeks') or 10) + 1),
                   'assigned_advocate_id': 'adv-1', 'service_plan': ['education'],
                   'program_start': '2026-03-01'}
        legal_state = before.get('state', '') in spec.sources
        try:
            after = lifecycle.next_case(before, action, role=role, by=f'{role}-1', at=at,
                                        facts=EVERYTHING, request=request)
        except TransitionRefused as refused:
            if not legal_state:
                assert refused.guard == 'state'
            elif role not in spec.actors:
                assert refused.guard == 'actor'
            else:
                assert refused.guard in spec.guards
            assert self.case == before
            return
        assert legal_state and role in spec.actors
        assert after['history'][-1]['action'] == action
        assert after['history'][-1]['by'] == f'{role}-1'
        self.case = after

    @invariant()
    def history_is_legal(self):
        assert lifecycle.check_history(self.case.get('history') or []) is None
        if self.case.get('history'):
            assert self.case['history'][-1]['to'] == self.case['state']


CaseMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40,
                                         deadline=None)
TestCaseMachine = CaseMachine.TestCase


def _captured(path, owner='w-1', **fields):
    from tests import factories
    history = factories._history(path, owner)
    return {'state': history[-1]['to'], 'history': history, 'age_band': '14-15', **fields}


def test_captured_field_actions_are_checked_against_the_facts_entry_by_entry():
    from tests import factories
    case = _captured(factories.ACTIVE_PATH[:4])
    screened = CaseFacts(screening_assent=True, confidentiality_explained=True)
    assert lifecycle.captured_guard_refusal(case, None, CaseFacts())[0] == 'assent_recorded'
    assert lifecycle.captured_guard_refusal(case, None, screened)[0] == 'participation_consent'
    signed = CaseFacts(screening_assent=True, confidentiality_explained=True,
                       participation_consent=True)
    assert lifecycle.captured_guard_refusal(case, None, signed) is None
    too_old = dict(case, age_band='18+')
    assert lifecycle.captured_guard_refusal(too_old, None, signed)[0] == 'eligible_age'


def test_only_the_actions_a_capture_adds_are_checked():
    from tests import factories
    stored = _captured(factories.ACTIVE_PATH[:2])
    offered = _captured(factories.ACTIVE_PATH[:3])
    # The stored screen entry is not checked again; the added offer has its guard met.
    assert lifecycle.captured_needs_facts(offered, stored)
    assert lifecycle.captured_guard_refusal(offered, stored, CaseFacts()) is None
    assert not lifecycle.captured_needs_facts(stored, stored)
    assert not lifecycle.captured_needs_facts(_captured(factories.ACTIVE_PATH[:1]), None)
