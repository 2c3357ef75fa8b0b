"""Small schemas the record schemas are composed from, and the envelope.

Every record schema subclasses ``EnvelopeSchema``: the CouchDB meta fields,
the record's type and schema tag, ownership, timestamps and the fle/1 header.
Parts are shared by the v1 record schemas; a breaking change to a part is a
breaking change to every record using it (new part class in the new major's
module, plus an upgrade function), so parts are frozen like the records.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from typing import ClassVar

from marshmallow import RAISE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate
from marshmallow import validates
from marshmallow import validates_schema

from schemas import codes
from schemas.fields import FLE_VERSION
from schemas.fields import RKID_PATTERN
from schemas.fields import Base64Data
from schemas.fields import Base64UrlBytes
from schemas.fields import Code
from schemas.fields import DocumentId
from schemas.fields import ExactInteger
from schemas.fields import FleIdentifier
from schemas.fields import FleTimestamp
from schemas.fields import FullMatch
from schemas.fields import Number
from schemas.fields import Phone
from schemas.fields import StrictBoolean
from schemas.fields import Timestamp
from schemas.fields import Token
from schemas.fields import valid_timestamp
from schemas.pointers import identifying_pointers
from schemas.pointers import resolve
from schemas.pointers import split

__all__ = [
    'AbuserFlagSchema',
    'EnvelopeSchema',
    'FleHeaderSchema',
    'FleKeySchema',
    'GeoPointSchema',
    'GuardianContactSchema',
    'ITEM_CODE_PATTERN',
    'PACK_ID_PATTERN',
    'IdNumberSchema',
    'ImageSchema',
    'Location',
    'RecordKeyTable',
    'ResponseNoteSchema',
    'RevisionsSchema',
    'ScreeningResponseSchema',
    'ScreeningResultSchema',
    'SocialHandleSchema',
    'StrictSchema',
]

#: Instrument pack ids, e.g. ``QYIT`` or ``CSE_IT_2``.
PACK_ID_PATTERN = r'^[A-Z][A-Z0-9_]{1,31}$'
#: Item codes inside a pack, e.g. ``QYIT_1`` or HMIS ``ExchangeForSex``.
ITEM_CODE_PATTERN = r'^[A-Za-z][A-Za-z0-9_]{0,63}$'

#: Where a rule files its message: a field name, or a path of names and indexes.
Location = str | tuple[str | int, ...]

# A sealed photo or signature must fit the 64 KiB ciphertext bound once it is
# base64 text inside JSON (4/3 growth plus padding to 32 bytes).
_MAX_IMAGE_BYTES = 32 * 1024
_MAX_RECORD_KEYS = 256


class StrictSchema(Schema):
    """Base of every schema here: unknown keys are refused, rules are data."""

    class Meta:
        unknown = RAISE

    def rule_error(self, key: str, *locations: Location) -> ValidationError:
        """Build the error of one broken rule, filed under each location.

        Args:
            key: Key of the message in ``error_messages``.
            *locations: Field names, or tuples of names and list indexes for
                nested fields. With none, the message goes under ``_schema``.
        """
        return self.rule_errors([(key, location) for location in locations or [()]])

    def rule_errors(self, problems: Iterable[tuple[str, Location]]) -> ValidationError:
        """Build one error from several ``(message key, location)`` pairs."""
        messages: dict[Any, Any] = {}
        for key, location in problems:
            tokens = (location,) if isinstance(location, str) else tuple(location) or ('_schema',)
            node = messages
            for token in tokens[:-1]:
                node = node.setdefault(token, {})
            node.setdefault(tokens[-1], []).append(self.error_messages[key])
        return ValidationError(messages)


# --- CouchDB meta and fle/1 header ---


class RevisionsSchema(StrictSchema):
    """CouchDB ``_revisions``, as replication sends it with ``new_edits=false``."""

    start = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))
    ids = fields.List(
        fields.String(validate=FullMatch(r'^[0-9a-f]{1,64}$',
                                         error='Must be a lowercase hex revision hash.')),
        required=True, validate=validate.Length(min=1, max=1000))


class FleKeySchema(StrictSchema):
    """One record key of the fle/1 header (its envelope lives in keyvault)."""

    commit = Base64UrlBytes(size=32, required=True)
    kek = FleIdentifier(required=True)
    # Optional, but never null: an opener refuses a null ``dev`` or ``at``.
    dev = FleIdentifier()
    at = FleTimestamp()


class RecordKeyTable(fields.Dict):
    """The header's ``keys``: record key id to key entry.

    Keys are checked before values, and a bad key is reported without being
    echoed: it is client input and could be anything.
    """

    #: Default error messages.
    default_error_messages = {
        'invalid': 'Must be an object mapping record key ids to key entries.',
        'empty': 'Must name at least one record key.',
        'too_many': f'Must name at most {_MAX_RECORD_KEYS} record keys.',
        'invalid_rkid': 'Every key must be a record key id: 32 lowercase hex characters.',
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            keys=fields.String(validate=FullMatch(f'^{RKID_PATTERN.pattern}$')),
            values=fields.Nested(FleKeySchema), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.make_error('invalid')
        if not value:
            raise self.make_error('empty')
        if len(value) > _MAX_RECORD_KEYS:
            raise self.make_error('too_many')
        if not all(isinstance(rkid, str) and RKID_PATTERN.fullmatch(rkid) for rkid in value):
            raise self.make_error('invalid_rkid')
        return super()._deserialize(value, attr, data, **kwargs)


class FleHeaderSchema(StrictSchema):
    """The document's fle/1 header: format version and its record keys."""

    v = ExactInteger(FLE_VERSION, required=True)
    keys = RecordKeyTable(required=True)


# --- the envelope ---


class EnvelopeSchema(StrictSchema):
    """Fields and rules every record document shares.

    Subclasses set ``DOC_TYPE`` and ``MAJOR``. The registry derives a sealed
    variant of each record schema (``SEALED = True``) in which identifying
    fields are ``SealedValue`` fields; rules that read an identifying field's
    content must return early when ``SEALED`` is true, since it is ciphertext.
    """

    #: Record type this schema validates.
    DOC_TYPE: ClassVar[str] = ''
    #: Schema major version, frozen with the module it lives in.
    MAJOR: ClassVar[int] = 0
    #: True in the variant that requires identifying fields to be sealed.
    SEALED: ClassVar[bool] = False

    error_messages = {
        'type_mismatch': 'Must name the record type of this schema.',
        'schema_mismatch': 'Must be "<type>/<major>" for this record type and version.',
        'id_type_mismatch': 'The part before ":" must be the record type.',
        'updated_before_created': 'Must not be earlier than created_at.',
        'fle_header_required': 'Required when any identifying field holds a sealed value.',
        'unknown_rk': 'Names a record key missing from fle.keys.',
    }

    _id = DocumentId(required=True)
    _rev = fields.String(validate=FullMatch(r'^[1-9][0-9]{0,9}-[0-9a-f]{1,64}$',
                                            error='Must be a CouchDB revision.'))
    _revisions = fields.Nested(RevisionsSchema)
    type = fields.String(required=True)
    schema = fields.String(required=True)
    org = FleIdentifier(required=True)
    owner = Token(required=True)
    device = Token(allow_none=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)
    fle = fields.Nested(FleHeaderSchema, allow_none=True)

    @validates('type')
    def _type_names_this_schema(self, value: str, **kwargs: Any) -> None:
        if value != self.DOC_TYPE:
            raise ValidationError(self.error_messages['type_mismatch'])

    @validates('schema')
    def _schema_tag_names_this_schema(self, value: str, **kwargs: Any) -> None:
        if value != f'{self.DOC_TYPE}/{self.MAJOR}':
            raise ValidationError(self.error_messages['schema_mismatch'])

    @validates('_id')
    def _id_names_this_type(self, value: str, **kwargs: Any) -> None:
        if value.partition(':')[0] != self.DOC_TYPE:
            raise ValidationError(self.error_messages['id_type_mismatch'])

    @validates_schema
    def _updated_not_before_created(self, data: dict[str, Any], **kwargs: Any) -> None:
        if valid_timestamp(data['updated_at']) < valid_timestamp(data['created_at']):
            raise self.rule_error('updated_before_created', 'updated_at')

    @validates_schema
    def _sealed_values_name_header_keys(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Presence and the rk id are structure, not content, so this rule may
        # look at sealed values; it never looks inside n or ct.
        if not self.SEALED:
            return
        sealed = {pointer: value for pointer in identifying_pointers(type(self))
                  if (value := resolve(data, pointer)) is not None}
        if not sealed:
            return
        header = data.get('fle')
        if header is None:
            raise self.rule_error('fle_header_required', 'fle')
        unknown = [(*split(pointer), 'rk') for pointer, value in sealed.items()
                   if value['rk'] not in header['keys']]
        if unknown:
            raise self.rule_error('unknown_rk', *unknown)


# --- identity parts ---


class GuardianContactSchema(StrictSchema):
    """How to reach a guardian; only recorded when contact is safe."""

    name = fields.String(validate=validate.Length(min=1, max=160), allow_none=True,
                         metadata={'identifying': True})
    phone = Phone(allow_none=True, metadata={'identifying': True})
    relationship = Code(codes.RELATIONSHIPS, required=True)


class SocialHandleSchema(StrictSchema):
    """An account on a messaging or social platform."""

    platform = Code(codes.SOCIAL_PLATFORMS, required=True)
    handle = fields.String(required=True, validate=validate.Length(min=1, max=100))


class IdNumberSchema(StrictSchema):
    """A government or school identification number."""

    type = Code(codes.ID_NUMBER_TYPES, required=True)
    value = fields.String(required=True, validate=validate.Length(min=1, max=64))


class AbuserFlagSchema(StrictSchema):
    """A relationship to the youth flagged as abusive (blocks consent signing)."""

    relationship = Code(codes.RELATIONSHIPS, required=True)


class GeoPointSchema(StrictSchema):
    """A precise place: coordinates and an optional cross-street or venue."""

    lat = Number(required=True, validate=validate.Range(min=-90, max=90))
    lon = Number(required=True, validate=validate.Range(min=-180, max=180))
    accuracy_m = Number(allow_none=True, validate=validate.Range(min=0))
    description = fields.String(allow_none=True, validate=validate.Length(min=1, max=200))


class ImageSchema(StrictSchema):
    """A small image (photo thumbnail or signature), sealed as one value."""

    media_type = Code(codes.IMAGE_MEDIA_TYPES, required=True)
    data = Base64Data(max_bytes=_MAX_IMAGE_BYTES, required=True)


# --- screening parts ---


class ScreeningResponseSchema(StrictSchema):
    """One coded answer to one item of an instrument pack."""

    item_code = fields.String(required=True, validate=FullMatch(
        ITEM_CODE_PATTERN, error='Must be an item code.'))
    value = fields.String(required=True, validate=validate.Length(min=1, max=64))
    timeframe = Code(codes.ANSWER_TIMEFRAMES, allow_none=True)


class ResponseNoteSchema(StrictSchema):
    """Free text a screener kept about one item (identifying as a whole list)."""

    item_code = fields.String(required=True, validate=FullMatch(
        ITEM_CODE_PATTERN, error='Must be an item code.'))
    text = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class ScreeningResultSchema(StrictSchema):
    """The outcome of a screening, as the pack's rules or the screener gave it."""

    positive_screen = StrictBoolean(allow_none=True)
    concern_level = Code(codes.CONCERN_LEVELS, allow_none=True)
    trafficking_type = Code(codes.TRAFFICKING_TYPES, allow_none=True)
    override_reason = Code(codes.OVERRIDE_REASONS, allow_none=True)
