"""``referral/1``: a referral of a youth to a partner service (§6.2 G).

FROZEN: breaking changes go to ``schemas/v2/referral.py`` plus an upgrade
function (see ``schemas/v1/__init__.py``).

A referral has one parent: the program case (``enrollment_id``) or, before
enrollment, the outreach contact (``contact_id``). Outcomes follow the HMIS
referral-outcome style. Only the free-text note is identifying.
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
from schemas.fields import FullMatch
from schemas.parts import EnvelopeSchema

__all__ = ['ReferralSchema']


class ReferralSchema(EnvelopeSchema):
    """A referral: category, partner, date and outcome."""

    DOC_TYPE = 'referral'
    MAJOR = 1

    error_messages = {
        'one_parent': 'Give exactly one of enrollment_id and contact_id.',
        'wrong_parent_type': 'Must be the _id of a record of this type.',
        'outcome_date_required': 'Required once the outcome is known.',
        'outcome_before_referral': 'Must not be earlier than referred_at.',
    }

    client_id = UUID4(allow_none=True)
    enrollment_id = DocumentId(allow_none=True)
    contact_id = DocumentId(allow_none=True)
    category = Code(codes.REFERRAL_CATEGORIES, required=True)
    partner_org_code = fields.String(required=True, validate=FullMatch(
        r'^[a-z0-9][a-z0-9_-]{0,63}$', error='Must be a configured partner code.'))
    referred_at = CalendarDate(required=True)
    outcome = Code(codes.REFERRAL_OUTCOMES, required=True)
    outcome_at = CalendarDate(allow_none=True)
    note = fields.String(allow_none=True, validate=validate.Length(min=1, max=1000),
                         metadata={'identifying': True})

    @validates_schema
    def _one_parent(self, data: dict[str, Any], **kwargs: Any) -> None:
        parents = [name for name in ('enrollment_id', 'contact_id') if data.get(name)]
        if len(parents) != 1:
            raise self.rule_error('one_parent', 'enrollment_id', 'contact_id')
        name = parents[0]
        if not data[name].startswith(name.removesuffix('_id') + ':'):
            raise self.rule_error('wrong_parent_type', name)

    @validates_schema
    def _outcome_dated(self, data: dict[str, Any], **kwargs: Any) -> None:
        outcome_at = data.get('outcome_at')
        if data['outcome'] != 'pending' and outcome_at is None:
            raise self.rule_error('outcome_date_required', 'outcome_at')
        if outcome_at is not None and outcome_at < data['referred_at']:
            raise self.rule_error('outcome_before_referral', 'outcome_at')
