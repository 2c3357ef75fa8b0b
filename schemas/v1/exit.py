"""``exit/1``: how and when a youth left the program (§6.2 H).

FROZEN: breaking changes go to ``schemas/v2/exit.py`` plus an upgrade
function (see ``schemas/v1/__init__.py``).

The first three reasons map to HMIS R17. A completion notice to the DA or
probation (WIC 786.5) goes out only under a release naming that recipient,
so ``completion_notice_sent`` needs ``completion_notice_release_id``. Only
the free-text note is identifying.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields
from marshmallow import validate
from marshmallow import validates_schema

from schemas import program_codes as codes
from schemas.fields import UUID4
from schemas.fields import CalendarDate
from schemas.fields import Code
from schemas.fields import DocumentId
from schemas.fields import StrictBoolean
from schemas.parts import EnvelopeSchema

__all__ = ['ExitSchema']


class ExitSchema(EnvelopeSchema):
    """An exit from the program: date, reason, destination."""

    DOC_TYPE = 'exit'
    MAJOR = 1

    error_messages = {
        'exit_before_enrollment': 'Must not be earlier than enrolled_on.',
        'notice_needs_release': 'A completion notice needs a release naming its recipient.',
        'notice_only_on_completion': 'A completion notice is sent only for a completed program.',
        'not_an_enrollment': 'Must be the _id of an enrollment record.',
    }

    client_id = UUID4(required=True)
    enrollment_id = DocumentId(required=True)
    enrolled_on = CalendarDate(required=True)
    exit_at = CalendarDate(required=True)
    exit_reason = Code(codes.EXIT_REASONS, required=True)
    destination = Code(codes.EXIT_DESTINATIONS, allow_none=True)
    completion_notice_sent = StrictBoolean(required=True)
    completion_notice_release_id = UUID4(allow_none=True)
    note = fields.String(allow_none=True, validate=validate.Length(min=1, max=1000),
                         metadata={'identifying': True})

    @validates_schema
    def _names_an_enrollment(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data['enrollment_id'].startswith('enrollment:'):
            raise self.rule_error('not_an_enrollment', 'enrollment_id')

    @validates_schema
    def _exit_after_enrollment(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data['exit_at'] < data['enrolled_on']:
            raise self.rule_error('exit_before_enrollment', 'exit_at')

    @validates_schema
    def _notice_under_release(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data['completion_notice_sent']:
            return
        if data['exit_reason'] != 'completed':
            raise self.rule_error('notice_only_on_completion', 'completion_notice_sent')
        if data.get('completion_notice_release_id') is None:
            raise self.rule_error('notice_needs_release', 'completion_notice_release_id')
