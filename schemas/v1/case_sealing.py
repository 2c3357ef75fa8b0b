"""``case_sealing/1``: the record that a youth's case was sealed (§6.2 J, §2.7).

FROZEN: breaking changes go to ``schemas/v2/case_sealing.py`` plus an upgrade
function (see ``schemas/v1/__init__.py``).

Written by the service when the two-person sealing of the youth (the
``sealing:`` proposal in ``directory``) is approved; it keeps the
non-identifying tally (when, on what basis) after the keys are gone, so
reports can count records sealed. Named ``case_sealing`` so it is never
confused with the proposal. A court order's reference is identifying.
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
from schemas.fields import StrictBoolean
from schemas.fields import Timestamp
from schemas.fields import Token
from schemas.fields import valid_timestamp
from schemas.parts import EnvelopeSchema

__all__ = ['CaseSealingSchema']


class CaseSealingSchema(EnvelopeSchema):
    """A sealing carried out: basis, both people, and that the keys were destroyed."""

    DOC_TYPE = 'case_sealing'
    MAJOR = 1

    error_messages = {
        'keys_must_be_destroyed': 'Must be true: a sealing destroys the keys.',
        'two_people': 'The proposer and the approver must be two different people.',
        'approved_before_proposed': 'Must not be earlier than proposed_at.',
        'court_order_ref_required': 'Required for a sealing by court order.',
        'not_an_enrollment': 'Must be the _id of an enrollment record.',
    }

    client_id = UUID4(required=True)
    enrollment_id = DocumentId(allow_none=True)
    basis = Code(codes.SEALING_BASES, required=True)
    proposed_by = Token(required=True)
    proposed_at = Timestamp(required=True)
    approved_by = Token(required=True)
    sealed_at = Timestamp(required=True)
    keys_destroyed = StrictBoolean(required=True)
    court_order_ref = fields.String(allow_none=True, validate=validate.Length(min=1, max=64),
                                    metadata={'identifying': True})

    @validates_schema
    def _irreversible(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data['keys_destroyed'] is not True:
            raise self.rule_error('keys_must_be_destroyed', 'keys_destroyed')

    @validates_schema
    def _two_people(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data['proposed_by'] == data['approved_by']:
            raise self.rule_error('two_people', 'approved_by')
        if valid_timestamp(data['sealed_at']) < valid_timestamp(data['proposed_at']):
            raise self.rule_error('approved_before_proposed', 'sealed_at')

    @validates_schema
    def _court_order_named(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data['basis'] == 'court_order' and data.get('court_order_ref') is None:
            raise self.rule_error('court_order_ref_required', 'court_order_ref')
        enrollment = data.get('enrollment_id')
        if enrollment is not None and not enrollment.startswith('enrollment:'):
            raise self.rule_error('not_an_enrollment', 'enrollment_id')
