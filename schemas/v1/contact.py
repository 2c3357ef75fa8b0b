"""``contact/1``: one street-outreach contact (HMIS 4.12 analogue).

FROZEN: breaking changes go to ``schemas/v2/contact.py`` plus an upgrade
function (see ``schemas/v1/__init__.py``).

Fields follow domain-screening.md §6.2 A. ``contact_id`` is the document
``_id``; ``worker_id`` is the envelope ``owner``; ``device_id`` the envelope
``device``.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields
from marshmallow import validate
from marshmallow import validates_schema

from schemas import codes
from schemas.fields import UUID4
from schemas.fields import CalendarDate
from schemas.fields import Code
from schemas.fields import FullMatch
from schemas.fields import NoDuplicates
from schemas.fields import StrictBoolean
from schemas.fields import Timestamp
from schemas.parts import EnvelopeSchema
from schemas.parts import GeoPointSchema

__all__ = ['SERVICE_AREA_PATTERN', 'YOUTH_CODE_PATTERN', 'ContactSchema']

#: A device-generated word pair, never typed from a name (e.g. ``quiet-river-07``).
YOUTH_CODE_PATTERN = r'^[a-z]{1,16}-[a-z]{1,16}-[0-9]{2}$'
#: Configured service areas are short lowercase codes (e.g. ``spa-6``).
SERVICE_AREA_PATTERN = r'^[a-z0-9][a-z0-9_-]{0,31}$'


class ContactSchema(EnvelopeSchema):
    """A street-outreach contact, logged cheaply at every encounter."""

    DOC_TYPE = 'contact'
    MAJOR = 1

    error_messages = {
        'safety_action_required': 'Required when immediate_danger is true.',
        'engagement_date_required': 'Required when engaged is true (HMIS 4.13).',
    }

    contact_at = Timestamp(required=True)
    service_area_code = fields.String(required=True, validate=FullMatch(
        SERVICE_AREA_PATTERN, error='Must be a configured service area code.'))
    # Policy default is not to collect it; when collected it is coarsened first.
    precise_location = fields.Nested(GeoPointSchema, allow_none=True,
                                     metadata={'identifying': True})
    contact_type = Code(codes.CONTACT_TYPES, required=True)
    living_situation = Code(codes.LIVING_SITUATIONS, allow_none=True)
    youth_code = fields.String(allow_none=True, validate=FullMatch(
        YOUTH_CODE_PATTERN, error='Must be a generated code such as quiet-river-07.'))
    client_id = UUID4(allow_none=True)
    engaged = StrictBoolean(required=True)
    engagement_date = CalendarDate(allow_none=True)
    services_offered = fields.List(Code(codes.SERVICES_OFFERED), allow_none=True,
                                   validate=NoDuplicates())
    immediate_danger = StrictBoolean(required=True)
    safety_action = Code(codes.SAFETY_ACTIONS, allow_none=True)
    notes = fields.String(allow_none=True, validate=validate.Length(min=1, max=1000),
                          metadata={'identifying': True})

    @validates_schema
    def _danger_needs_safety_action(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data['immediate_danger'] and data.get('safety_action') is None:
            raise self.rule_error('safety_action_required', 'safety_action')

    @validates_schema
    def _engagement_needs_date(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data['engaged'] and data.get('engagement_date') is None:
            raise self.rule_error('engagement_date_required', 'engagement_date')
