"""``identity/1``: the identifying vault of one youth (§6.2 B ``client_identity``).

FROZEN: breaking changes go to ``schemas/v2/identity.py`` plus an upgrade
function (see ``schemas/v1/__init__.py``).

Every field marked identifying is sealed to the center key on the tablet
(statutory PII, 34 U.S.C. 12291(a), domain-screening.md §3). The unmarked
fields are T2 demographics kept beside them for aggregates. Not collected at
all, as §6.2 B says: religion and full SSN (only ``ssn_last4`` where a funder
insists). ``photo`` is a small thumbnail for deployments whose policy
requires one; the default policy is not to collect it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import fields
from marshmallow import validate
from marshmallow import validates_schema

from schemas import codes
from schemas.fields import UUID4
from schemas.fields import Code
from schemas.fields import FullMatch
from schemas.fields import NoDuplicates
from schemas.fields import PartialDate
from schemas.fields import Phone
from schemas.fields import StrictBoolean
from schemas.fields import valid_partial_date
from schemas.fields import valid_timestamp
from schemas.parts import AbuserFlagSchema
from schemas.parts import EnvelopeSchema
from schemas.parts import GuardianContactSchema
from schemas.parts import IdNumberSchema
from schemas.parts import ImageSchema
from schemas.parts import SocialHandleSchema

__all__ = ['IdentitySchema']

# Data-quality answers that mean "no value was given".
_NOT_REPORTED = frozenset(codes.HMIS_DATA_QUALITY)
# Self-reported age may differ from the DOB-derived one by this many years.
_AGE_TOLERANCE_YEARS = 1


def _age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _name(max_length: int) -> fields.String:
    return fields.String(allow_none=True, validate=validate.Length(min=1, max=max_length),
                         metadata={'identifying': True})


class IdentitySchema(EnvelopeSchema):
    """Who a youth is: names, contacts, documents, demographics."""

    DOC_TYPE = 'identity'
    MAJOR = 1

    error_messages = {
        'guardian_not_safe': 'Must be true to record a guardian contact.',
        'guardian_flagged_abuser': 'This relationship is flagged as abusive; do not record '
                                   'it as a guardian contact.',
        'age_dob_mismatch': 'Must agree with date_of_birth within one year.',
        'dob_quality_mismatch': 'Does not match what date_of_birth holds.',
        'name_quality_mismatch': 'Does not match which names are recorded.',
    }

    client_id = UUID4(required=True)
    preferred_name = _name(80)
    legal_first_name = _name(80)
    legal_last_name = _name(80)
    name_data_quality = Code(codes.NAME_DATA_QUALITY, required=True)
    aliases = fields.List(fields.String(validate=validate.Length(min=1, max=80)),
                          allow_none=True, validate=[validate.Length(max=10), NoDuplicates()],
                          metadata={'identifying': True})
    date_of_birth = PartialDate(allow_none=True, metadata={'identifying': True})
    dob_data_quality = Code(codes.DOB_DATA_QUALITY, required=True)
    age_at_screening = fields.Integer(strict=True, required=True,
                                      validate=validate.Range(min=8, max=25))
    phones = fields.List(Phone(), allow_none=True,
                         validate=[validate.Length(max=5), NoDuplicates()],
                         metadata={'identifying': True})
    email = fields.Email(allow_none=True, validate=validate.Length(max=254),
                         metadata={'identifying': True})
    social_handles = fields.List(fields.Nested(SocialHandleSchema), allow_none=True,
                                 validate=validate.Length(max=10),
                                 metadata={'identifying': True})
    current_location_or_address = fields.String(
        allow_none=True, validate=validate.Length(min=1, max=500), metadata={'identifying': True})
    placement_or_shelter = fields.String(
        allow_none=True, validate=validate.Length(min=1, max=500), metadata={'identifying': True})
    ssn_last4 = fields.String(allow_none=True, validate=FullMatch(
        r'^[0-9]{4}$', error='Must be the last four digits only.'),
        metadata={'identifying': True})
    id_numbers = fields.List(fields.Nested(IdNumberSchema), allow_none=True,
                             validate=validate.Length(max=5), metadata={'identifying': True})
    race_ethnicity = fields.List(Code(codes.RACE_ETHNICITY), allow_none=True,
                                 validate=[validate.Length(min=1, max=8), NoDuplicates()],
                                 metadata={'identifying': True})
    sex = Code(codes.SEX, allow_none=True)
    gender_identity = Code(codes.GENDER_IDENTITIES, allow_none=True)
    primary_language = fields.String(allow_none=True, validate=FullMatch(
        r'^[a-z]{2,3}$', error='Must be an ISO 639 language code.'))
    country_of_birth = fields.String(allow_none=True, validate=FullMatch(
        r'^[A-Z]{2}$', error='Must be an ISO 3166-1 alpha-2 country code.'))
    school_name = fields.String(allow_none=True, validate=validate.Length(min=1, max=200),
                                metadata={'identifying': True})
    guardian = fields.Nested(GuardianContactSchema, allow_none=True)
    guardian_safe = StrictBoolean(allow_none=True)
    known_abuser_flags = fields.List(fields.Nested(AbuserFlagSchema), allow_none=True,
                                     validate=validate.Length(max=10))
    exploiter_identifiers = fields.String(allow_none=True,
                                          validate=validate.Length(min=1, max=2000),
                                          metadata={'identifying': True})
    distinguishing_marks = fields.String(allow_none=True,
                                         validate=validate.Length(min=1, max=1000),
                                         metadata={'identifying': True})
    photo = fields.Nested(ImageSchema, allow_none=True, metadata={'identifying': True})

    @validates_schema
    def _guardian_contact_needs_safe(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get('guardian') is not None and data.get('guardian_safe') is not True:
            raise self.rule_error('guardian_not_safe', 'guardian_safe')

    @validates_schema
    def _guardian_not_flagged_abuser(self, data: dict[str, Any], **kwargs: Any) -> None:
        guardian = data.get('guardian')
        if guardian is None:
            return
        flagged = {flag['relationship'] for flag in data.get('known_abuser_flags') or ()}
        if guardian['relationship'] in flagged:
            raise self.rule_error('guardian_flagged_abuser', ('guardian', 'relationship'))

    @validates_schema
    def _age_agrees_with_dob(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Reads the date of birth itself, so it can only run before sealing.
        if self.SEALED or data.get('date_of_birth') is None:
            return
        earliest_birth, latest_birth = valid_partial_date(data['date_of_birth'])
        recorded_on = valid_timestamp(data['created_at']).date()
        youngest = _age_on(latest_birth, recorded_on)
        oldest = _age_on(earliest_birth, recorded_on)
        age = data['age_at_screening']
        if not youngest - _AGE_TOLERANCE_YEARS <= age <= oldest + _AGE_TOLERANCE_YEARS:
            raise self.rule_error('age_dob_mismatch', 'age_at_screening')

    @validates_schema
    def _dob_quality_matches_dob(self, data: dict[str, Any], **kwargs: Any) -> None:
        quality = data['dob_data_quality']
        has_dob = data.get('date_of_birth') is not None
        if has_dob == (quality in _NOT_REPORTED):
            raise self.rule_error('dob_quality_mismatch', 'dob_data_quality')
        # Whether the date is partial is content: checked only before sealing.
        if has_dob and not self.SEALED and quality == 'full_dob_reported':
            first_day, last_day = valid_partial_date(data['date_of_birth'])
            if first_day != last_day:
                raise self.rule_error('dob_quality_mismatch', 'dob_data_quality')

    @validates_schema
    def _name_quality_matches_names(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Presence only: a sealed name is present without being read.
        quality = data['name_data_quality']
        legal = [data.get('legal_first_name'), data.get('legal_last_name')]
        if quality == 'full_name_reported':
            broken = any(name is None for name in legal)
        elif quality in _NOT_REPORTED:
            broken = any(name is not None for name in legal)
        else:
            broken = False
        if broken:
            raise self.rule_error('name_quality_mismatch', 'name_data_quality')
