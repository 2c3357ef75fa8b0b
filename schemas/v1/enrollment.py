"""``enrollment/1``: one youth's program case, with its state history (§6.2 E, §6.3).

FROZEN: breaking changes go to ``schemas/v2/enrollment.py`` plus an upgrade
function (see ``schemas/v1/__init__.py``).

``state`` is where the case stands; ``history`` is every action taken, each
with who (``by``, ``role``) and when (``at``). The schema checks what the
record itself shows: the history is a legal path of the lifecycle
(``schemas.lifecycle.check_history``), the state is where it leads, and the
fields a state needs are present once it is reached. Guards that need other
records (a consent, check-ins, an approved sealing) are checked when an
action is taken, by the API and the gateway.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields
from marshmallow import validate
from marshmallow import validates_schema

from schemas import lifecycle
from schemas import program_codes as codes
from schemas.fields import UUID4
from schemas.fields import CalendarDate
from schemas.fields import Code
from schemas.fields import FullMatch
from schemas.fields import NoDuplicates
from schemas.fields import StrictBoolean
from schemas.fields import Timestamp
from schemas.fields import Token
from schemas.fields import valid_timestamp
from schemas.parts import EnvelopeSchema
from schemas.parts import StrictSchema
from schemas.v1.contact import SERVICE_AREA_PATTERN
from schemas.v1.contact import YOUTH_CODE_PATTERN

__all__ = ['EnrollmentSchema', 'TransitionSchema']

# States at or after enrollment (the case has an advocate and a plan).
_ENROLLED_STATES = frozenset({'enrolled', 'active', 'on_hold', 'completion_proposed',
                              'completed'})
_WEEK_STATES = frozenset({'active', 'on_hold', 'completion_proposed'})
_MAX_HISTORY = 500


# ``from`` is a Python keyword, so the class is built from a namespace; the
# wire name stays ``from`` (validated documents must equal their input).
TransitionSchema = type('TransitionSchema', (StrictSchema,), {
    '__doc__': 'One action taken on the case: which, from where to where, by whom, when.',
    '__module__': __name__,
    'action': Code(tuple(lifecycle.ACTIONS), required=True),
    'from': Code(lifecycle.STATES, allow_none=True),
    'to': Code(lifecycle.STATES, required=True),
    'by': Token(required=True),
    'role': Code(lifecycle.ROLES, required=True),
    'at': Timestamp(required=True),
    'hold_reason': Code(lifecycle.HOLD_REASONS, allow_none=True),
    'reason_code': fields.String(allow_none=True, validate=FullMatch(
        r'^[a-z][a-z0-9_]{0,63}$', error='Must be a reason code.')),
    'program_length_weeks': fields.Integer(strict=True, allow_none=True,
                                           validate=validate.Range(min=1, max=52)),
})


class EnrollmentSchema(EnvelopeSchema):
    """A program case: referral source, plan, advocate, state and its history."""

    DOC_TYPE = 'enrollment'
    MAJOR = 1

    error_messages = {
        'history_state': 'Not a legal step of the program lifecycle from the state the '
                         'previous entry left (guard: state).',
        'history_actor': 'This role may not take this action (guard: actor).',
        'history_time_order': 'Must not be earlier than the previous entry (guard: '
                              'time_order).',
        'state_mismatch': 'Must be the state the last history entry leads to.',
        'required_in_state': 'Required once the case has reached this state.',
        'week_out_of_range': 'Must be between 1 and program_length_weeks while active.',
        'week_outside_active': 'Only an active, held or completion-proposed case has a week.',
        'diversion_needs_release': 'A diversion case reference needs a release naming the '
                                   'referring agency.',
        'history_after_update': 'A history entry may not be later than updated_at.',
    }

    client_id = UUID4(required=True)
    youth_code = fields.String(allow_none=True, validate=FullMatch(
        YOUTH_CODE_PATTERN, error='Must be a generated code such as quiet-river-07.'))
    state = Code(lifecycle.STATES, required=True)
    history = fields.List(fields.Nested(TransitionSchema), required=True,
                          validate=validate.Length(min=1, max=_MAX_HISTORY))
    referral_source = Code(codes.REFERRAL_SOURCES, required=True)
    service_area_code = fields.String(required=True, validate=FullMatch(
        SERVICE_AREA_PATTERN, error='Must be a configured service area code.'))
    age_band = Code(codes.AGE_BANDS, required=True)
    diversion_case_ref = fields.String(allow_none=True, validate=validate.Length(min=1, max=64),
                                       metadata={'identifying': True})
    referring_agency_release_id = UUID4(allow_none=True)
    consented_at = Timestamp(allow_none=True)
    enrolled_at = Timestamp(allow_none=True)
    program_start = CalendarDate(allow_none=True)
    program_length_weeks = fields.Integer(strict=True, required=True,
                                          validate=validate.Range(min=1, max=52))
    current_week = fields.Integer(strict=True, allow_none=True,
                                  validate=validate.Range(min=1, max=52))
    assigned_advocate_id = Token(allow_none=True)
    service_plan = fields.List(Code(codes.SERVICE_PLAN_ITEMS), allow_none=True,
                               validate=NoDuplicates())
    sealing_requested_at = Timestamp(allow_none=True)
    part2_flag = StrictBoolean(required=True)
    le_cooperation_required = StrictBoolean(required=True, validate=validate.Equal(
        False, error='Must be false: participation never requires cooperation with law '
                     'enforcement.'))

    @validates_schema
    def _history_is_legal(self, data: dict[str, Any], **kwargs: Any) -> None:
        problem = lifecycle.check_history(data['history'])
        if problem is not None:
            index, guard = problem
            key = {'actor': 'history_actor', 'time_order': 'history_time_order'}.get(
                guard, 'history_state')
            raise self.rule_error(key, ('history', index))
        if data['history'][-1]['to'] != data['state']:
            raise self.rule_error('state_mismatch', 'state')
        updated = valid_timestamp(data['updated_at'])
        late = [('history_after_update', ('history', index, 'at'))
                for index, entry in enumerate(data['history'])
                if valid_timestamp(entry['at']) > updated]
        if late:
            raise self.rule_errors(late)

    @validates_schema
    def _state_fields_present(self, data: dict[str, Any], **kwargs: Any) -> None:
        reached = {entry['to'] for entry in data['history']}
        needed = []
        if 'consented' in reached:
            needed.append('consented_at')
        if reached & _ENROLLED_STATES:
            needed += ['enrolled_at', 'program_start', 'assigned_advocate_id', 'service_plan']
        if data['state'] in _WEEK_STATES:
            needed.append('current_week')
        missing = [name for name in needed if not data.get(name)]
        if missing:
            raise self.rule_error('required_in_state', *missing)

    @validates_schema
    def _week_in_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        week = data.get('current_week')
        if week is None:
            return
        if data['state'] not in _WEEK_STATES:
            raise self.rule_error('week_outside_active', 'current_week')
        if week > data['program_length_weeks']:
            raise self.rule_error('week_out_of_range', 'current_week')

    @validates_schema
    def _diversion_ref_needs_release(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Presence only: the reference may be sealed.
        if (data.get('diversion_case_ref') is not None
                and data.get('referring_agency_release_id') is None):
            raise self.rule_error('diversion_needs_release', 'referring_agency_release_id')

