"""JSON Pointers (RFC 6901) of identifying fields, found by walking schemas.

A field is identifying when its marshmallow field carries
``metadata={'identifying': True}``. Sealing replaces the field's whole value,
so an identifying field may sit at the top level or inside one plain nested
object, never inside a list or deeper: the walker refuses any other layout
when the schema is first looked at, so the mistake cannot reach a release.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import marshmallow
from marshmallow import fields

from fle.pointer import escape
from fle.pointer import parse as split
from fle.pointer import resolve
from schemas.errors import SchemasError

__all__ = ['escape', 'identifying_pointers', 'is_identifying', 'resolve', 'split']

# An identifying field may be one nested object below the top level, no deeper.
_MAX_DEPTH = 2


def is_identifying(field: fields.Field) -> bool:
    """Tell whether a field is marked ``metadata={'identifying': True}``."""
    return field.metadata.get('identifying') is True


def _wire_name(name: str, field: fields.Field) -> str:
    return field.data_key if field.data_key is not None else name


def _nested_schema_class(field: fields.Nested) -> type[marshmallow.Schema]:
    nested = field.nested
    if isinstance(nested, type) and issubclass(nested, marshmallow.Schema):
        return nested
    # Only schema classes are used in this package; instances, names and
    # lambdas would hide the layout from this walker.
    raise SchemasError(f'Nested field must name a Schema class, got {nested!r}')


def _inner_fields(field: fields.Field) -> Iterator[fields.Field]:
    """Yield the fields a container field holds (list items, dict values)."""
    if isinstance(field, fields.List):
        yield field.inner
    elif isinstance(field, fields.Tuple):
        yield from field.tuple_fields
    elif isinstance(field, fields.Mapping):
        if field.key_field is not None:
            yield field.key_field
        if field.value_field is not None:
            yield field.value_field


def _contains_identifying(field: fields.Field) -> bool:
    if is_identifying(field):
        return True
    if isinstance(field, fields.Nested):
        schema_class = _nested_schema_class(field)
        return any(_contains_identifying(inner)
                   for inner in schema_class._declared_fields.values())
    return any(_contains_identifying(inner) for inner in _inner_fields(field))


def _walk(schema_class: type[marshmallow.Schema], prefix: str, depth: int) -> Iterator[str]:
    for name, field in schema_class._declared_fields.items():
        pointer = f'{prefix}/{escape(_wire_name(name, field))}'
        if is_identifying(field):
            yield pointer
        elif isinstance(field, fields.Nested) and not field.many:
            if depth + 1 >= _MAX_DEPTH and _contains_identifying(field):
                raise SchemasError(
                    f'{schema_class.__name__}{pointer}: identifying fields may be nested '
                    'one object deep at most')
            yield from _walk(_nested_schema_class(field), pointer, depth + 1)
        elif _contains_identifying(field):
            raise SchemasError(
                f'{schema_class.__name__}{pointer}: an identifying field may not sit inside a '
                'list or mapping; mark the whole container identifying instead')


@functools.cache
def identifying_pointers(schema_class: type[marshmallow.Schema]) -> tuple[str, ...]:
    """Return the JSON Pointers of every identifying field of a schema class.

    Raises:
        SchemasError: An identifying field sits where sealing cannot reach it
            (inside a list or mapping, or nested deeper than one object).
    """
    return tuple(_walk(schema_class, '', 0))
