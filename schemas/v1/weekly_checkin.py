"""``weekly_checkin/1``: one program week of a case, attended or missed (§6.2 F).

FROZEN: breaking changes go to ``schemas/v2/weekly_checkin.py`` plus an
upgrade function (see ``schemas/v1/__init__.py``).

Coded answers are T2 data; only the advocate's note is identifying. The
check-in names its case by the enrollment's document id.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields
from marshmallow import validate
from marshmallow import validates_schema

from schemas import program_codes as codes
from schemas.fields import UUID4
from schemas.fields import Code
from schemas.fields import DocumentId
from schemas.fields import NoDuplicates
from schemas.fields import StrictBoolean
from schemas.fields import Timestamp
from schemas.parts import EnvelopeSchema

__all__ = ['WeeklyCheckinSchema']


class WeeklyCheckinSchema(EnvelopeSchema):
    """A week of the program: attendance, services received, status codes."""

    DOC_TYPE = 'weekly_checkin'
    MAJOR = 1

    error_messages = {
        'services_required': 'Required when the youth attended.',
        'services_when_missed': 'Must be empty when the week was missed.',
        'not_an_enrollment': 'Must be the _id of an enrollment record.',
    }

    client_id = UUID4(required=True)
    enrollment_id = DocumentId(required=True)
    week_number = fields.Integer(strict=True, required=True,
                                 validate=validate.Range(min=1, max=52))
    checked_in_at = Timestamp(required=True)
    attended = StrictBoolean(required=True)
    services_received = fields.List(Code(codes.SERVICE_PLAN_ITEMS), allow_none=True,
                                    validate=NoDuplicates())
    sud_engaged = Code(codes.SUD_ENGAGEMENT, allow_none=True)
    school_status = Code(codes.SCHOOL_STATUSES, allow_none=True)
    housing_status = Code(codes.HOUSING_STATUSES, allow_none=True)
    safety_concern = StrictBoolean(allow_none=True)
    advocate_note = fields.String(allow_none=True, validate=validate.Length(min=1, max=2000),
                                  metadata={'identifying': True})

    @validates_schema
    def _names_an_enrollment(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data['enrollment_id'].startswith('enrollment:'):
            raise self.rule_error('not_an_enrollment', 'enrollment_id')

    @validates_schema
    def _services_follow_attendance(self, data: dict[str, Any], **kwargs: Any) -> None:
        services = data.get('services_received')
        if data['attended'] and not services:
            raise self.rule_error('services_required', 'services_received')
        if not data['attended'] and services:
            raise self.rule_error('services_when_missed', 'services_received')
