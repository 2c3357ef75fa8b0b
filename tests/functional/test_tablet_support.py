"""What the tablet app needs from the service: its files at /app/, the record
schemas and instrument packs as config documents, a revoked device told to
wipe, refusals it can explain, and accepted pushes audited."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid

import pytest

import schemas
from service.cli import ensure_databases, publish_tablet_config
from tests.integration.records import plain_contact, publish_test_manifest, sealed_contact
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.functional

ORG = 'org-test'


@pytest.fixture
def admin(users):
    return users.bearer(users.token('admin-tablet', ['admin']))


def _enroll(client, users, admin, worker):
    users.create(worker, ['worker'])
    registered = client.simulate_post('/devices', json={'worker': worker}, headers=admin)
    enrolled = client.simulate_post('/devices/enroll',
                                    json={'code': registered.json['enrollment_code']})
    assert enrolled.status_code == 201, enrolled.text
    return enrolled.json


def _basic(device_id, secret):
    raw = f'{device_id}:{secret}'.encode()
    return {'Authorization': 'Basic ' + base64.b64encode(raw).decode()}


def _push(client, creds, docs):
    return client.simulate_post('/sync/records/_bulk_docs', json={'docs': docs},
                                headers={'Authorization': f'Bearer {creds["token"]}'})


def _events(services, kind):
    return [row['doc'] for row in services.couch.all_docs(services.db('audit'),
                                                          include_docs=True)
            if row['id'].startswith('event:') and row['doc']['kind'] == kind]


def test_a_revoked_device_is_told_to_wipe_only_with_its_own_secret(client, users, admin):
    creds = _enroll(client, users, admin, 'w-wipe')
    client.simulate_post(f'/devices/{creds["device_id"]}/revoke', headers=admin)
    for headers in (_basic(creds['device_id'], creds['secret']),
                    {'Authorization': f'Bearer {creds["token"]}'}):
        answer = client.simulate_get('/sync/records/', headers=headers)
        assert answer.status_code == 401
        # PouchDB stops on "unauthorized"; the code tells the app to wipe.
        assert answer.json['error'] == 'unauthorized'
        assert answer.json['code'] == 'device_revoked'
    guessed = client.simulate_get('/sync/records/', headers=_basic(creds['device_id'], 'x' * 43))
    assert guessed.status_code == 401 and guessed.json['code'] == 'unauthorized'
    shown = client.simulate_get(f'/devices/{creds["device_id"]}', headers=admin).json
    assert 'secret' not in json.dumps(shown)


def test_db_init_publishes_schemas_and_packs_that_devices_pull(client, users, admin, services):
    creds = _enroll(client, users, admin, 'w-config')
    headers = {'Authorization': f'Bearer {creds["token"]}'}
    schema = client.simulate_get('/sync/config/record-schema:screening-1', headers=headers).json
    assert schema['json_schema'] == schemas.export_json_schemas()['screening/1']
    assert schema['identifying_paths'] == ['/response_notes']
    pack = client.simulate_get('/sync/config/instrument-pack:QYIT:1.0', headers=headers).json
    assert [item['code'] for item in pack['pack']['items']][:1] == ['QYIT_1']
    changes = client.simulate_get('/sync/config/_changes', headers=headers).json
    ids = {row['id'] for row in changes['results']}
    assert {'record-schema:contact-1', 'record-schema:screening-1',
            'instrument-pack:TVIT_SHORT:0.1'} <= ids
    # Idempotent: a second run rewrites nothing, so replicas pull nothing new.
    assert ensure_databases(services) == [] and publish_tablet_config(services) == []
    # A document that differs from what the service would publish is rewritten.
    stale = services.couch.get(services.db('config'), 'record-schema:screening-1')
    services.couch.put(services.db('config'), dict(stale, identifying_paths=[]))
    assert publish_tablet_config(services) == ['record-schema:screening-1']
    again = client.simulate_get('/sync/config/record-schema:screening-1', headers=headers).json
    assert again['identifying_paths'] == ['/response_notes']


def test_a_refusal_tells_the_device_its_rule_and_fields(client, users, admin):
    creds = _enroll(client, users, admin, 'w-refused')
    plain = plain_contact('w-refused', ORG, notes='a note in the clear')
    answer = _push(client, creds, [plain]).json[0]
    assert answer['error'] == 'forbidden' and answer['rule'] == 'schema'
    assert 'must hold a sealed fle/1 value' in json.dumps(answer['fields'])
    assert 'a note in the clear' not in json.dumps(answer)
    foreign = dict(plain_contact('someone-else', ORG), _id=f'contact:{uuid.uuid4()}')
    assert _push(client, creds, [foreign]).json[0]['rule'] == 'owner'


def test_an_accepted_push_is_audited_with_counts_only(client, users, admin, services):
    creds = _enroll(client, users, admin, 'w-audit')
    publish_test_manifest(services.couch, services.db('config'), ORG)
    sealed, envelope = sealed_contact('w-audit', ORG)
    refused = plain_contact('w-audit', ORG, notes='clear words')
    answers = _push(client, creds, [sealed, envelope, refused]).json
    assert [bool(answer.get('error')) for answer in answers] == [False, False, True]
    [event] = _events(services, 'push_accepted')
    assert event['actor'] == f'device:{creds["device_id"]}'
    assert event['details'] == {'db': 'records', 'worker': 'w-audit', 'records': 1,
                                'envelopes': 1, 'deletions': 0, 'refused': 1}
    # A batch that stores nothing is no accepted push.
    _push(client, creds, [plain_contact('w-audit', ORG, notes='more clear words')])
    assert len(_events(services, 'push_accepted')) == 1
    assert 'clear words' not in json.dumps(_events(services, 'push_refused'))


@pytest.fixture(scope='module')
def built_app():
    done = subprocess.run(['node', 'tablet/build.mjs'], cwd=ROOT, capture_output=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return ROOT / 'tablet' / 'dist'


def test_the_app_is_served_at_app_with_a_same_origin_policy(client, built_app):
    moved = client.simulate_get('/app')
    assert moved.status_code == 301 and moved.headers['location'].endswith('/app/')
    index = client.simulate_get('/app/')
    assert index.status_code == 200 and index.headers['content-type'].startswith('text/html')
    assert "connect-src 'self'" in index.headers['content-security-policy']
    assert client.simulate_get('/app/app.js').text == (built_app / 'app.js').read_text()
    worker = client.simulate_get('/app/sw.js')
    assert worker.headers['content-type'].startswith('text/javascript')
    assert '__VERSION__' not in worker.text
    for name in ('nothing.js', '.hidden.js', 'app.py', '..%2fsetup.cfg'):
        assert client.simulate_get(f'/app/{name}').status_code == 404, name


def test_the_build_is_reproducible(built_app):
    first = (built_app / 'build.json').read_text()
    done = subprocess.run(['node', 'tablet/build.mjs'], cwd=ROOT, capture_output=True,
                          timeout=120)
    assert done.returncode == 0
    assert (built_app / 'build.json').read_text() == first
