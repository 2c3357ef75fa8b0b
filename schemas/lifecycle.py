"""The program case lifecycle: states, actions, actors and guards (pure domain code).

A case (an ``enrollment`` record) moves from first contact to sealing by
named actions. Each action has the states it may start from, the state it
leads to, the roles that may take it, and guards: named conditions that must
hold. ``check_action`` decides one action against the case and the facts the
caller gathered (other records of the youth, the clock, the settings); a
refusal names the failing guard, so a person can tell what is missing.

Participation never requires cooperation with law enforcement: no guard
reads it, and a case that says cooperation is required is refused
(``no_le_condition``) at every action.

This module never imports falcon, sync or service; the gateway and the API
call it with facts they looked up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from schemas.errors import SchemasError

__all__ = [
    'ACTIONS',
    'Action',
    'CAPTURE',
    'CaseFacts',
    'FIELD_ACTIONS',
    'HOLD_REASONS',
    'ProgramSettings',
    'ROLES',
    'STATES',
    'TERMINAL_FOR_SEALING',
    'TransitionRefused',
    'capture_refusal',
    'captured_guard_refusal',
    'captured_needs_facts',
    'check_action',
    'check_history',
    'last_activity',
    'next_case',
    'sealing_due_at',
]

STATES = ('contacted', 'screened', 'screen_declined', 'offered', 'declined', 'consented',
          'enrolled', 'active', 'on_hold', 'lost_contact', 'completion_proposed', 'completed',
          'withdrawn', 'discharged', 'transferred', 'sealed')

#: Who takes an action: staff roles, plus the service's own calendar.
ROLES = ('worker', 'advocate', 'supervisor', 'admin', 'system')

HOLD_REASONS = ('missing_awol', 'custody', 'hospital', 'other')

#: States from which a case may be sealed once its waiting time has passed.
TERMINAL_FOR_SEALING = ('completed', 'withdrawn', 'lost_contact', 'discharged', 'transferred',
                        'screen_declined', 'declined')

_CASE_STAFF = ('advocate', 'supervisor')
_FIELD_STAFF = ('worker', 'advocate', 'supervisor')
_OPEN_STATES = ('screened', 'offered', 'consented', 'enrolled', 'active', 'on_hold',
                'lost_contact', 'completion_proposed')


@dataclasses.dataclass(frozen=True)
class Action:
    """One kind of transition.

    Attributes:
        name: The action's name, recorded in the case history.
        sources: States it may start from.
        target: State it leads to; None means "stays in the same state"
            (``next_week``, ``extend``) or "returns to the state before the
            hold" (``resume``).
        actors: Roles that may take it.
        guards: Names of the guards checked, in order.
    """

    name: str
    sources: tuple[str, ...]
    target: str | None
    actors: tuple[str, ...]
    guards: tuple[str, ...] = ()


ACTIONS: dict[str, Action] = {action.name: action for action in (
    Action('open', ('',), 'contacted', _FIELD_STAFF),
    Action('screen', ('contacted',), 'screened', _FIELD_STAFF,
           ('assent_recorded', 'confidentiality_explained')),
    Action('decline_screen', ('contacted',), 'screen_declined', _FIELD_STAFF),
    Action('offer', ('screened',), 'offered', _FIELD_STAFF, ('eligible_age',)),
    Action('decline_offer', ('offered',), 'declined', _FIELD_STAFF),
    # A worker may capture the signed consent offline; an advocate follows up.
    Action('consent', ('offered',), 'consented', _FIELD_STAFF, ('participation_consent',)),
    Action('enroll', ('consented',), 'enrolled', _CASE_STAFF,
           ('advocate_assigned', 'service_plan', 'program_start')),
    Action('start', ('enrolled',), 'active', (*_CASE_STAFF, 'system'), ('start_reached',)),
    Action('next_week', ('active',), None, (*_CASE_STAFF, 'system'),
           ('checkin_for_week', 'weeks_remaining')),
    Action('extend', ('active', 'on_hold'), None, ('supervisor',), ('length_allowed',)),
    Action('hold', ('contacted', 'active'), 'on_hold', _CASE_STAFF, ('hold_reason',)),
    Action('resume', ('on_hold',), None, _CASE_STAFF),
    Action('lose_contact', ('on_hold',), 'lost_contact', (*_CASE_STAFF, 'system'),
           ('hold_period_elapsed',)),
    Action('withdraw', _OPEN_STATES, 'withdrawn', _CASE_STAFF),
    Action('reoffer', ('withdrawn', 'declined', 'lost_contact'), 'offered', _CASE_STAFF),
    Action('discharge', ('enrolled', 'active', 'on_hold', 'lost_contact'), 'discharged',
           ('supervisor',), ('written_reason',)),
    Action('transfer', ('enrolled', 'active', 'on_hold'), 'transferred', _CASE_STAFF,
           ('transfer_release',)),
    Action('propose_completion', ('active',), 'completion_proposed', _CASE_STAFF,
           ('weeks_elapsed', 'attendance')),
    Action('approve_completion', ('completion_proposed',), 'completed', ('supervisor',),
           ('distinct_approver',)),
    Action('reject_completion', ('completion_proposed',), 'active', ('supervisor',)),
    Action('request_sealing', (*TERMINAL_FOR_SEALING, *_OPEN_STATES, 'contacted'), None,
           _CASE_STAFF),
    Action('seal', (*TERMINAL_FOR_SEALING, *_OPEN_STATES, 'contacted'), 'sealed',
           ('supervisor', 'admin', 'system'), ('sealing_due', 'sealing_approved')),
)}


class TransitionRefused(SchemasError):
    """An action may not be taken; ``guard`` names the rule that failed."""

    def __init__(self, guard: str, message: str) -> None:
        super().__init__(message)
        self.guard = guard
        self.message = message


@dataclasses.dataclass(frozen=True)
class ProgramSettings:
    """The deployment's program rules (all configurable).

    Attributes:
        default_length_weeks: Program length a new case gets.
        max_length_weeks: Longest a supervisor may extend a case to.
        eligible_age_bands: Age bands that may be offered the program.
        attendance_threshold: Share of weeks attended needed to complete.
        hold_to_lost_days: Days on hold before the case passes to lost contact.
        seal_after_completion_days: Days after completion a sealing is due.
        seal_after_inactivity_days: Days of inactivity after which a closed
            case's sealing is due.
    """

    default_length_weeks: int = 10
    max_length_weeks: int = 52
    eligible_age_bands: tuple[str, ...] = ('10-13', '14-15', '16-17')
    attendance_threshold: float = 0.7
    hold_to_lost_days: int = 30
    seal_after_completion_days: int = 60
    seal_after_inactivity_days: int = 365


@dataclasses.dataclass(frozen=True)
class CaseFacts:
    """What the caller found about the youth outside the case record.

    Attributes:
        screening_assent: A screening of the youth records assent given.
        confidentiality_explained: That screening says the limits of
            confidentiality were explained.
        participation_consent: A written ``program_participation`` consent
            of the youth exists and is not revoked.
        transfer_release: A release of information naming the receiving
            provider exists and is not revoked.
        checkin_weeks: Weeks with a check-in recorded, attended or missed.
        attended_weeks: Weeks with a check-in recorded as attended.
        sealing_approved: The two-person sealing of the youth was approved.
        youth_requested_sealing: The youth asked for their record to be sealed.
    """

    screening_assent: bool = False
    confidentiality_explained: bool = False
    participation_consent: bool = False
    transfer_release: bool = False
    checkin_weeks: frozenset[int] = frozenset()
    attended_weeks: frozenset[int] = frozenset()
    sealing_approved: bool = False
    youth_requested_sealing: bool = False


def _parse(at: str) -> dt.datetime:
    return dt.datetime.fromisoformat(at.replace('Z', '+00:00'))


def _last_entry(case: Mapping[str, Any], action: str) -> Mapping[str, Any] | None:
    for entry in reversed(case.get('history') or ()):
        if entry.get('action') == action:
            return entry
    return None


def last_activity(case: Mapping[str, Any]) -> dt.datetime | None:
    """Return when the case last changed state (its latest history entry)."""
    history = case.get('history') or ()
    return _parse(history[-1]['at']) if history else None


def sealing_due_at(case: Mapping[str, Any], settings: ProgramSettings) -> dt.datetime | None:
    """Return when the case's sealing falls due by the calendar, or None."""
    state = case.get('state')
    changed = last_activity(case)
    if changed is None or state not in TERMINAL_FOR_SEALING:
        return None
    days = (settings.seal_after_completion_days if state == 'completed'
            else settings.seal_after_inactivity_days)
    return changed + dt.timedelta(days=days)


def _guard(name: str, case: Mapping[str, Any], request: Mapping[str, Any],
           facts: CaseFacts, settings: ProgramSettings, now: dt.datetime) -> str | None:
    """Return why guard ``name`` fails, or None when it holds."""
    week = case.get('current_week') or 0
    length = case.get('program_length_weeks') or settings.default_length_weeks
    if name == 'assent_recorded':
        return None if facts.screening_assent else 'No screening records the youth\'s assent.'
    if name == 'confidentiality_explained':
        return (None if facts.confidentiality_explained
                else 'The limits of confidentiality were not recorded as explained.')
    if name == 'eligible_age':
        return (None if case.get('age_band') in settings.eligible_age_bands
                else 'The youth\'s age band is not eligible for the program.')
    if name == 'participation_consent':
        return (None if facts.participation_consent
                else 'No signed, unrevoked program_participation consent of the youth.')
    if name == 'advocate_assigned':
        return None if case.get('assigned_advocate_id') else 'No advocate is assigned.'
    if name == 'service_plan':
        return None if case.get('service_plan') else 'The service plan names no service.'
    if name == 'program_start':
        return None if case.get('program_start') else 'No program start date.'
    if name == 'start_reached':
        try:
            reached = dt.date.fromisoformat(case.get('program_start') or '') <= now.date()
        except (TypeError, ValueError):
            reached = False
        return None if reached else 'The program start date has not come.'
    if name == 'checkin_for_week':
        return (None if week in facts.checkin_weeks
                else 'The current week has no check-in, attended or marked missed.')
    if name == 'weeks_remaining':
        return None if week < length else 'The case is in the last week of its program.'
    if name == 'length_allowed':
        weeks = request.get('program_length_weeks')
        ok = (isinstance(weeks, int) and not isinstance(weeks, bool)
              and max(week, length) < weeks <= settings.max_length_weeks)
        return (None if ok else f'The new length must exceed the current one and be at most '
                                f'{settings.max_length_weeks} weeks.')
    if name == 'hold_reason':
        return (None if request.get('hold_reason') in HOLD_REASONS
                else 'A hold needs a reason code.')
    if name == 'hold_period_elapsed':
        held = _last_entry(case, 'hold')
        ok = held is not None and now - _parse(held['at']) >= dt.timedelta(
            days=settings.hold_to_lost_days)
        return (None if ok else f'The case has not been on hold for '
                                f'{settings.hold_to_lost_days} days.')
    if name == 'written_reason':
        return None if request.get('reason_code') else 'A discharge needs a written reason.'
    if name == 'transfer_release':
        return (None if facts.transfer_release
                else 'No unrevoked release of information names the receiving provider.')
    if name == 'weeks_elapsed':
        return (None if week >= length and length in facts.checkin_weeks
                else 'The program weeks have not all elapsed with check-ins.')
    if name == 'attendance':
        attended = len({w for w in facts.attended_weeks if 1 <= w <= length})
        return (None if attended >= settings.attendance_threshold * length
                else 'Attendance is below the completion threshold.')
    if name == 'distinct_approver':
        proposed = _last_entry(case, 'propose_completion')
        return (None if proposed is None or proposed.get('by') != request.get('by')
                else 'The supervisor approving completion must not be its proposer.')
    if name == 'sealing_due':
        if facts.youth_requested_sealing or case.get('sealing_requested_at'):
            return None
        due = sealing_due_at(case, settings)
        return (None if due is not None and now >= due
                else 'The sealing is not due: no youth request and the waiting time has '
                     'not passed.')
    if name == 'sealing_approved':
        return (None if facts.sealing_approved
                else 'The two-person sealing of the youth has not been approved.')
    raise SchemasError('Unknown guard.')


def check_action(case: Mapping[str, Any], action_name: str, *, role: str, by: str,
                 at: str, facts: CaseFacts = CaseFacts(),
                 settings: ProgramSettings = ProgramSettings(),
                 request: Mapping[str, Any] | None = None) -> Action:
    """Decide whether ``role`` may take ``action_name`` on ``case`` now.

    Args:
        case: The enrollment record as stored (``state``, ``history``, ...);
            an empty mapping for a case not yet opened.
        action_name: The action's name (``ACTIONS``).
        role: The actor's role.
        by: The actor's id.
        at: When, an ISO 8601 timestamp with a zone.
        facts: What other records say.
        settings: The program rules.
        request: Parameters of the action (``hold_reason``,
            ``reason_code``, ``program_length_weeks``).

    Returns:
        The action.

    Raises:
        TransitionRefused: ``guard`` is ``action`` (unknown), ``state`` (not
            from this state), ``actor`` (role may not), ``no_le_condition``
            or the name of the failing guard.
    """
    action = ACTIONS.get(action_name)
    if action is None:
        raise TransitionRefused('action', 'Not an action of the program lifecycle.')
    state = case.get('state', '')
    if state not in action.sources:
        raise TransitionRefused('state', f'"{action.name}" may not be taken from this state.')
    if role not in action.actors:
        raise TransitionRefused('actor', f'This role may not take "{action.name}".')
    if case.get('le_cooperation_required'):
        raise TransitionRefused('no_le_condition', 'Participation may never require '
                                'cooperation with law enforcement.')
    now = _parse(at)
    request = {**(request or {}), 'by': by}
    for guard in action.guards:
        problem = _guard(guard, case, request, facts, settings, now)
        if problem is not None:
            raise TransitionRefused(guard, problem)
    return action


_ENROLL_FIELDS = ('assigned_advocate_id', 'service_plan', 'program_start')


def _state_before_hold(case: Mapping[str, Any]) -> str:
    held = _last_entry(case, 'hold')
    return held['from'] if held is not None else 'active'


def next_case(case: Mapping[str, Any], action_name: str, *, role: str, by: str, at: str,
              facts: CaseFacts = CaseFacts(), settings: ProgramSettings = ProgramSettings(),
              request: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the case after the action, with a history entry saying who and when.

    Raises:
        TransitionRefused: As ``check_action``.
    """
    request = dict(request or {})
    if action_name == 'enroll':
        # The advocate names the plan as they enroll; the guards then check it.
        case = {**case, **{name: request[name] for name in _ENROLL_FIELDS if name in request}}
    action = check_action(case, action_name, role=role, by=by, at=at, facts=facts,
                          settings=settings, request=request)
    after = dict(case)
    source = case.get('state', '')
    if action.name == 'resume':
        target = _state_before_hold(case)
    else:
        target = action.target or source
    entry: dict[str, Any] = {'action': action.name, 'from': source or None, 'to': target,
                             'by': by, 'role': role, 'at': at}
    if action.name == 'start':
        after['current_week'] = 1
    elif action.name == 'next_week':
        after['current_week'] = case['current_week'] + 1
    elif action.name == 'extend':
        after['program_length_weeks'] = request['program_length_weeks']
        entry['program_length_weeks'] = request['program_length_weeks']
    elif action.name == 'hold':
        entry['hold_reason'] = request['hold_reason']
    elif action.name in ('discharge', 'withdraw') and request.get('reason_code'):
        entry['reason_code'] = request['reason_code']
    if action.name == 'consent' and 'consented_at' not in case:
        after['consented_at'] = at
    if action.name == 'enroll':
        # The configured length; only a supervisor lengthens it (``extend``).
        after['enrolled_at'] = at
        after['program_length_weeks'] = settings.default_length_weeks
    if action.name == 'request_sealing':
        after['sealing_requested_at'] = at
    if target != 'active' and 'current_week' in after and target not in ('on_hold',
                                                                          'completion_proposed'):
        after.pop('current_week')
    after['state'] = target
    after['history'] = [*(case.get('history') or ()), entry]
    after['updated_at'] = max(at, case.get('updated_at', at), key=_parse)
    return after


def check_history(history: Iterable[Mapping[str, Any]]) -> tuple[int, str] | None:
    """Check that recorded history entries form a legal path of actions.

    Only what the record itself shows is checked: each action exists, starts
    from the state the previous entry left, leads where the action leads,
    was taken by a role allowed to take it, and entries are in time order.
    Guards that need other records are the API's and the gateway's.

    Returns:
        None when legal, else ``(index of the first bad entry, guard name)``.
    """
    state, held_from, last_at = '', 'active', None
    for index, entry in enumerate(history):
        action = ACTIONS.get(entry.get('action', ''))
        if action is None:
            return index, 'action'
        if state not in action.sources or (entry.get('from') or '') != state:
            return index, 'state'
        if action.name == 'resume':
            target = held_from
        else:
            target = action.target or state
        if entry.get('to') != target:
            return index, 'state'
        if entry.get('role') not in action.actors:
            return index, 'actor'
        at = _parse(entry['at'])
        if last_at is not None and at < last_at:
            return index, 'time_order'
        if action.name == 'hold':
            held_from = state
        state, last_at = target, at
    return None


#: Actions taken in the field, on a tablet or at the desk, by whoever holds the
#: case record; every later action goes through the case API, which checks
#: the guards against the youth's other records.
FIELD_ACTIONS = ('open', 'screen', 'decline_screen', 'offer', 'decline_offer', 'consent')

#: Record types each role may capture (sync push and desk intake), per the
#: roles table (domain-screening.md §6.4). ``case_sealing`` is written by the
#: service when a two-person sealing is approved, never captured.
CAPTURE: dict[str, tuple[str, ...]] = {
    'worker': ('contact', 'identity', 'screening', 'consent', 'enrollment', 'referral',
               'mandated_report'),
    'advocate': ('contact', 'identity', 'screening', 'consent', 'enrollment', 'weekly_checkin',
                 'referral', 'exit', 'mandated_report'),
    'supervisor': ('contact', 'identity', 'screening', 'consent', 'enrollment',
                   'weekly_checkin', 'referral', 'exit', 'mandated_report'),
}


def capture_refusal(doc: Mapping[str, Any], *, by: str, roles: Iterable[str],
                    stored: Mapping[str, Any] | None = None) -> tuple[str, str] | None:
    """Decide whether ``by`` (holding ``roles``) may capture this record.

    A case record captured in the field carries field actions only, each
    taken by the capturer in one of their roles. An edit of a stored case
    keeps its recorded history as it is and may only add such actions.

    Args:
        doc: The record as sent.
        by: The capturer.
        roles: The capturer's roles.
        stored: The revision stored under this id, if any.

    Returns:
        None when allowed, else ``(guard, reason)``; the reason names no value.
    """
    roles = tuple(roles)
    doc_type = doc.get('type')
    if not any(doc_type in CAPTURE.get(role, ()) for role in roles):
        return 'capture', 'This role may not capture records of this type.'
    if doc_type != 'enrollment':
        return None
    history = list(doc.get('history') or ())
    recorded = list((stored or {}).get('history') or ())
    if history[:len(recorded)] != recorded:
        return 'history_rewritten', 'A case\'s recorded history may only be extended.'
    for entry in history[len(recorded):]:
        if not isinstance(entry, Mapping):
            return 'state', 'A history entry is not an object.'
        if entry.get('action') not in FIELD_ACTIONS:
            return 'field_actions_only', ('Only field actions (open to consent) are captured; '
                                          'later actions go through the case API.')
        if entry.get('by') != by or entry.get('role') not in roles:
            return 'actor', 'Every captured action must be taken by the capturer in their role.'
    return None


def _new_entries(doc: Mapping[str, Any],
                 stored: Mapping[str, Any] | None) -> tuple[list[Any], int]:
    history = list(doc.get('history') or ())
    recorded = len((stored or {}).get('history') or ())
    return history, recorded


def captured_needs_facts(doc: Mapping[str, Any], stored: Mapping[str, Any] | None) -> bool:
    """Whether a captured case adds an action with a guard (so other records are needed)."""
    history, recorded = _new_entries(doc, stored)
    return any(isinstance(entry, Mapping) and entry.get('action') in ACTIONS
               and ACTIONS[entry['action']].guards for entry in history[recorded:])


def captured_guard_refusal(doc: Mapping[str, Any], stored: Mapping[str, Any] | None,
                           facts: CaseFacts,
                           settings: ProgramSettings = ProgramSettings()) -> tuple[str, str] | None:
    """Check the guards of the actions a captured case adds, as the case API would.

    Each new history entry is checked against the case as it stood before
    it (its state, the case's own fields such as the age band) and the
    facts the caller found in the youth's other records, as taken by the
    entry's actor at the entry's time. ``capture_refusal`` has already
    checked which actions and actors a capture may carry.

    Returns:
        None when every guard holds, else ``(guard, reason)`` of the first
        that fails; the reason names no value.
    """
    history, recorded = _new_entries(doc, stored)
    for index in range(recorded, len(history)):
        entry = history[index]
        before = {**doc, 'state': entry.get('from') or '', 'history': history[:index]}
        try:
            check_action(before, entry.get('action', ''), role=entry.get('role', ''),
                         by=entry.get('by', ''), at=entry.get('at', ''), facts=facts,
                         settings=settings)
        except TransitionRefused as refused:
            return refused.guard, refused.message
    return None
