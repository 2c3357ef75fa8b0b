"""Every route and method against every role, no token, an expired token and
a disabled user. A new route joins the matrix by being mounted."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from service.resources import ALL_STAFF

pytestmark = pytest.mark.functional


def _cases(app):
    # Logout ends the caller's session, so it goes last.
    routes = sorted(app.fieldvault_routes, key=lambda route: route[0] == '/auth/logout')
    for path, resource in routes:
        concrete = re.sub(r'\{[^}]+\}', 'placeholder-1', path)
        for method, allowed in resource.auth.items():
            yield path, concrete, method, allowed


def _call(client, method, path, headers):
    kwargs = {'headers': headers}
    if method in ('POST', 'PUT', 'PATCH'):
        kwargs['json'] = {}
    return client.simulate_request(method, path, **kwargs)


def test_matrix_covers_every_mounted_route(app):
    mounted = {path for path, _ in app.fieldvault_routes}
    assert {'/auth/login', '/users', '/users/{username}', '/records/validate'} <= mounted
    for _path, resource in app.fieldvault_routes:
        assert resource.auth, f'{type(resource).__name__} declares no auth'


def test_each_role_is_allowed_exactly_where_declared(app, client, role_tokens):
    checked = 0
    for path, concrete, method, allowed in _cases(app):
        for role in ALL_STAFF:
            result = _call(client, method, concrete,
                           {'Authorization': f'Bearer {role_tokens[role]}'})
            if allowed == 'public' or role in allowed:
                assert result.status_code not in (401, 403), (path, method, role, result.text)
            else:
                assert result.status_code == 403, (path, method, role, result.status_code)
                if method != 'HEAD':  # HEAD answers carry no body
                    assert result.json['code'] == 'forbidden'
            checked += 1
    assert checked >= 5 * 10


def test_no_token_is_401_except_public_routes(app, client):
    for path, concrete, method, allowed in _cases(app):
        result = _call(client, method, concrete, {})
        if allowed == 'public':
            assert result.status_code != 401, (path, method)
        else:
            assert result.status_code == 401, (path, method, result.status_code)
            assert result.headers['WWW-Authenticate'].startswith('Bearer')


def test_garbage_and_basic_credentials_are_401_for_users(app, client):
    for path, concrete, method, allowed in _cases(app):
        if allowed == 'public':
            continue
        for header in ('Bearer not-a-token', 'Basic !!!', 'Token abc', 'Bearer '):
            result = _call(client, method, concrete, {'Authorization': header})
            assert result.status_code == 401, (path, method, header)


def test_expired_token_is_401_everywhere(app, client, users, services):
    token = users.token('admin-exp', ['admin', 'worker', 'liaison'])
    token_id = f'token:{hashlib.sha256(token.encode()).hexdigest()}'
    session = services.couch.get(services.db('directory'), token_id)
    session['expires_at'] = 0
    services.couch.put(services.db('directory'), session)
    for path, concrete, method, allowed in _cases(app):
        if allowed == 'public':
            continue
        result = _call(client, method, concrete, {'Authorization': f'Bearer {token}'})
        assert result.status_code == 401, (path, method)


def test_disabled_user_is_401_everywhere(app, client, users, services):
    token = users.token('admin-dis', ['admin', 'worker', 'liaison'])
    services.accounts.update_user('admin-dis', disabled=True)
    for path, concrete, method, allowed in _cases(app):
        if allowed == 'public':
            continue
        result = _call(client, method, concrete, {'Authorization': f'Bearer {token}'})
        assert result.status_code == 401, (path, method)


def _device_credentials(client, users, role_tokens, worker):
    users.create(worker, ['worker'])
    admin = {'Authorization': f'Bearer {role_tokens["admin"]}'}
    code = client.simulate_post('/devices', json={'worker': worker},
                                headers=admin).json['enrollment_code']
    creds = client.simulate_post('/devices/enroll', json={'code': code}).json
    basic = base64.b64encode(f'{creds["device_id"]}:{creds["secret"]}'.encode()).decode()
    return creds, admin, ({'Authorization': f'Basic {basic}'},
                          {'Authorization': f'Bearer {creds["token"]}'})


def test_a_device_is_allowed_exactly_where_declared(app, client, users, role_tokens):
    _creds, _admin, headers = _device_credentials(client, users, role_tokens, 'w-matrix')
    for path, concrete, method, allowed in _cases(app):
        if path == '/auth/logout':
            continue
        for header in headers:
            result = _call(client, method, concrete, header)
            if allowed == 'public' or 'device' in allowed:
                assert result.status_code not in (401, 403), (path, method, result.text)
            else:
                assert result.status_code == 403, (path, method, result.status_code)


def test_a_revoked_device_is_401_everywhere(app, client, users, role_tokens):
    creds, admin, headers = _device_credentials(client, users, role_tokens, 'w-revoked')
    assert client.simulate_post(f'/devices/{creds["device_id"]}/revoke',
                                headers=admin).status_code in (200, 201)
    for path, concrete, method, allowed in _cases(app):
        if allowed == 'public':
            continue
        for header in headers:
            result = _call(client, method, concrete, header)
            assert result.status_code == 401, (path, method, result.status_code)
