"""JSON Schema of the record schemas, generated with apispec's converter.

Identifying properties carry ``x-identifying: true``. They are described
with their real (plaintext) types, which is what a tablet validates before
sealing; stored and replicated, each holds an fle/1 sealed value instead.
"""

from __future__ import annotations

from typing import Any

import marshmallow
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow import OpenAPIConverter
from marshmallow import fields

from schemas import registry
from schemas.errors import SchemasError
from schemas.fields import UUID4
from schemas.fields import CalendarDate
from schemas.fields import ExactInteger
from schemas.fields import Timestamp
from schemas.pointers import identifying_pointers
from schemas.pointers import is_identifying

__all__ = ['JSON_SCHEMA_DIALECT', 'component_name', 'export_json_schemas',
           'register_with_apispec']

JSON_SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema'

# Custom fields whose OpenAPI type and format apispec cannot infer from the MRO.
_OPENAPI_TYPES: dict[type[fields.Field], tuple[str, str | None]] = {
    Timestamp: ('string', 'date-time'),
    CalendarDate: ('string', 'date'),
    UUID4: ('string', 'uuid'),
    ExactInteger: ('integer', None),
}

_SEALED_NOTE = ('Properties marked x-identifying hold an fle/1 sealed value '
                '{"fle": 1, "rk", "n", "ct"} once sealed; they are shown with their '
                'plaintext types.')


def _identifying_properties(self: Any, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
    """Mark identifying fields (apispec attribute function)."""
    properties: dict[str, Any] = {}
    if is_identifying(field):
        properties['x-identifying'] = True
    if isinstance(field, ExactInteger):
        properties['const'] = field.expected
    return properties


def _prepare(plugin: MarshmallowPlugin) -> OpenAPIConverter:
    converter = plugin.converter
    if converter is None:
        raise SchemasError('The MarshmallowPlugin is not attached to an APISpec yet.')
    for field_class, (openapi_type, openapi_format) in _OPENAPI_TYPES.items():
        converter.map_to_openapi_type(field_class, openapi_type, openapi_format)
    # Idempotent: the attribute function is stored under its own name.
    if getattr(converter, _identifying_properties.__name__, None) is None:
        converter.add_attribute_function(_identifying_properties)
    return converter


def component_name(doc_type: str, major: int) -> str:
    """Return the OpenAPI component name of a record schema, e.g. ``ContactV1``."""
    return f'{doc_type.capitalize()}V{major}'


def register_with_apispec(spec: APISpec) -> None:
    """Register every record schema (all majors) as an OpenAPI component.

    The spec must carry a ``MarshmallowPlugin``; nested parts become their
    own components through its name resolver.

    Raises:
        SchemasError: The spec has no MarshmallowPlugin.
    """
    plugin = next((plugin for plugin in spec.plugins if isinstance(plugin, MarshmallowPlugin)),
                  None)
    if plugin is None:
        raise SchemasError('register_with_apispec needs an APISpec with a MarshmallowPlugin.')
    _prepare(plugin)
    for (doc_type, major), schema_class in sorted(registry.SCHEMAS.items()):
        spec.components.schema(component_name(doc_type, major), schema=schema_class,
                               description=_SEALED_NOTE)


def _inline(schema: type[marshmallow.Schema] | marshmallow.Schema) -> None:
    # No component names: nested schemas are written inline, so each exported
    # JSON Schema stands alone.
    return None


def export_json_schemas() -> dict[str, dict[str, Any]]:
    """Return a standalone JSON Schema (draft 2020-12) per ``"<type>/<major>"``."""
    # apispec documents a resolver answering None (write the schema inline)
    # but types its return as str.
    plugin = MarshmallowPlugin(schema_name_resolver=_inline)  # type: ignore[arg-type]
    APISpec(title='fieldvault records', version='1', openapi_version='3.1.0', plugins=[plugin])
    converter = _prepare(plugin)
    exported: dict[str, dict[str, Any]] = {}
    for (doc_type, major), schema_class in sorted(registry.SCHEMAS.items()):
        tag = f'{doc_type}/{major}'
        body = converter.schema2jsonschema(schema_class)
        properties = body['properties']
        properties['type']['const'] = doc_type
        properties['schema']['const'] = tag
        properties['_id']['pattern'] = properties['_id']['pattern'].replace(
            '^[a-z][a-z_]*:', f'^{doc_type}:', 1)
        exported[tag] = {
            '$schema': JSON_SCHEMA_DIALECT,
            '$id': f'urn:fieldvault:schema:{tag}',
            'title': tag,
            'description': _SEALED_NOTE,
            **body,
            'x-identifying-paths': list(identifying_pointers(schema_class)),
        }
    return exported
