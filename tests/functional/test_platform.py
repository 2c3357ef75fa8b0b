"""Platform behaviour through ``TestClient(create_app(test_config))`` against
the session's real pouchdb-server: health, accounts, errors, bad input."""

from __future__ import annotations

import hashlib
import json

import pytest
from falcon import testing

from service.app import create_app
from service.config import Config
from tests.conftest import PASSWORD, TEST_PASSWORD_PARAMS
from schemas.codes import RELEASE_PURPOSES

pytestmark = pytest.mark.functional

ERROR_KEYS = {'code', 'title', 'description'}


def assert_error(result, status: int, code: str) -> dict:
    assert result.status_code == status, result.text
    body = result.json
    assert ERROR_KEYS <= set(body), body
    assert body['code'] == code, body
    assert 'Traceback' not in result.text
    return body


# -- health ---------------------------------------------------------------

def test_healthz_answers_without_touching_the_database(client):
    assert client.simulate_get('/healthz').json == {'status': 'ok'}


def test_readyz_is_200_when_databases_exist(client):
    result = client.simulate_get('/readyz')
    assert result.status_code == 200
    assert result.json['status'] == 'ready'


def test_readyz_is_503_when_databases_are_missing(couch_server):
    config = Config(couchdb_url=couch_server.url, db_prefix='never_created_',
                    **TEST_PASSWORD_PARAMS)
    result = testing.TestClient(create_app(config)).simulate_get('/readyz')
    assert result.status_code == 503
    assert 'Databases missing' in result.json['description']
    assert result.headers['Retry-After']


def test_readyz_is_503_when_couchdb_is_down():
    from service.embedded_db import free_port
    config = Config(couchdb_url=f'http://127.0.0.1:{free_port()}', couchdb_timeout=2,
                    **TEST_PASSWORD_PARAMS)
    result = testing.TestClient(create_app(config)).simulate_get('/readyz')
    assert result.status_code == 503
    assert result.json['description'] == 'The database server is unreachable.'


def test_authenticated_request_gets_503_with_retry_after_when_couchdb_is_down():
    from service.embedded_db import free_port
    config = Config(couchdb_url=f'http://127.0.0.1:{free_port()}', couchdb_timeout=2,
                    **TEST_PASSWORD_PARAMS)
    result = testing.TestClient(create_app(config)).simulate_get(
        '/auth/me', headers={'Authorization': 'Bearer usr.someone.well-formed-secret'})
    assert_error(result, 503, 'database_unavailable')
    assert result.headers['Retry-After'] == '30'


# -- configuration ----------------------------------------------------------

@pytest.mark.parametrize('name, value, fragment', [
    ('FIELDVAULT_BIND_PORT', 'eighty', 'FIELDVAULT_BIND_PORT'),
    ('FIELDVAULT_BIND_PORT', '-1', 'positive'),
    ('FIELDVAULT_COUCHDB_URL', 'ftp://x', 'http'),
    ('FIELDVAULT_LOG_LEVEL', 'LOUD', 'DEBUG'),
    ('FIELDVAULT_CORS_ORIGINZ', 'x', 'unknown variables'),
])
def test_config_fails_fast_on_a_bad_value(name, value, fragment):
    from service.config import ConfigError
    with pytest.raises(ConfigError, match=fragment):
        Config.from_env({name: value})


def test_config_reads_every_variable_with_types():
    config = Config.from_env({'FIELDVAULT_BIND_PORT': '9000',
                              'FIELDVAULT_CORS_ORIGINS': 'https://a, https://b',
                              'FIELDVAULT_COUCHDB_URL': 'https://db.example:6984/'})
    assert config.bind_port == 9000
    assert config.cors_origins == ('https://a', 'https://b')
    assert config.couchdb_url == 'https://db.example:6984'
    assert 'hunter2' not in repr(Config.from_env({'FIELDVAULT_COUCHDB_PASSWORD': 'hunter2hunter2'}))


# -- accounts -----------------------------------------------------------------

def test_login_returns_a_short_lived_token_and_me_works(client, users):
    token = users.token('adv-1', ['advocate'])
    me = client.simulate_get('/auth/me', headers=users.bearer(token))
    assert me.status_code == 200
    assert me.json == {'username': 'adv-1', 'roles': ['advocate'], 'team': 'team-a'}


def test_wrong_password_and_unknown_user_get_the_same_401(client, users):
    users.create('adv-1', ['advocate'])
    wrong = client.simulate_post('/auth/login', json={'username': 'adv-1', 'password': 'x' * 12})
    unknown = client.simulate_post('/auth/login', json={'username': 'nobody', 'password': 'x' * 12})
    assert_error(wrong, 401, 'not_authenticated')
    assert_error(unknown, 401, 'not_authenticated')
    assert wrong.json == unknown.json


def test_logout_ends_the_session_at_once(client, users):
    token = users.token('adv-1', ['advocate'])
    assert client.simulate_post('/auth/logout', headers=users.bearer(token)).status_code == 200
    assert_error(client.simulate_get('/auth/me', headers=users.bearer(token)), 401,
                 'not_authenticated')


def test_expired_token_is_refused(client, users, services):
    token = users.token('adv-1', ['advocate'])
    token_id = f'token:{hashlib.sha256(token.encode()).hexdigest()}'
    session = services.couch.get(services.db('directory'), token_id)
    session['expires_at'] = 1
    services.couch.put(services.db('directory'), session)
    assert_error(client.simulate_get('/auth/me', headers=users.bearer(token)), 401,
                 'not_authenticated')


def test_disabling_a_user_ends_their_sessions_at_once(client, users, role_tokens):
    token = users.token('adv-2', ['advocate'])
    result = client.simulate_patch('/users/adv-2', json={'disabled': True},
                                   headers=users.bearer(role_tokens['admin']))
    assert result.status_code == 200 and result.json['disabled'] is True
    assert_error(client.simulate_get('/auth/me', headers=users.bearer(token)), 401,
                 'not_authenticated')
    relogin = client.simulate_post('/auth/login', json={'username': 'adv-2', 'password': PASSWORD})
    assert_error(relogin, 401, 'not_authenticated')


def test_changing_roles_ends_existing_sessions(client, users, role_tokens):
    token = users.token('adv-3', ['advocate'])
    client.simulate_patch('/users/adv-3', json={'roles': ['worker']},
                          headers=users.bearer(role_tokens['admin']))
    assert_error(client.simulate_get('/auth/me', headers=users.bearer(token)), 401,
                 'not_authenticated')


def test_repeated_failed_logins_are_throttled(client, users, test_config):
    users.create('adv-1', ['advocate'])
    for _ in range(test_config.login_max_failures):
        client.simulate_post('/auth/login', json={'username': 'adv-1', 'password': 'y' * 12})
    result = client.simulate_post('/auth/login', json={'username': 'adv-1', 'password': PASSWORD})
    assert_error(result, 429, 'login_throttled')
    assert int(result.headers['Retry-After']) > 0


def test_admin_creates_lists_and_reads_users(client, users, role_tokens):
    admin = users.bearer(role_tokens['admin'])
    created = client.simulate_post('/users', headers=admin, json={
        'username': 'new-advocate', 'password': PASSWORD, 'roles': ['advocate'], 'team': 'north'})
    assert created.status_code == 201
    assert created.headers['Location'] == '/users/new-advocate'
    assert 'password' not in created.json
    listed = client.simulate_get('/users', headers=admin).json['users']
    assert 'new-advocate' in {user['username'] for user in listed}
    assert all('password' not in user for user in listed)
    assert client.simulate_get('/users/new-advocate', headers=admin).json['team'] == 'north'


@pytest.mark.parametrize('body, field', [
    ({'username': 'Bad Name', 'password': PASSWORD, 'roles': ['worker']}, 'invalid_username'),
    ({'username': 'ok-name', 'password': 'short', 'roles': ['worker']}, 'weak_password'),
    ({'username': 'ok-name', 'password': PASSWORD, 'roles': ['wizard']}, 'invalid_roles'),
    ({'username': 'ok-name', 'password': PASSWORD, 'roles': []}, 'invalid_roles'),
])
def test_bad_user_creation_is_refused_with_a_reason(client, users, role_tokens, body, field):
    result = client.simulate_post('/users', json=body, headers=users.bearer(role_tokens['admin']))
    assert_error(result, 422, field)


def test_duplicate_user_is_409(client, users, role_tokens):
    admin = users.bearer(role_tokens['admin'])
    body = {'username': 'dup-user', 'password': PASSWORD, 'roles': ['worker']}
    assert client.simulate_post('/users', json=body, headers=admin).status_code == 201
    assert_error(client.simulate_post('/users', json=body, headers=admin), 409, 'user_exists')


def test_unknown_field_in_user_body_is_422(client, users, role_tokens):
    result = client.simulate_post('/users', headers=users.bearer(role_tokens['admin']), json={
        'username': 'x-user', 'password': PASSWORD, 'roles': ['worker'], 'is_root': True})
    body = assert_error(result, 422, 'validation_failed')
    assert body['fields'] == {'_unknown': ['1 unknown member(s); send only the documented ones.']}
    assert 'is_root' not in result.text


def test_default_password_hash_parameters_are_owasp_argon2id(couch_server):
    from service.app import build_services
    config = Config(couchdb_url=couch_server.url, db_prefix='defaults_')
    services = build_services(config)
    from service.cli import ensure_databases
    ensure_databases(services)
    services.accounts.create_user('default-params', PASSWORD, ['worker'])
    stored = services.couch.get(config.db_name('directory'), 'user:default-params')['password']
    assert stored.startswith('$argon2id$v=19$m=19456,t=2,p=1$')


# -- bad input -------------------------------------------------------------------

def test_malformed_json_is_400(client):
    result = client.simulate_post('/auth/login', body='{"username": ',
                                  headers={'Content-Type': 'application/json'})
    assert_error(result, 400, 'malformed_json')


def test_wrong_content_type_is_415(client):
    result = client.simulate_post('/auth/login', body='username=a&password=b',
                                  headers={'Content-Type': 'application/x-www-form-urlencoded'})
    assert_error(result, 415, 'unsupported_media_type')


def test_oversized_body_is_413(couch_server, services):
    small = services.config.replace(max_body_bytes=1024)
    services.config = small
    client = testing.TestClient(create_app(services=services))
    body = json.dumps({'username': 'a', 'password': 'b' * 5000})
    result = client.simulate_post('/auth/login', body=body,
                                  headers={'Content-Type': 'application/json'})
    assert_error(result, 413, 'body_too_large')


def test_deep_nesting_is_400(client):
    body = '[' * 5000 + ']' * 5000
    result = client.simulate_post('/auth/login', body=body,
                                  headers={'Content-Type': 'application/json'})
    assert_error(result, 400, 'too_deep')


def test_moderate_nesting_past_the_limit_is_400(client, test_config):
    depth = test_config.max_json_depth + 1
    body = '{"a":' * depth + '1' + '}' * depth
    result = client.simulate_post('/auth/login', body=body,
                                  headers={'Content-Type': 'application/json'})
    assert_error(result, 400, 'too_deep')


def test_invalid_utf8_is_400(client):
    result = client.simulate_post('/auth/login', body=b'{"username": "\xff\xfe"}',
                                  headers={'Content-Type': 'application/json'})
    assert_error(result, 400, 'invalid_utf8')


def test_unknown_route_is_404_in_the_error_shape(client):
    assert_error(client.simulate_get('/no/such/route'), 404, 'not_found')


def test_unsupported_method_is_405_in_the_error_shape(client):
    assert_error(client.simulate_delete('/healthz'), 405, 'method_not_allowed')


def test_an_unexpected_exception_is_an_opaque_500(client, app, captured_logs):
    class Boom:
        auth = {'GET': 'public'}

        def on_get(self, req, resp):
            raise RuntimeError('secret internal detail CANARY-500')

    app.add_route('/boom', Boom())
    result = client.simulate_get('/boom')
    assert_error(result, 500, 'internal_error')
    assert 'CANARY-500' not in result.text
    assert 'CANARY-500' not in captured_logs.getvalue()
    assert 'RuntimeError' in captured_logs.getvalue()


def test_every_response_carries_a_request_id(client):
    result = client.simulate_get('/healthz', headers={'X-Request-Id': 'req-12345678'})
    assert result.headers['X-Request-Id'] == 'req-12345678'
    generated = client.simulate_get('/healthz').headers['X-Request-Id']
    assert len(generated) == 32


def test_openapi_is_generated_from_routes_and_schemas(client):
    spec = client.simulate_get('/openapi.json').json
    assert spec['openapi'].startswith('3.')
    assert '/auth/login' in spec['paths']
    assert '/records/validate' in spec['paths']
    assert spec['paths']['/users']['post']['x-roles'] == ['admin']
    assert spec['components']['schemas']


def test_openapi_lists_the_release_purposes_a_record_open_accepts(client):
    spec = client.simulate_get('/openapi.json').json
    body = spec['paths']['/records/{record_id}/open']['post']['requestBody']
    ref = body['content']['application/json']['schema']['$ref']
    schema = spec['components']['schemas'][ref.rsplit('/', 1)[-1]]
    purpose = schema['properties']['purpose']
    assert purpose['enum'] == list(RELEASE_PURPOSES)
