"""Malformed input to the staff API is refused at the edge with a structured
4xx, never a 5xx, and refusals repeat no submitted name or value. Through
``TestClient(create_app(test_config))`` against the session's pouchdb-server."""

from __future__ import annotations

import uuid

import httpx
import pytest
from falcon import testing

from service.app import build_services, create_app
from sync.couch import CouchDBClient
from tests.conftest import PASSWORD

pytestmark = pytest.mark.functional

CANARY = 'Jane Doe 555-0100'


def assert_refused(result, status: int, code: str) -> dict:
    assert result.status_code == status, result.text
    body = result.json
    assert {'code', 'title', 'description'} <= set(body), body
    assert body['code'] == code, body
    return body


# -- lone surrogates -----------------------------------------------------------

@pytest.mark.parametrize('raw', [
    b'{"username":"\\ud800","password":"x"}',
    b'{"username":"adv-1","password":"\\udfff"}',
    b'{"username":"adv-1","password":"x","\\ud83d":1}',
    b'[{"a":["ok","\\ud800x"]}]',
])
def test_lone_surrogates_in_a_login_body_are_400(client, raw):
    result = client.simulate_post('/auth/login', body=raw,
                                  headers={'Content-Type': 'application/json'})
    assert_refused(result, 400, 'invalid_unicode')


def test_surrogate_pairs_are_characters_and_pass(client, users):
    users.create('adv-pair', ['advocate'])
    result = client.simulate_post(
        '/auth/login', body=b'{"username":"adv-pair","password":"\\ud83d\\ude00 wrong pw"}',
        headers={'Content-Type': 'application/json'})
    assert_refused(result, 401, 'not_authenticated')


def test_a_lone_surrogate_anywhere_in_any_body_is_400(client, users, role_tokens):
    admin = users.bearer(role_tokens['admin'])
    raw = ('{"username":"x-user","password":"%s","roles":["worker"],"team":"\\ud83d"}'
           % PASSWORD).encode()
    result = client.simulate_post('/users', body=raw,
                                  headers={**admin, 'Content-Type': 'application/json'})
    assert_refused(result, 400, 'invalid_unicode')
    assert client.simulate_get('/users/x-user', headers=admin).status_code == 404


# -- query values ----------------------------------------------------------------

@pytest.mark.parametrize('query', [
    'after=%C2%B2', 'limit=%C2%B2', 'after=%D9%A1', 'limit=1%00', 'after=-1',
    'after=99999999999999999999999', 'limit=%FF', 'after=',
])
def test_malformed_audit_query_values_are_422(client, users, role_tokens, query):
    result = client.simulate_get('/audit', query_string=query,
                                 headers=users.bearer(role_tokens['admin']))
    assert_refused(result, 422, 'validation_failed')


def test_unknown_audit_parameters_are_counted_not_named(client, users, role_tokens):
    result = client.simulate_get('/audit', query_string='Jane%20Doe=1&zz-canary-zz=2',
                                 headers=users.bearer(role_tokens['admin']))
    body = assert_refused(result, 422, 'validation_failed')
    assert 'Jane' not in result.text and 'canary' not in result.text
    assert '2 unknown' in str(body['fields'])


# -- ids that are no record's ---------------------------------------------------

@pytest.mark.parametrize('record_id', ['_all_docs', '_changes', '_design_docs', '_local_docs',
                                       'contact:not-a-uuid', '..', '_all_docs%3Fx=1'])
def test_opening_something_that_is_not_a_record_id_is_404(client, users, record_id):
    token = users.token('adv-open', ['advocate'])
    result = client.simulate_post(f'/records/{record_id}/open', json={'purpose': 'case_management'},
                                  headers=users.bearer(token))
    assert_refused(result, 404, 'not_found')


# -- 422 bodies never repeat submitted names -------------------------------------

@pytest.mark.parametrize('path, method, body', [
    ('/users', 'POST', {CANARY: 1}),
    ('/users', 'POST', {'username': 'ok-user', 'password': PASSWORD, 'roles': ['worker'],
                        CANARY: CANARY}),
    ('/users/admin-1', 'PATCH', {CANARY: True}),
    ('/devices', 'POST', {'worker': 'nobody', CANARY: 1}),
    ('/keys/signer', 'PUT', {CANARY: 1}),
    ('/records/validate', 'POST', {'type': 'contact', CANARY: CANARY}),
])
def test_refusals_never_repeat_a_submitted_member_name(client, users, role_tokens, path,
                                                       method, body):
    role = 'advocate' if path == '/records/validate' else 'admin'
    result = client.simulate_request(method, path, json=body,
                                     headers=users.bearer(role_tokens[role]))
    assert 400 <= result.status_code < 500, result.text
    assert 'Jane' not in result.text and '555' not in result.text


def test_an_unknown_member_is_counted_under_a_fixed_key(client, users, role_tokens):
    result = client.simulate_post('/users', json={'Jane Doe': 1},
                                  headers=users.bearer(role_tokens['admin']))
    body = assert_refused(result, 422, 'validation_failed')
    assert 'Jane Doe' not in result.text
    assert body['fields']['_unknown'] == ['1 unknown member(s); send only the documented ones.']
    assert 'username' in body['fields']  # declared names are still named


# -- team scoping of a record release --------------------------------------------

def _stored_record(services, owner: str) -> str:
    record_id = f'contact:{uuid.uuid4()}'
    services.couch.put(services.db('records'), {
        '_id': record_id, 'type': 'contact', 'schema': 'contact/1', 'owner': owner,
        'fle': {'v': 1, 'keys': {}}})
    return record_id


def test_a_record_is_released_only_to_its_owners_team(client, users, services):
    users.create('worker-a', ['worker'], team='team-a')
    same_team = users.token('adv-a', ['advocate'], team='team-a')
    other_team = users.token('adv-b', ['advocate'], team='team-b')
    record_id = _stored_record(services, 'worker-a')
    body = {'purpose': 'case_management'}
    released = client.simulate_post(f'/records/{record_id}/open', json=body,
                                    headers=users.bearer(same_team))
    assert released.status_code == 200, released.text
    assert released.json['document']['_id'] == record_id
    refused = client.simulate_post(f'/records/{record_id}/open', json=body,
                                   headers=users.bearer(other_team))
    missing = client.simulate_post(f'/records/contact:{uuid.uuid4()}/open', json=body,
                                   headers=users.bearer(other_team))
    assert_refused(refused, 404, 'not_found')
    assert refused.json == missing.json


def test_a_record_whose_owner_has_no_team_is_released_to_nobody(client, users, services):
    users.create('worker-nt', ['worker'], team=None)
    no_team = users.token('adv-nt', ['advocate'], team=None)
    record_id = _stored_record(services, 'worker-nt')
    result = client.simulate_post(f'/records/{record_id}/open', json={'purpose': 'case_management'},
                                  headers=users.bearer(no_team))
    assert_refused(result, 404, 'not_found')


# -- the database's own 5xx ------------------------------------------------------

@pytest.mark.parametrize('status', [500, 502, 503])
def test_a_database_5xx_is_a_503_with_retry_after(test_config, status):
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(status, json={'error': 'internal', 'reason': CANARY})

    couch = CouchDBClient(test_config.couchdb_url, transport=httpx.MockTransport(answer))
    services = build_services(test_config, couch=couch)
    result = testing.TestClient(create_app(services=services)).simulate_get(
        '/auth/me', headers={'Authorization': 'Bearer usr.someone.well-formed-secret'})
    assert seen, 'the request never reached the database client'
    assert_refused(result, 503, 'database_unavailable')
    assert result.headers['Retry-After'] == str(test_config.retry_after_seconds)
    assert CANARY not in result.text


def test_a_stored_lone_surrogate_is_answered_as_a_json_escape():
    from service.middleware import SafeJSONHandler
    handler = SafeJSONHandler(1024, 8)
    assert handler.serialize({'team': 'a\ud83d'}, 'application/json') == b'{"team":"a\\ud83d"}'
    assert handler.serialize({'team': 'équipe'}, 'application/json') == \
        '{"team":"équipe"}'.encode()


# -- the device query values /sync parses itself ---------------------------------

@pytest.fixture
def device_headers(client, users, role_tokens):
    import base64
    users.create('w-query', ['worker'])
    code = client.simulate_post('/devices', json={'worker': 'w-query'},
                                headers=users.bearer(role_tokens['admin'])).json['enrollment_code']
    creds = client.simulate_post('/devices/enroll', json={'code': code}).json
    basic = base64.b64encode(f'{creds["device_id"]}:{creds["secret"]}'.encode()).decode()
    return {'Authorization': f'Basic {basic}'}


@pytest.mark.parametrize('query', [
    'limit=%C2%B2', 'limit=%D9%A1', 'timeout=%C2%B2', 'limit=1e3', 'limit=-1',
    'feed=longpoll&heartbeat=%C2%B2', 'feed=longpoll&since=now&heartbeat=' + '9' * 40,
    'feed=longpoll&since=now&timeout=' + '9' * 40, 'limit=' + '9' * 40,
])
def test_malformed_changes_query_values_are_400(client, device_headers, query):
    result = client.simulate_get('/sync/records/_changes', query_string=query,
                                 headers=device_headers)
    assert_refused(result, 400, 'bad_request')


def test_an_empty_bulk_get_is_answered_without_the_database(client, device_headers):
    result = client.simulate_post('/sync/records/_bulk_get', json={'docs': []},
                                  headers=device_headers)
    assert result.status_code == 200, result.text
    assert result.json == {'results': []}
    unknown = client.simulate_post('/sync/nowhere/_bulk_get', json={'docs': []},
                                   headers=device_headers)
    assert unknown.status_code == 404


def test_refusal_messages_keep_declared_names_and_positions_only():
    from service.errors import public_fields
    assert public_fields({
        'envelopes': {'0': ['The envelope belongs to another document.']},
        'owner': ['Must be the submitting user.'],
        'Jane Doe': ['Not a valid string.'],
        'JaneDoe': ['Unknown field.'],
        '_unrecognized_key': ['Unknown field.', 'Unknown field.'],
        'keys': {'JaneDoe': {'key': ['Not a valid key.']}},
    }) == {
        'envelopes': {'0': ['The envelope belongs to another document.']},
        'owner': ['Must be the submitting user.'],
        'keys': {'_invalid': ['1 member(s) whose names are not repeated are not valid.']},
        '_unknown': ['3 unknown member(s); send only the documented ones.'],
        '_invalid': ['1 member(s) whose names are not repeated are not valid.'],
    }
