"""Which schema validates which ``"<type>/<major>"``, and its sealed variant.

Adding a major: write ``schemas/v2/<type>.py``, add it to ``SCHEMAS``, bump
``CURRENT_MAJOR`` and register the ``(<type>, 1)`` upgrade in
``schemas/upgrades.py``. Older majors stay in ``SCHEMAS``: documents are
validated as written before they are lifted.
"""

from __future__ import annotations

import functools
from typing import TypeVar, cast

import marshmallow
from marshmallow import fields

from schemas import v1
from schemas.errors import UnknownSchema
from schemas.fields import SealedValue
from schemas.parts import EnvelopeSchema
from schemas.pointers import escape
from schemas.pointers import identifying_pointers
from schemas.pointers import is_identifying

_SchemaT = TypeVar('_SchemaT', bound=marshmallow.Schema)

__all__ = [
    'CURRENT_MAJOR',
    'RECORD_TYPES',
    'SCHEMAS',
    'identifying_paths',
    'schema_for',
    'sealed_variant',
]

RECORD_TYPES: tuple[str, ...] = ('contact', 'identity', 'screening', 'consent', 'enrollment',
                                 'weekly_checkin', 'referral', 'exit', 'mandated_report',
                                 'case_sealing')

#: Every frozen (type, major) schema, current and older.
SCHEMAS: dict[tuple[str, int], type[EnvelopeSchema]] = {
    ('contact', 1): v1.ContactSchema,
    ('identity', 1): v1.IdentitySchema,
    ('screening', 1): v1.ScreeningSchema,
    ('consent', 1): v1.ConsentSchema,
    ('enrollment', 1): v1.EnrollmentSchema,
    ('weekly_checkin', 1): v1.WeeklyCheckinSchema,
    ('referral', 1): v1.ReferralSchema,
    ('exit', 1): v1.ExitSchema,
    ('mandated_report', 1): v1.MandatedReportSchema,
    ('case_sealing', 1): v1.CaseSealingSchema,
}

#: The major new documents are written in, per record type.
CURRENT_MAJOR: dict[str, int] = {
    'contact': 1,
    'identity': 1,
    'screening': 1,
    'consent': 1,
    'enrollment': 1,
    'weekly_checkin': 1,
    'referral': 1,
    'exit': 1,
    'mandated_report': 1,
    'case_sealing': 1,
}


def schema_for(doc_type: str, major: int | None = None) -> type[EnvelopeSchema]:
    """Return the schema class of a record type, current major by default.

    Identifying fields have their real types here (desk intake, before
    sealing); ``sealed_variant`` gives the class that requires them sealed.

    Raises:
        UnknownSchema: The type, or that major of it, does not exist.
    """
    if doc_type not in CURRENT_MAJOR:
        raise UnknownSchema('Unknown record type.')
    schema_class = SCHEMAS.get((doc_type, CURRENT_MAJOR[doc_type] if major is None else major))
    if schema_class is None:
        raise UnknownSchema('Unknown schema version for this record type.')
    return schema_class


def identifying_paths(doc_type: str, major: int | None = None) -> tuple[str, ...]:
    """Return the JSON Pointers of a record type's identifying fields.

    These are the fields sealing replaces with fle/1 values, and the fields
    the gateway refuses in plaintext. Computed from the field metadata
    (``metadata={'identifying': True}``), nested fields included.

    Raises:
        UnknownSchema: The type, or that major of it, does not exist.
    """
    return identifying_pointers(schema_for(doc_type, major))


def _sealed_field(field: fields.Field, pointer: str) -> fields.Field | None:
    """Return the field that replaces ``field`` in a sealed variant, or None."""
    if is_identifying(field):
        # Sealing may replace any identifying value, so none is required:
        # conditional rules check presence instead.
        return SealedValue(pointer=pointer, data_key=field.data_key, allow_none=True,
                           metadata=dict(field.metadata))
    if isinstance(field, fields.Nested) and not field.many:
        # Registered schemas nest classes only (identifying_pointers checked
        # each one at import).
        nested = cast(type[marshmallow.Schema], field.nested)
        if identifying_pointers(nested):
            return fields.Nested(_sealed_schema(nested, pointer), data_key=field.data_key,
                                 required=field.required, allow_none=field.allow_none,
                                 metadata=dict(field.metadata))
    return None


def _sealed_schema(schema_class: type[_SchemaT], prefix: str) -> type[_SchemaT]:
    overrides: dict[str, object] = {}
    for name, field in schema_class._declared_fields.items():
        wire_name = field.data_key if field.data_key is not None else name
        replacement = _sealed_field(field, f'{prefix}/{escape(wire_name)}')
        if replacement is not None:
            overrides[name] = replacement
    return type(f'Sealed{schema_class.__name__}', (schema_class,), {'SEALED': True, **overrides})


@functools.cache
def sealed_variant(schema_class: type[EnvelopeSchema]) -> type[EnvelopeSchema]:
    """Return the subclass of a record schema whose identifying fields are sealed.

    Each identifying field (top level, or inside a nested object) becomes a
    ``SealedValue`` that refuses plaintext; every other field and rule is
    inherited, with ``SEALED = True`` telling content-reading rules to stand
    down.
    """
    return _sealed_schema(schema_class, '')


# Refuse at import an identifying field placed where sealing cannot reach it.
for _schema_class in SCHEMAS.values():
    identifying_pointers(_schema_class)
