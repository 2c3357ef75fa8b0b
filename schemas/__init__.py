"""Record schemas of fieldvault: one frozen marshmallow schema per type and major.

The public surface::

    RECORD_TYPES, CURRENT_MAJOR       the record types and their current major
    schema_for(type, major=None)      the schema class (identifying fields typed)
    identifying_paths(type)           JSON Pointers of the fields sealed with fle/1
    validate_document(doc, sealed=)   the one validation entry point
    export_json_schemas()             JSON Schema per "<type>/<major>"
    register_with_apispec(spec)       record schemas as OpenAPI components
    instruments                       screening instrument packs and scoring
    errors                            SchemasError and its subclasses

This package never imports falcon, keys, sync or service.
"""

from schemas import errors
from schemas import instruments
from schemas.errors import SchemasError
from schemas.errors import SchemaValidationError
from schemas.errors import UnknownSchema
from schemas.jsonschema import export_json_schemas
from schemas.jsonschema import register_with_apispec
from schemas.registry import CURRENT_MAJOR
from schemas.registry import RECORD_TYPES
from schemas.registry import identifying_paths
from schemas.registry import schema_for
from schemas.validation import validate_document

__all__ = [
    'CURRENT_MAJOR',
    'RECORD_TYPES',
    'SchemaValidationError',
    'SchemasError',
    'UnknownSchema',
    'errors',
    'export_json_schemas',
    'identifying_paths',
    'instruments',
    'register_with_apispec',
    'schema_for',
    'validate_document',
]
