"""``/openapi.json`` describes every mounted operation with its path
parameters and request body, so clients and fuzzers can reach all of them."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.functional

BODY_METHODS = {'POST', 'PUT', 'PATCH'}


def _resolve(spec: dict, schema: dict) -> dict:
    ref = schema.get('$ref')
    if ref is None:
        return schema
    name = ref.rsplit('/', 1)[-1]
    assert ref == f'#/components/schemas/{name}', ref
    assert name in spec['components']['schemas'], ref
    return spec['components']['schemas'][name]


def _mounted(app):
    for path, resource in app.fieldvault_routes:
        for method in resource.auth:
            if method != 'HEAD':
                yield path, method


def test_every_mounted_operation_is_described_with_parameters_and_body(app, client):
    spec = client.simulate_get('/openapi.json').json
    checked = 0
    for path, method in _mounted(app):
        operation = spec['paths'].get(path, {}).get(method.lower())
        assert operation is not None, (method, path)
        declared = {(param['in'], param['name']): param
                    for param in operation.get('parameters', [])}
        for name in re.findall(r'\{([^}]+)\}', path):
            param = declared.get(('path', name))
            assert param is not None, (method, path, name)
            assert param['required'] is True and param['schema'].get('type') == 'string'
        assert {name for where, name in declared if where == 'path'} == \
            set(re.findall(r'\{([^}]+)\}', path)), (method, path)
        if method in BODY_METHODS:
            body = operation.get('requestBody')
            assert body is not None, (method, path)
            schema = _resolve(spec, body['content']['application/json']['schema'])
            assert schema.get('type') == 'object' or 'oneOf' in schema, (method, path, schema)
            for option in schema.get('oneOf', []):
                _resolve(spec, option)
        checked += 1
    assert checked >= 50


def test_every_sync_operation_is_described(app, client):
    spec = client.simulate_get('/openapi.json').json
    sync = {(path, method) for path, method in _mounted(app) if path.startswith('/sync')}
    assert len(sync) >= 14
    for path, method in sync:
        operation = spec['paths'][path][method.lower()]
        assert operation['security'] == [{'deviceBasic': []}, {'bearer': []}], path
        if '{db}' in path:
            db = next(p for p in operation['parameters'] if p['name'] == 'db')
            assert set(db['schema']['enum']) == {'records', 'config'}


def test_query_parameters_are_described_where_they_are_read(client):
    spec = client.simulate_get('/openapi.json').json
    changes = spec['paths']['/sync/{db}/_changes']['get']['parameters']
    assert {'since', 'limit', 'feed', 'timeout', 'heartbeat', 'style'} <= \
        {p['name'] for p in changes if p['in'] == 'query'}
    audit = spec['paths']['/audit']['get']['parameters']
    assert {p['name'] for p in audit} == {'after', 'limit'}


def test_closed_bodies_refuse_undeclared_members_in_the_description(client):
    spec = client.simulate_get('/openapi.json').json
    users = spec['components']['schemas']['UserCreateBody']
    assert users['additionalProperties'] is False
    assert set(users['required']) == {'username', 'password', 'roles'}


CANARY = 'Jane Doe 555-0100'


def _closed_body_operations(app, spec):
    from service.openapi_bodies import BODY_SCHEMAS
    for path, method in _mounted(app):
        if method not in BODY_METHODS or path.startswith('/sync'):
            continue
        schema = spec['paths'][path][method.lower()]['requestBody']['content'][
            'application/json']['schema']
        name = schema.get('$ref', '').rsplit('/', 1)[-1]
        if name in BODY_SCHEMAS and name != 'EmptyBody' and \
                BODY_SCHEMAS[name].Meta.unknown == 'raise':
            yield path, method, name


def test_every_described_staff_body_is_the_one_the_responder_checks(app, client, users,
                                                                    role_tokens):
    """An undeclared member is refused wherever a closed body is described, uncounted by name."""
    spec = client.simulate_get('/openapi.json').json
    checked = set()
    for path, method, name in _closed_body_operations(app, spec):
        roles = dict(_mounted_auth(app))[(path, method)]
        headers = {} if roles == 'public' else users.bearer(
            role_tokens[next(role for role in roles if role in role_tokens)])
        concrete = re.sub(r'\{[^}]+\}', 'x', path)
        result = client.simulate_request(method, concrete, json={CANARY: CANARY},
                                         headers=headers)
        assert result.status_code == 422, (method, path, result.text)
        assert result.json['fields']['_unknown'], (method, path, result.json)
        assert 'Jane' not in result.text and '555' not in result.text
        checked.add(name)
    assert len(checked) >= 20, checked


def _mounted_auth(app):
    for path, resource in app.fieldvault_routes:
        for method, roles in resource.auth.items():
            yield (path, method), roles
