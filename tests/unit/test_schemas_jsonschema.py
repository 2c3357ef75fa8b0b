"""JSON Schema export and OpenAPI registration, generated through apispec."""

from __future__ import annotations

import json
import re

import pytest
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

import schemas
from schemas.errors import SchemasError
from schemas.jsonschema import JSON_SCHEMA_DIALECT
from schemas.pointers import split
from tests.factories import make_record

pytestmark = pytest.mark.unit


@pytest.fixture(scope='module')
def exported():
    return schemas.export_json_schemas()


def property_at(json_schema, pointer):
    node = json_schema
    for token in split(pointer):
        node = node['properties'][token]
    return node


def identifying_pointers_marked(json_schema, prefix=''):
    marked = []
    for name, prop in json_schema.get('properties', {}).items():
        if prop.get('x-identifying'):
            marked.append(f'{prefix}/{name}')
        elif 'properties' in prop:
            marked.extend(identifying_pointers_marked(prop, f'{prefix}/{name}'))
    return marked


def test_export_covers_every_type_at_its_current_major(exported):
    expected = {f'{doc_type}/{schemas.CURRENT_MAJOR[doc_type]}'
                for doc_type in schemas.RECORD_TYPES}
    assert set(exported) == expected
    json.dumps(exported)


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
def test_export_marks_exactly_the_identifying_fields(exported, doc_type):
    json_schema = exported[f'{doc_type}/1']
    paths = schemas.identifying_paths(doc_type)
    assert identifying_pointers_marked(json_schema) == list(paths)
    assert json_schema['x-identifying-paths'] == list(paths)
    for pointer in paths:
        assert property_at(json_schema, pointer)['x-identifying'] is True


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
def test_export_is_a_standalone_strict_json_schema(exported, doc_type):
    json_schema = exported[f'{doc_type}/1']
    assert json_schema['$schema'] == JSON_SCHEMA_DIALECT
    assert json_schema['title'] == f'{doc_type}/1'
    assert json_schema['type'] == 'object'
    assert json_schema['additionalProperties'] is False
    assert '$ref' not in json.dumps(json_schema)
    assert {'_id', 'type', 'schema', 'org', 'owner', 'created_at', 'updated_at'} <= set(
        json_schema['required'])
    properties = json_schema['properties']
    assert properties['type']['const'] == doc_type
    assert properties['schema']['const'] == f'{doc_type}/1'
    assert properties['created_at']['format'] == 'date-time'
    assert properties['fle']['properties']['v']['const'] == 1


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
def test_exported_patterns_accept_factory_values(exported, doc_type):
    # Patterns are exported for the tablets; they must mean what the server checks.
    json_schema = exported[f'{doc_type}/1']
    document = make_record(doc_type)
    for name, value in document.items():
        pattern = json_schema['properties'][name].get('pattern')
        if pattern and isinstance(value, str):
            assert re.search(pattern, value), name


def test_export_writes_codes_as_enums(exported):
    properties = exported['contact/1']['properties']
    assert 'street' in properties['contact_type']['enum']
    assert properties['services_offered']['items']['enum'][0] == 'info'
    assert properties['safety_action']['enum'][0] == '911_called'


def make_spec():
    return APISpec(title='t', version='1', openapi_version='3.1.0',
                   plugins=[MarshmallowPlugin()])


def test_register_with_apispec_adds_every_record_component():
    spec = make_spec()
    schemas.register_with_apispec(spec)
    components = spec.to_dict()['components']['schemas']
    for doc_type in schemas.RECORD_TYPES:
        assert f'{doc_type.capitalize()}V1' in components
    assert components['IdentityV1']['properties']['email']['x-identifying'] is True
    assert components['GuardianContact']['properties']['phone']['x-identifying'] is True
    assert 'x-identifying' not in components['GuardianContact']['properties']['relationship']


def test_register_with_apispec_twice_on_fresh_specs():
    for _ in range(2):
        spec = make_spec()
        schemas.register_with_apispec(spec)
        assert 'ContactV1' in spec.to_dict()['components']['schemas']


def test_register_with_apispec_needs_the_marshmallow_plugin():
    spec = APISpec(title='t', version='1', openapi_version='3.1.0')
    with pytest.raises(SchemasError):
        schemas.register_with_apispec(spec)
