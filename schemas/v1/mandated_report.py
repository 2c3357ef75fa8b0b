"""``mandated_report/1``: a report made under a mandated-reporting duty (§6.2 I).

FROZEN: breaking changes go to ``schemas/v2/mandated_report.py`` plus an
upgrade function (see ``schemas/v1/__init__.py``).

The agency's reference number is identifying. A written follow-up later than
36 hours after the report is allowed (it is a warning for the supervisor's
list, not a block), but never earlier than the report.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields
from marshmallow import validate
from marshmallow import validates_schema

from schemas import program_codes as codes
from schemas.fields import UUID4
from schemas.fields import Code
from schemas.fields import StrictBoolean
from schemas.fields import Timestamp
from schemas.fields import Token
from schemas.fields import valid_timestamp
from schemas.parts import EnvelopeSchema

__all__ = ['FOLLOWUP_HOURS', 'MandatedReportSchema']

#: Hours within which the written follow-up is due (Penal Code 11166).
FOLLOWUP_HOURS = 36


class MandatedReportSchema(EnvelopeSchema):
    """A mandated report: who made it, when, to which agency."""

    DOC_TYPE = 'mandated_report'
    MAJOR = 1

    error_messages = {
        'not_a_reporter': 'The person making the report must be a mandated reporter or a '
                          'supervisor.',
        'before_report': 'Must not be earlier than made_at.',
    }

    client_id = UUID4(required=True)
    made_by = Token(required=True)
    made_by_is_mandated_reporter = StrictBoolean(required=True)
    made_by_is_supervisor = StrictBoolean(required=True)
    made_at = Timestamp(required=True)
    agency = Code(codes.MANDATED_REPORT_AGENCIES, required=True)
    reference_number = fields.String(allow_none=True, validate=validate.Length(min=1, max=64),
                                     metadata={'identifying': True})
    written_followup_at = Timestamp(allow_none=True)
    youth_notified_at = Timestamp(allow_none=True)

    @validates_schema
    def _made_by_reporter(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not (data['made_by_is_mandated_reporter'] or data['made_by_is_supervisor']):
            raise self.rule_error('not_a_reporter', 'made_by_is_mandated_reporter')

    @validates_schema
    def _after_report(self, data: dict[str, Any], **kwargs: Any) -> None:
        made = valid_timestamp(data['made_at'])
        late = [name for name in ('written_followup_at', 'youth_notified_at')
                if data.get(name) is not None and valid_timestamp(data[name]) < made]
        if late:
            raise self.rule_error('before_report', *late)
