"""The /sync gateway and device lifecycle against the real pouchdb-server."""

from __future__ import annotations

import base64
import time

import pytest

from tests.integration.records import plain_contact, publish_test_manifest, sealed_contact

pytestmark = pytest.mark.functional

ORG = 'org-test'


@pytest.fixture
def admin(users):
    return users.bearer(users.token('admin-sync', ['admin']))


def _enroll(client, users, admin, worker):
    try:
        users.create(worker, ['worker'])
    except Exception:  # noqa: BLE001 - already created by another call
        pass
    registered = client.simulate_post('/devices', json={'worker': worker}, headers=admin)
    assert registered.status_code == 201, registered.text
    enrolled = client.simulate_post('/devices/enroll',
                                    json={'code': registered.json['enrollment_code']})
    assert enrolled.status_code == 201, enrolled.text
    return enrolled.json


def _basic(creds):
    raw = f'{creds["device_id"]}:{creds["secret"]}'.encode()
    return {'Authorization': 'Basic ' + base64.b64encode(raw).decode()}


def _bearer(creds):
    return {'Authorization': f'Bearer {creds["token"]}'}


def _push(client, creds, docs):
    return client.simulate_post('/sync/records/_bulk_docs', headers=_bearer(creds),
                                json={'docs': docs, 'new_edits': False})


def _with_rev(doc, n=1, sig='a' * 32):
    return dict(doc, _rev=f'{n}-{sig}', _revisions={'start': n, 'ids': [sig]})


def test_enrollment_code_is_single_use_and_credentials_work(client, users, admin):
    users.create('w-enroll', ['worker'])
    registered = client.simulate_post('/devices', json={'worker': 'w-enroll'}, headers=admin)
    code = registered.json['enrollment_code']
    first = client.simulate_post('/devices/enroll', json={'code': code})
    assert first.status_code == 201
    assert first.json['token'].startswith('dev.')
    assert first.json['sync_url'].endswith('/sync/')
    again = client.simulate_post('/devices/enroll', json={'code': code})
    assert again.status_code == 401
    for headers in (_basic(first.json), _bearer(first.json)):
        root = client.simulate_get('/sync/', headers=headers)
        assert root.status_code == 200 and root.json['uuid']


def test_register_refuses_unknown_worker(client, admin):
    result = client.simulate_post('/devices', json={'worker': 'nobody'}, headers=admin)
    assert result.status_code == 422 and 'worker' in result.json['fields']


def test_root_uuid_is_stable_and_db_info_has_replicator_fields(client, users, admin, app):
    creds = _enroll(client, users, admin, 'w-root')
    first = client.simulate_get('/sync/', headers=_bearer(creds)).json['uuid']
    assert client.simulate_get('/sync', headers=_bearer(creds)).json['uuid'] == first
    for path in ('/sync/records', '/sync/records/', '/sync/config/'):
        info = client.simulate_get(path, headers=_bearer(creds))
        assert info.status_code == 200
        assert info.json['instance_start_time'] == '0' and 'update_seq' in info.json
    assert client.simulate_get('/sync/directory/', headers=_bearer(creds)).status_code == 404
    assert client.simulate_post('/sync/records/_ensure_full_commit', json={},
                                headers=_bearer(creds)).status_code == 201


def test_checkpoints_are_per_device(client, users, admin):
    one = _enroll(client, users, admin, 'w-cp1')
    two = _enroll(client, users, admin, 'w-cp2')
    missing = client.simulate_get('/sync/records/_local/abc', headers=_bearer(one))
    assert missing.status_code == 404
    assert missing.json['error'] == 'not_found' and missing.json['reason'] == 'missing'
    put = client.simulate_put('/sync/records/_local/abc', headers=_bearer(one),
                              json={'_id': '_local/abc', 'last_seq': 5})
    assert put.status_code == 201 and put.json['id'] == '_local/abc'
    got = client.simulate_get('/sync/records/_local/abc', headers=_bearer(one)).json
    assert got['last_seq'] == 5 and got['_id'] == '_local/abc'
    assert client.simulate_get('/sync/records/_local/abc',
                               headers=_bearer(two)).status_code == 404
    stale = client.simulate_put('/sync/records/_local/abc', headers=_bearer(one),
                                json={'_id': '_local/abc', 'last_seq': 6, '_rev': '0-9'})
    assert stale.status_code == 409


def test_push_validates_per_doc_and_pull_is_filtered(client, users, admin, services):
    alice = _enroll(client, users, admin, 'w-alice')
    bob = _enroll(client, users, admin, 'w-bob')
    publish_test_manifest(services.couch, services.db('config'), ORG)
    good, envelope = sealed_contact('w-alice', ORG)
    plaintext = plain_contact('w-alice', ORG)
    foreign = sealed_contact('w-bob', ORG)[0]
    design = {'_id': '_design/x', 'views': {}}
    big = dict(sealed_contact('w-alice', ORG)[0], notes='x' * (300 * 1024))
    bad_envelope = {'_id': 'rk:broken', 'type': 'rk'}
    docs = [_with_rev(d) for d in (good, plaintext, foreign, design, big, envelope,
                                   bad_envelope)]
    result = _push(client, alice, docs)
    assert result.status_code == 201, result.text
    refused = {entry['id']: entry for entry in result.json}
    assert set(refused) == {plaintext['_id'], foreign['_id'], '_design/x', big['_id'],
                            'rk:broken'}
    assert all(entry['error'] == 'forbidden' for entry in refused.values())
    assert 'owner' in refused[foreign['_id']]['reason']
    # Nothing identifying in refusals or quarantine.
    quarantine = services.couch.all_docs(services.db('quarantine'), include_docs=True)
    assert len(quarantine) == 5
    dumped = str([row['doc'] for row in quarantine]) + result.text
    assert 'Test Person' not in dumped and '555-0100' not in dumped
    # The envelope went to keyvault only, and revs_diff knows it.
    assert services.couch.get_or_none(services.db('keyvault'), envelope['_id'])
    assert services.couch.get_or_none(services.db('records'), envelope['_id']) is None
    diff = client.simulate_post('/sync/records/_revs_diff', headers=_bearer(alice),
                                json={envelope['_id']: ['1-' + 'a' * 32],
                                      good['_id']: ['1-' + 'a' * 32, '2-' + 'b' * 32]})
    assert diff.json == {good['_id']: {'missing': ['2-' + 'b' * 32]}}
    # Pull: alice sees her record, bob sees nothing of hers.
    alice_changes = client.simulate_get('/sync/records/_changes?style=all_docs&since=0',
                                        headers=_bearer(alice)).json
    assert [row['id'] for row in alice_changes['results']] == [good['_id']]
    bob_changes = client.simulate_get('/sync/records/_changes?since=0',
                                      headers=_bearer(bob)).json
    assert bob_changes['results'] == [] and bob_changes['last_seq']
    got = client.simulate_post('/sync/records/_bulk_get?revs=true', headers=_bearer(bob),
                               json={'docs': [{'id': good['_id'], 'rev': docs[0]['_rev']}]})
    assert got.json['results'][0]['docs'] == [{'missing': docs[0]['_rev']}]
    mine = client.simulate_post('/sync/records/_bulk_get?revs=true', headers=_bearer(alice),
                                json={'docs': [{'id': good['_id'], 'rev': docs[0]['_rev']}]})
    assert mine.json['results'][0]['docs'][0]['ok']['_id'] == good['_id']
    assert client.simulate_get(f'/sync/records/{good["_id"]}',
                               headers=_bearer(bob)).status_code == 404
    open_revs = client.simulate_get(f'/sync/records/{good["_id"]}',
                                    params={'open_revs': f'["{docs[0]["_rev"]}"]'},
                                    headers=_bearer(alice))
    assert open_revs.json[0]['ok']['_rev'] == docs[0]['_rev']


def test_config_is_read_only_and_device_control_is_private(client, users, admin, services):
    one = _enroll(client, users, admin, 'w-cfg1')
    two = _enroll(client, users, admin, 'w-cfg2')
    services.couch.put(services.db('config'), {'_id': 'service-areas', 'areas': []})
    assert client.simulate_post(f'/devices/{two["device_id"]}/revoke',
                                headers=admin).status_code == 200
    ids = [row['id'] for row in client.simulate_get(
        '/sync/config/_changes', headers=_bearer(one)).json['results']]
    assert 'service-areas' in ids and f'device-control:{two["device_id"]}' not in ids
    pushed = client.simulate_post('/sync/config/_bulk_docs', headers=_bearer(one), json={
        'docs': [_with_rev({'_id': 'service-areas', 'areas': ['x']}, 2)], 'new_edits': False})
    assert pushed.status_code == 201 and pushed.json[0]['error'] == 'forbidden'


def test_revoked_device_gets_401_forever(client, users, admin, services):
    creds = _enroll(client, users, admin, 'w-rev')
    assert client.simulate_get('/sync/records/', headers=_basic(creds)).status_code == 200
    client.simulate_post(f'/devices/{creds["device_id"]}/revoke', headers=admin)
    for headers in (_basic(creds), _bearer(creds)):
        result = client.simulate_get('/sync/records/', headers=headers)
        assert result.status_code == 401 and result.json['error'] == 'unauthorized'
    control = services.couch.get(services.db('config'), f'device-control:{creds["device_id"]}')
    assert control['action'] == 'wipe'


def test_a_revocation_by_another_instance_reaches_this_one_through_the_feed(
        client, users, admin, services, app):
    """The device document is cached, so the directory feed must evict it."""
    from sync.devices import Devices

    creds = _enroll(client, users, admin, 'w-rev-elsewhere')
    # Warm: authenticated requests until the watch serves the device from memory.
    watch = services.device_watch
    deadline = time.monotonic() + 10
    while not watch.trusted:
        assert client.simulate_get('/sync/records/', headers=_basic(creds)).status_code == 200
        assert time.monotonic() < deadline, 'the directory feed never went live'
        time.sleep(0.02)
    assert client.simulate_get('/sync/records/', headers=_basic(creds)).status_code == 200
    # Another instance (its own store, no watch) revokes straight in CouchDB.
    Devices(services.couch, services.db('directory'), services.db('config')).revoke(
        creds['device_id'])
    deadline = time.monotonic() + 10
    while client.simulate_get('/sync/records/', headers=_basic(creds)).status_code != 401:
        assert time.monotonic() < deadline, 'the revocation never reached this instance'
        time.sleep(0.01)
    for headers in (_basic(creds), _bearer(creds)):
        assert client.simulate_get('/sync/records/', headers=headers).status_code == 401


def test_conflicts_are_kept_and_listed(client, users, admin, role_tokens):
    creds = _enroll(client, users, admin, 'w-conf')
    doc = sealed_contact('w-conf', ORG)[0]
    base = _with_rev(doc, 1, 'a' * 32)
    left = dict(doc, _rev='2-' + 'b' * 32, _revisions={'start': 2, 'ids': ['b' * 32, 'a' * 32]})
    right = dict(doc, _rev='2-' + 'c' * 32, _revisions={'start': 2, 'ids': ['c' * 32, 'a' * 32]})
    assert _push(client, creds, [base, left, right]).json == []
    for role in ('advocate', 'supervisor'):
        listed = client.simulate_get('/records/conflicts', headers=users.bearer(role_tokens[role]))
        assert listed.status_code == 200
        assert [item['id'] for item in listed.json['conflicts']] == [doc['_id']]
    for role in ('worker', 'admin', 'liaison'):
        assert client.simulate_get('/records/conflicts', headers=users.bearer(
            role_tokens[role])).status_code == 403


SYNC_ENDPOINTS = [
    ('GET', '/sync/'), ('GET', '/sync/records/'), ('GET', '/sync/records/_local/x'),
    ('PUT', '/sync/records/_local/x'), ('GET', '/sync/records/_changes'),
    ('POST', '/sync/records/_revs_diff'), ('POST', '/sync/records/_bulk_docs'),
    ('POST', '/sync/records/_bulk_get'), ('POST', '/sync/records/_ensure_full_commit'),
    ('GET', '/sync/records/contact:x'),
]


def test_sync_endpoints_refuse_every_staff_role_and_no_credentials(client, role_tokens, users):
    for method, path in SYNC_ENDPOINTS:
        kwargs = {'json': {}} if method in ('POST', 'PUT') else {}
        assert client.simulate_request(method, path, **kwargs).status_code == 401, path
        for role, token in role_tokens.items():
            result = client.simulate_request(method, path, headers=users.bearer(token), **kwargs)
            assert result.status_code == 403, (path, role)


def test_device_admin_endpoints_are_admin_only(client, role_tokens, users, admin):
    creds = _enroll(client, users, admin, 'w-adm')
    for method, path in (('GET', '/devices'), ('POST', '/devices'),
                         ('GET', f'/devices/{creds["device_id"]}'),
                         ('POST', f'/devices/{creds["device_id"]}/revoke')):
        kwargs = {'json': {}} if method == 'POST' else {}
        assert client.simulate_request(method, path, **kwargs).status_code == 401
        assert client.simulate_request(method, path, headers=_bearer(creds),
                                       **kwargs).status_code == 403
        for role, token in role_tokens.items():
            if role == 'admin':
                continue
            assert client.simulate_request(method, path, headers=users.bearer(token),
                                           **kwargs).status_code == 403, (path, role)


def test_database_down_is_503_with_retry_after(client, users, admin, services, monkeypatch):
    creds = _enroll(client, users, admin, 'w-down')
    from sync.errors import DatabaseUnavailable

    def down(*args, **kwargs):
        raise DatabaseUnavailable('GET x: ConnectError')
    # Authentication goes through first (it needs the database too), then
    # every gateway call fails the way the client fails when CouchDB is gone.
    original = services.couch.request
    monkeypatch.setattr(services.couch, 'request', lambda method, path, **kw: (
        down() if '/_changes' in path else original(method, path, **kw)))
    result = client.simulate_get('/sync/records/_changes', headers=_bearer(creds))
    assert result.status_code == 503 and result.headers['Retry-After']


def test_cors_preflight_is_answered_without_auth(services):
    from falcon import testing

    from service.app import create_app
    services.config = services.config.replace(cors_origins=('https://tablet.example',))
    client = testing.TestClient(create_app(services=services))
    result = client.simulate_options('/sync/records/_bulk_docs', headers={
        'Origin': 'https://tablet.example', 'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization,content-type'})
    assert result.status_code == 200
    assert result.headers['Access-Control-Allow-Origin'] == 'https://tablet.example'
    other = client.simulate_options('/sync/records/_bulk_docs', headers={
        'Origin': 'https://evil.example', 'Access-Control-Request-Method': 'POST'})
    assert 'Access-Control-Allow-Origin' not in other.headers


def test_expired_enrollment_code_is_refused(services):
    from sync.devices import DeviceError, Devices
    now = [1000.0]
    devices = Devices(services.couch, services.db('directory'), services.db('config'),
                      enrollment_ttl=60, clock=lambda: now[0])
    code = devices.register('w-late')['enrollment_code']
    now[0] += 61
    with pytest.raises(DeviceError):
        devices.enroll(code)
