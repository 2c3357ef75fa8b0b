"""``consent/1``: a participation consent or a release of information (§6.2 D).

FROZEN: breaking changes go to ``schemas/v2/consent.py`` plus an upgrade
function (see ``schemas/v1/__init__.py``).

VAWA (34 U.S.C. 12291(b)(2)) shapes the rules: releases are informed,
written and reasonably time-limited; an abuser of the minor may not consent;
a minor who may receive a service alone signs its release alone; a release is
never a condition of service. Which relationships are flagged abusive lives in
the youth's identity record, which a consent cannot read once sealed, so the
tablet copies the flagged relationship codes (non-identifying) into
``abuser_relationships`` when the consent is signed.
"""

from __future__ import annotations

import datetime as dt
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
from schemas.fields import valid_partial_date
from schemas.fields import valid_timestamp
from schemas.parts import EnvelopeSchema
from schemas.parts import ImageSchema

__all__ = ['ConsentSchema']

# Consents that release information to someone outside the program.
_RELEASES = frozenset({'release_of_information', 'part2_disclosure'})
# Consents VAWA or program policy require in writing.
_WRITTEN_ONLY = _RELEASES | {'program_participation'}
# Consents a minor may not give alone unless a minor-consent basis applies.
_GUARDIAN_UNLESS_BASIS = _WRITTEN_ONLY
_GUARDIAN_SIGNERS = frozenset({'parent_guardian', 'youth_and_guardian'})
# "Reasonably time-limited": the deployment configures a shorter maximum
# (default 90 days); this is the hard cap no configuration may exceed.
_MAX_RELEASE_DAYS = 366


def _day(text: str) -> dt.date:
    return valid_partial_date(text)[0]


class ConsentSchema(EnvelopeSchema):
    """A consent or release, with who signed it and for how long."""

    DOC_TYPE = 'consent'
    MAJOR = 1

    error_messages = {
        'release_details_required': 'Required for a release of information.',
        'narrative_needs_cosign': 'Releasing narrative needs a supervisor co-signature.',
        'guardian_relationship_required': 'Required when a parent or guardian signs.',
        'signer_flagged_abuser': 'This relationship is flagged as abusive and may not sign '
                                 '(34 U.S.C. 12291(b)(2)).',
        'guardian_signature_required': 'A minor signs this alone only with a minor-consent '
                                       'basis; otherwise a parent or guardian must sign.',
        'part2_minor_signs_alone': 'Under 42 CFR 2.14 only the minor may consent to this '
                                   'disclosure.',
        'written_required': 'This consent must be written, not oral.',
        'signature_required': 'Required for a written consent.',
        'expiry_not_after_effective': 'Must be later than effective_at.',
        'expiry_too_far': f'A release may last at most {_MAX_RELEASE_DAYS} days.',
        'revoked_before_effective': 'Must not be earlier than effective_at.',
    }

    client_id = UUID4(required=True)
    consent_type = Code(codes.CONSENT_TYPES, required=True)
    recipient_org = fields.String(allow_none=True, validate=FullMatch(
        r'^[a-z0-9][a-z0-9_-]{0,63}$', error='Must be a configured partner code.'))
    purpose = fields.String(allow_none=True, validate=validate.Length(min=1, max=500))
    data_categories = fields.List(Code(codes.DATA_CATEGORIES), allow_none=True,
                                  validate=NoDuplicates())
    cosigned_by = fields.String(allow_none=True, validate=validate.Length(min=1, max=128))
    signer = Code(codes.CONSENT_SIGNERS, required=True)
    youth_is_minor = StrictBoolean(required=True)
    minor_consent_basis = Code(codes.MINOR_CONSENT_BASES, allow_none=True)
    guardian_relationship = Code(codes.RELATIONSHIPS, allow_none=True)
    abuser_relationships = fields.List(Code(codes.RELATIONSHIPS), allow_none=True,
                                       validate=NoDuplicates())
    signer_name = fields.String(allow_none=True, validate=validate.Length(min=1, max=160),
                                metadata={'identifying': True})
    signature_image = fields.Nested(ImageSchema, allow_none=True, metadata={'identifying': True})
    guardian_signer_name = fields.String(allow_none=True,
                                         validate=validate.Length(min=1, max=160),
                                         metadata={'identifying': True})
    guardian_signature_image = fields.Nested(ImageSchema, allow_none=True,
                                             metadata={'identifying': True})
    method = Code(codes.CONSENT_METHODS, required=True)
    effective_at = CalendarDate(required=True)
    expires_at = CalendarDate(required=True)
    revoked_at = Timestamp(allow_none=True)
    condition_of_service = StrictBoolean(required=True, validate=validate.Equal(
        False, error='Must be false: a release is never a condition of service.'))

    @validates_schema
    def _release_has_details(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data['consent_type'] not in _RELEASES:
            return
        missing = [name for name in ('recipient_org', 'purpose', 'data_categories')
                   if not data.get(name)]
        if missing:
            raise self.rule_error('release_details_required', *missing)

    @validates_schema
    def _narrative_is_cosigned(self, data: dict[str, Any], **kwargs: Any) -> None:
        if 'narrative' in (data.get('data_categories') or ()) and not data.get('cosigned_by'):
            raise self.rule_error('narrative_needs_cosign', 'cosigned_by')

    @validates_schema
    def _guardian_signer_is_named(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data['signer'] in _GUARDIAN_SIGNERS and data.get('guardian_relationship') is None:
            raise self.rule_error('guardian_relationship_required', 'guardian_relationship')

    @validates_schema
    def _signer_not_flagged_abuser(self, data: dict[str, Any], **kwargs: Any) -> None:
        relationship = data.get('guardian_relationship')
        if (data['signer'] in _GUARDIAN_SIGNERS and relationship is not None
                and relationship in (data.get('abuser_relationships') or ())):
            raise self.rule_error('signer_flagged_abuser', 'guardian_relationship')

    @validates_schema
    def _minor_alone_needs_basis(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data['youth_is_minor'] and data['signer'] == 'youth'
                and data['consent_type'] in _GUARDIAN_UNLESS_BASIS
                and data.get('minor_consent_basis') is None):
            raise self.rule_error('guardian_signature_required', 'signer')

    @validates_schema
    def _part2_minor_signs_alone(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data['consent_type'] == 'part2_disclosure' and data['youth_is_minor']
                and data.get('minor_consent_basis') == 'fc_6929_substance_use'
                and data['signer'] != 'youth'):
            raise self.rule_error('part2_minor_signs_alone', 'signer')

    @validates_schema
    def _written_when_required(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data['method'] == 'oral' and data['consent_type'] in _WRITTEN_ONLY:
            raise self.rule_error('written_required', 'method')

    @validates_schema
    def _written_consent_is_signed(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Presence only: sealed names and images are not read.
        if data['method'] == 'oral':
            return
        needed = ['signer_name']
        if data['method'] == 'written_on_device':
            needed.append('signature_image')
        if data['signer'] == 'youth_and_guardian':
            needed.append('guardian_signer_name')
            if data['method'] == 'written_on_device':
                needed.append('guardian_signature_image')
        missing = [name for name in needed if data.get(name) is None]
        if missing:
            raise self.rule_error('signature_required', *missing)

    @validates_schema
    def _expiry_after_effective(self, data: dict[str, Any], **kwargs: Any) -> None:
        effective, expires = _day(data['effective_at']), _day(data['expires_at'])
        if expires <= effective:
            raise self.rule_error('expiry_not_after_effective', 'expires_at')
        if (data['consent_type'] in _RELEASES
                and (expires - effective).days > _MAX_RELEASE_DAYS):
            raise self.rule_error('expiry_too_far', 'expires_at')

    @validates_schema
    def _revoked_after_effective(self, data: dict[str, Any], **kwargs: Any) -> None:
        revoked_at = data.get('revoked_at')
        if revoked_at is not None and (
                valid_timestamp(revoked_at).date() < _day(data['effective_at'])):
            raise self.rule_error('revoked_before_effective', 'revoked_at')
