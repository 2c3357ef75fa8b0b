"""CORS answers go to the configured origins only, on the routes a tablet app
served from another host calls (``/devices/enroll`` and ``/sync/...``), with
a fixed list of request headers. Through ``TestClient(create_app(...))``
against the session's pouchdb-server."""

from __future__ import annotations

import pytest
from falcon import testing

from service.app import create_app

pytestmark = pytest.mark.functional

TABLET_HOST = 'https://tablets.example'


@pytest.fixture
def cors_client(services):
    services.config = services.config.replace(cors_origins=(TABLET_HOST,))
    return testing.TestClient(create_app(services=services))


def _preflight(client, path: str, origin: str = TABLET_HOST, headers: str = 'authorization'):
    return client.simulate_options(path, headers={
        'Origin': origin, 'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': headers})


@pytest.mark.parametrize('path', ['/devices/enroll', '/sync/records/_bulk_docs', '/sync/',
                                  '/sync/config/_changes'])
def test_a_configured_origin_gets_cors_on_the_tablet_routes(cors_client, path):
    result = _preflight(cors_client, path)
    assert result.status_code == 200
    assert result.headers['Access-Control-Allow-Origin'] == TABLET_HOST
    assert result.headers['Access-Control-Allow-Credentials'] == 'true'
    assert result.headers['Vary'] == 'Origin'
    assert result.headers['Access-Control-Max-Age'] == '600'


@pytest.mark.parametrize('path', ['/auth/login', '/users', '/records/validate', '/audit',
                                  '/keys/manifest', '/devices', '/synced'])
def test_staff_routes_answer_no_cors_even_to_a_configured_origin(cors_client, path):
    preflight = _preflight(cors_client, path)
    assert not any(name.lower().startswith('access-control-') for name in preflight.headers)
    actual = cors_client.simulate_post(path, json={}, headers={'Origin': TABLET_HOST})
    assert 'Access-Control-Allow-Origin' not in actual.headers


def test_an_unconfigured_origin_gets_no_cors_on_the_tablet_routes(cors_client):
    preflight = _preflight(cors_client, '/sync/records/_bulk_docs', origin='https://evil.example')
    assert not any(name.lower().startswith('access-control-') for name in preflight.headers)
    actual = cors_client.simulate_post('/devices/enroll', json={'code': 'x'},
                                       headers={'Origin': 'https://evil.example'})
    assert actual.status_code == 401
    assert 'Access-Control-Allow-Origin' not in actual.headers


def test_a_refusal_on_a_tablet_route_is_readable_by_the_configured_origin(cors_client):
    # The app reads the refusal's code (a revoked device, a refused enrollment).
    result = cors_client.simulate_get('/sync/', headers={'Origin': TABLET_HOST})
    assert result.status_code == 401
    assert result.headers['Access-Control-Allow-Origin'] == TABLET_HOST


def test_a_preflight_allows_only_the_headers_the_app_sends(cors_client):
    result = _preflight(cors_client, '/sync/records/_bulk_docs',
                        headers='authorization,x-http-method-override,cookie')
    allowed = {name.strip().lower()
               for name in result.headers['Access-Control-Allow-Headers'].split(',')}
    assert allowed == {'authorization', 'content-type', 'accept', 'x-request-id'}
