"""``screening/1``: one administration of a screening instrument (§6.2 C).

FROZEN: breaking changes go to ``schemas/v2/screening.py`` plus an upgrade
function (see ``schemas/v1/__init__.py``).

Items, allowed answers, modes and scoring come from the installed instrument
pack (``schemas.instruments``), never from code, so a licensed pack can be
installed without a release. Coded answers are T2 data; only the screener's
free-text notes are identifying.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields
from marshmallow import validate
from marshmallow import validates_schema

from schemas import codes
from schemas import instruments
from schemas.fields import UUID4
from schemas.fields import Code
from schemas.fields import FullMatch
from schemas.fields import StrictBoolean
from schemas.fields import Timestamp
from schemas.parts import PACK_ID_PATTERN
from schemas.parts import EnvelopeSchema
from schemas.parts import Location
from schemas.parts import ResponseNoteSchema
from schemas.parts import ScreeningResponseSchema
from schemas.parts import ScreeningResultSchema
from schemas.v1.contact import YOUTH_CODE_PATTERN

__all__ = ['ScreeningSchema']

_RESULT_KEYS = ('positive_screen', 'concern_level', 'trafficking_type')


class ScreeningSchema(EnvelopeSchema):
    """A screening: assent, coded responses and the result."""

    DOC_TYPE = 'screening'
    MAJOR = 1

    error_messages = {
        'subject_required': 'Give client_id or youth_code to say who was screened.',
        'declined_assent_has_responses': 'Must be empty when assent is declined.',
        'confidentiality_not_explained': 'Confidentiality limits must be explained before '
                                         'any response is recorded (Evid. Code 1038).',
        'explained_at_required': 'Required when confidentiality_limits_explained is true.',
        'unknown_instrument': 'Not an installed instrument pack.',
        'unknown_instrument_version': 'Not an installed version of this instrument pack.',
        'mode_not_allowed': 'This instrument pack may not be administered in this mode.',
        'unknown_item': 'Not an item of this instrument pack.',
        'answer_not_allowed': 'Not an allowed answer for this item.',
        'timeframe_not_allowed': 'Not an allowed timeframe for this item.',
        'duplicate_response': 'This item and timeframe are answered more than once.',
        'override_reason_required': "Required when the result differs from the pack's scoring.",
    }

    client_id = UUID4(allow_none=True)
    youth_code = fields.String(allow_none=True, validate=FullMatch(
        YOUTH_CODE_PATTERN, error='Must be a generated code such as quiet-river-07.'))
    instrument = fields.String(required=True, validate=FullMatch(
        PACK_ID_PATTERN, error='Must be an instrument pack id such as QYIT.'))
    instrument_version = fields.String(required=True, validate=FullMatch(
        instruments.VERSION_PATTERN, error='Must be a pack version such as 1.0.'))
    mode = Code(codes.SCREENING_MODES, required=True)
    administered_at = Timestamp(required=True)
    assent = Code(codes.SCREENING_ASSENT, required=True)
    confidentiality_limits_explained = StrictBoolean(required=True)
    confidentiality_explained_at = Timestamp(allow_none=True)
    responses = fields.List(fields.Nested(ScreeningResponseSchema), allow_none=True,
                            validate=validate.Length(max=200))
    response_notes = fields.List(fields.Nested(ResponseNoteSchema), allow_none=True,
                                 validate=validate.Length(max=50),
                                 metadata={'identifying': True})
    result = fields.Nested(ScreeningResultSchema, allow_none=True)
    followup_action = Code(codes.FOLLOWUP_ACTIONS, required=True)

    @validates_schema
    def _subject_named(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get('client_id') is None and data.get('youth_code') is None:
            raise self.rule_error('subject_required', 'client_id', 'youth_code')

    @validates_schema
    def _declined_assent_has_no_answers(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data['assent'] != 'declined':
            return
        # Presence only, so the sealed notes are not read.
        recorded = [name for name in ('responses', 'response_notes', 'result')
                    if data.get(name) not in (None, [])]
        if recorded:
            raise self.rule_error('declined_assent_has_responses', *recorded)

    @validates_schema
    def _confidentiality_explained_first(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get('responses') and not data['confidentiality_limits_explained']:
            raise self.rule_error('confidentiality_not_explained',
                                  'confidentiality_limits_explained')

    @validates_schema
    def _explanation_has_time(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data['confidentiality_limits_explained']
                and data.get('confidentiality_explained_at') is None):
            raise self.rule_error('explained_at_required', 'confidentiality_explained_at')

    @validates_schema
    def _responses_match_pack(self, data: dict[str, Any], **kwargs: Any) -> None:
        pack = instruments.find_pack(data['instrument'], data['instrument_version'])
        if pack is None:
            if instruments.find_pack(data['instrument']) is None:
                raise self.rule_error('unknown_instrument', 'instrument')
            raise self.rule_error('unknown_instrument_version', 'instrument_version')
        if data['mode'] not in pack.modes:
            raise self.rule_error('mode_not_allowed', 'mode')
        problems: list[tuple[str, Location]] = []
        answered: set[tuple[str, str | None]] = set()
        for index, response in enumerate(data.get('responses') or ()):
            item = pack.items.get(response['item_code'])
            if item is None:
                problems.append(('unknown_item', ('responses', index, 'item_code')))
                continue
            if response['value'] not in item.answers:
                problems.append(('answer_not_allowed', ('responses', index, 'value')))
            timeframe = response.get('timeframe')
            if timeframe is not None and item.timeframes and timeframe not in item.timeframes:
                problems.append(('timeframe_not_allowed', ('responses', index, 'timeframe')))
            if (response['item_code'], timeframe) in answered:
                problems.append(('duplicate_response', ('responses', index)))
            answered.add((response['item_code'], timeframe))
        # The notes' item codes are content once sealed; check them only before.
        if not self.SEALED:
            for index, note in enumerate(data.get('response_notes') or ()):
                if note['item_code'] not in pack.items:
                    problems.append(('unknown_item', ('response_notes', index, 'item_code')))
        if problems:
            raise self.rule_errors(problems)
        self._check_result_against_scoring(pack, data)

    def _check_result_against_scoring(self, pack: instruments.InstrumentPack,
                                      data: dict[str, Any]) -> None:
        # Runs only once every response is valid for the pack, so a bad
        # answer is reported as such and not also as a result mismatch.
        result, responses = data.get('result'), data.get('responses')
        if not result or not responses or result.get('override_reason') is not None:
            return
        scored = instruments.score(pack, responses)
        if any(key in scored and result.get(key) is not None and result[key] != scored[key]
               for key in _RESULT_KEYS):
            raise self.rule_error('override_reason_required', ('result', 'override_reason'))
