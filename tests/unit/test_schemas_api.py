"""The public surface of ``schemas``: names, registry, identifying paths, imports."""

from __future__ import annotations

import ast
import pathlib

import pytest
from marshmallow import Schema
from marshmallow import fields

import schemas
from schemas.errors import SchemasError
from schemas.fields import SealedValue
from schemas.parts import EnvelopeSchema
from schemas.pointers import escape
from schemas.pointers import identifying_pointers
from schemas.pointers import resolve
from schemas.pointers import split
from schemas.registry import sealed_variant

pytestmark = pytest.mark.unit

SCHEMAS_DIR = pathlib.Path(schemas.__file__).parent

EXPECTED_PATHS = {
    'contact': ('/precise_location', '/notes'),
    'identity': (
        '/preferred_name', '/legal_first_name', '/legal_last_name', '/aliases',
        '/date_of_birth', '/phones', '/email', '/social_handles',
        '/current_location_or_address', '/placement_or_shelter', '/ssn_last4',
        '/id_numbers', '/race_ethnicity', '/school_name', '/guardian/name',
        '/guardian/phone', '/exploiter_identifiers', '/distinguishing_marks', '/photo',
    ),
    'screening': ('/response_notes',),
    'consent': ('/signer_name', '/signature_image', '/guardian_signer_name',
                '/guardian_signature_image'),
    'enrollment': ('/diversion_case_ref',),
    'weekly_checkin': ('/advocate_note',),
    'referral': ('/note',),
    'exit': ('/note',),
    'mandated_report': ('/reference_number',),
    'case_sealing': ('/court_order_ref',),
}


def test_public_surface_is_declared():
    assert sorted(schemas.__all__) == sorted([
        'CURRENT_MAJOR', 'RECORD_TYPES', 'SchemaValidationError', 'SchemasError',
        'UnknownSchema', 'errors', 'export_json_schemas', 'identifying_paths',
        'instruments', 'register_with_apispec', 'schema_for', 'validate_document',
    ])
    for name in schemas.__all__:
        assert getattr(schemas, name) is not None
    assert callable(schemas.instruments.load_packs)
    assert callable(schemas.instruments.get_pack)
    assert callable(schemas.instruments.score)


def test_record_types_and_current_majors():
    assert schemas.RECORD_TYPES == ('contact', 'identity', 'screening', 'consent', 'enrollment',
                                    'weekly_checkin', 'referral', 'exit', 'mandated_report',
                                    'case_sealing')
    assert schemas.CURRENT_MAJOR == {doc_type: 1 for doc_type in schemas.RECORD_TYPES}


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
def test_schema_for_returns_the_current_major(doc_type):
    schema_class = schemas.schema_for(doc_type)
    assert issubclass(schema_class, EnvelopeSchema)
    assert schema_class.DOC_TYPE == doc_type
    assert schema_class.MAJOR == schemas.CURRENT_MAJOR[doc_type]
    assert schemas.schema_for(doc_type, 1) is schema_class


def test_schema_for_unknown_type():
    with pytest.raises(schemas.UnknownSchema):
        schemas.schema_for('casefile')


@pytest.mark.parametrize('major', [0, 2, 99])
def test_schema_for_unknown_major(major):
    with pytest.raises(schemas.UnknownSchema):
        schemas.schema_for('contact', major)


def test_errors_form_one_hierarchy():
    assert issubclass(schemas.SchemaValidationError, schemas.SchemasError)
    assert issubclass(schemas.UnknownSchema, schemas.SchemasError)
    error = schemas.SchemaValidationError({'notes': ['Unknown field.']})
    assert error.messages == {'notes': ['Unknown field.']}


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
def test_identifying_paths(doc_type):
    assert schemas.identifying_paths(doc_type) == EXPECTED_PATHS[doc_type]


def test_identifying_paths_unknown_type():
    with pytest.raises(schemas.UnknownSchema):
        schemas.identifying_paths('casefile')


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
def test_sealed_variant_replaces_exactly_the_identifying_fields(doc_type):
    schema = sealed_variant(schemas.schema_for(doc_type))()
    assert schema.SEALED is True
    for pointer in EXPECTED_PATHS[doc_type]:
        field = schema
        for token in split(pointer):
            owner = field if isinstance(field, Schema) else field.schema
            field = owner.fields[token]
        assert isinstance(field, SealedValue), pointer
        assert field.pointer == pointer
    sealed_count = sum(isinstance(field, SealedValue) for field in schema.fields.values())
    top_level = [pointer for pointer in EXPECTED_PATHS[doc_type] if pointer.count('/') == 1]
    assert sealed_count == len(top_level)


class _Inner(Schema):
    secret = fields.String(metadata={'identifying': True})


class _Middle(Schema):
    inner = fields.Nested(_Inner)


def test_walker_refuses_identifying_field_inside_a_list():
    class InList(Schema):
        items = fields.List(fields.Nested(_Inner))

    with pytest.raises(SchemasError, match='list or mapping'):
        identifying_pointers(InList)


def test_walker_refuses_identifying_field_nested_too_deep():
    class TooDeep(Schema):
        middle = fields.Nested(_Middle)

    with pytest.raises(SchemasError, match='one object deep'):
        identifying_pointers(TooDeep)


def test_walker_escapes_pointer_tokens():
    class Odd(Schema):
        odd = fields.String(data_key='a/b~c', metadata={'identifying': True})

    assert identifying_pointers(Odd) == ('/a~1b~0c',)
    assert split('/a~1b~0c') == ('a/b~c',)
    assert escape('a/b~c') == 'a~1b~0c'
    assert resolve({'a/b~c': 'x'}, '/a~1b~0c') == 'x'
    assert resolve({'a': None}, '/a/b') is None


FORBIDDEN_IMPORTS = ('falcon', 'keys', 'sync', 'service')


@pytest.mark.parametrize('path', sorted(SCHEMAS_DIR.rglob('*.py')),
                         ids=lambda path: str(path.relative_to(SCHEMAS_DIR)))
def test_schemas_never_import_the_service_layers(path):
    tree = ast.parse(path.read_text(encoding='utf-8'))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split('.')[0])
    assert not imported & set(FORBIDDEN_IMPORTS)
