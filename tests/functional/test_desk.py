"""The desk over real HTTP: its per-run secret, origin and host rules, the
unlock and the idle lock, opening, correcting and resolving through the live
service; and no plaintext on the service's side."""

from __future__ import annotations

import httpx
import pytest

from tests.support.desk import (
    CANARY_CONFLICT, CANARY_CORRECTION, CANARY_NOTE, DeskWorld, FakeClock)
from tests.support.lifecycle import KEY_PASS

pytestmark = pytest.mark.functional


@pytest.fixture
def world(live, users, tmp_path, test_config, services):
    made = DeskWorld(live, users, tmp_path, test_config, services)
    yield made
    made.stop()


def _client(desk) -> httpx.Client:
    """A browser-like client that entered through the printed address."""
    client = httpx.Client(base_url=desk.origin, timeout=60)
    entered = client.get(desk.url)
    assert entered.status_code == 303 and entered.headers['location'] == '/'
    return client


def _unlocked(desk) -> httpx.Client:
    client = _client(desk)
    assert client.post('/api/unlock', json={'passphrase': KEY_PASS}).status_code == 200
    return client


def test_every_request_without_the_secret_is_refused(world):
    desk = world.desk('adv-1')
    for path in ('/', '/static/desk.js', '/api/state', '/api/caseload'):
        refused = httpx.get(desk.origin + path)
        assert refused.status_code == 403, path
        assert refused.json()['code'] == 'secret_required'
    assert httpx.get(desk.origin + '/?token=' + 'x' * 43).status_code == 403
    assert httpx.post(desk.origin + '/api/unlock',
                      json={'passphrase': KEY_PASS}).status_code == 403
    # Another run's cookie (its name carries the port) is no key to this one.
    other = world.desk('adv-1')
    stray = httpx.get(desk.origin + '/api/state',
                      cookies={f'fieldvault_desk_{desk.port}': other.secret})
    assert stray.status_code == 403
    # The printed address sets the cookie; the header works for scripts.
    assert _client(desk).get('/api/state').status_code == 200
    assert httpx.get(desk.origin + '/api/state',
                     headers={'X-Desk-Token': desk.secret}).status_code == 200
    page = _client(desk).get('/')
    assert 'script-src \'self\'' in page.headers['content-security-policy']
    assert page.headers['cache-control'] == 'no-store'


def test_other_origins_and_host_names_are_refused(world):
    desk = world.desk('adv-1')
    client = _client(desk)
    foreign = client.post('/api/unlock', json={'passphrase': KEY_PASS},
                          headers={'Origin': 'http://evil.example'})
    assert foreign.status_code == 403 and foreign.json()['code'] == 'foreign_origin'
    other_port = client.get('/api/state', headers={'Origin': 'http://127.0.0.1:1'})
    assert other_port.status_code == 403
    cross = client.get('/api/state', headers={'Sec-Fetch-Site': 'cross-site'})
    assert cross.status_code == 403
    rebound = client.get('/api/state', headers={'Host': f'evil.example:{desk.port}'})
    assert rebound.status_code == 403 and rebound.json()['code'] == 'wrong_host'
    same = client.post('/api/lock', headers={'Origin': desk.origin})
    assert same.status_code == 200


def test_wrong_passphrase_and_the_idle_lock(world):
    clock = FakeClock()
    desk = world.desk('adv-1', idle_seconds=300, clock=clock)
    client = _client(desk)
    wrong = client.post('/api/unlock', json={'passphrase': 'not my passphrase at all'})
    assert wrong.status_code == 401 and wrong.json()['code'] == 'wrong_passphrase'
    assert client.get('/api/state').json()['unlocked'] is False
    assert client.post('/api/unlock', json={'passphrase': KEY_PASS}).json()['unlocked'] is True
    clock.now += 299
    assert client.get('/api/caseload').status_code == 200  # activity: the idle time restarts
    clock.now += 299
    assert client.get('/api/state').json()['unlocked'] is True
    clock.now += 1  # polling the state is not activity
    assert client.get('/api/state').json()['unlocked'] is False
    locked = client.post(f'/api/records/{world.contact["_id"]}/open',
                         json={'purpose': 'case_management'})
    assert locked.status_code == 423 and locked.json()['code'] == 'locked'
    assert client.get('/api/caseload').status_code == 423


def test_the_idle_lock_needs_no_request(world):
    clock = FakeClock()
    desk = world.desk('adv-1', idle_seconds=60, clock=clock)
    _unlocked(desk)
    clock.now += 61
    desk._stop.wait(2.5)  # the watcher looks every second
    assert desk.session._opener is None


def test_open_renders_labels_and_the_release_is_audited(world, services):
    desk = world.desk('adv-1')
    client = _unlocked(desk)
    found = client.get('/api/caseload', params={'youth_code': 'quiet-river-07'}).json()
    assert {item['id'] for item in found['records']} == {world.contact['_id'],
                                                         world.screening['_id']}
    refused = client.post(f'/api/records/{world.contact["_id"]}/open', json={})
    assert refused.status_code == 422 and refused.json()['code'] == 'purpose_required'
    view = client.post(f'/api/records/{world.contact["_id"]}/open?lang=en',
                       json={'purpose': 'case_management'}).json()
    rows = {row['label']: row['text'] for row in view['sections'][0]['rows']}
    assert rows['Notes'] == CANARY_NOTE
    assert rows['Type of contact'] == 'Street outreach'
    assert rows['Services offered'] == 'Information; Food'
    spanish = client.post(f'/api/records/{world.screening["_id"]}/open?lang=es',
                          json={'purpose': 'case_management'}).json()
    answers = {row['label']: row['text'] for row in spanish['sections'][1]['rows']}
    assert answers['¿Alguna vez recibiste algo (un lugar donde quedarte, regalos, comida, '
                   'dinero) a cambio de sexo?'].startswith('Sí (Alguna vez)')
    released = [doc for doc in services.couch.iter_prefix(services.db('audit'), 'event:')
                if doc['kind'] == 'record_released']
    assert [(event['subject'], event['details']['purpose']) for event in released] == [
        (world.contact['_id'], 'case_management'), (world.screening['_id'], 'case_management')]
    foreign = client.post(f'/api/records/{world.foreign["_id"]}/open',
                          json={'purpose': 'case_management'})
    assert foreign.status_code == 404


def test_a_missing_grant_has_its_own_message(world):
    world.ceremony.join('adv-2', ['advocate'])
    desk = world.desk('adv-2')
    client = _unlocked(desk)
    answer = client.post(f'/api/records/{world.contact["_id"]}/open',
                         json={'purpose': 'case_management'})
    assert answer.status_code == 422 and answer.json()['code'] == 'no_grant'
    assert 'ask a custodian who holds it to share it' in answer.json()['message']


def test_correction_round_trips_and_no_plaintext_reaches_the_service(world, captured_logs):
    desk = world.desk('adv-1')
    client = _unlocked(desk)
    record_id = world.contact['_id']
    before = client.post(f'/api/records/{record_id}/open', json={'purpose': 'case_management'})
    assert before.status_code == 200
    corrected = client.post(f'/api/records/{record_id}/correct',
                            json={'values': {'/notes': CANARY_CORRECTION}})
    assert corrected.status_code == 200, corrected.text
    rows = {row['label']: row['text'] for row in corrected.json()['sections'][0]['rows']}
    assert rows['Notes'] == CANARY_CORRECTION
    assert corrected.json()['rev'].startswith('2-')
    # Non-identifying fields are not edited through the desk's correction.
    refused = client.post(f'/api/records/{record_id}/correct',
                          json={'values': {'/contact_type': 'hotline'}})
    assert refused.status_code == 422
    left, right = world.make_conflict(world.other)
    views = client.post(f'/api/records/{world.other["_id"]}/revisions',
                        json={'purpose': 'case_management'}).json()['revisions']
    notes = {view['rev']: {row['label']: row['text'] for row in view['sections'][0]['rows']}
             for view in views}
    assert notes[right]['Notes'] == CANARY_CONFLICT
    resolved = client.post(f'/api/records/{world.other["_id"]}/resolve', json={'keep': right})
    assert resolved.status_code == 200
    after = client.post(f'/api/records/{world.other["_id"]}/open',
                        json={'purpose': 'case_management'}).json()
    rows = {row['label']: row['text'] for row in after['sections'][0]['rows']}
    assert rows['Notes'] == CANARY_CONFLICT and rows['Type of contact'] == 'Hotline'
    kept = world.server_side_text() + captured_logs.getvalue()
    for canary in (CANARY_NOTE, CANARY_CORRECTION, CANARY_CONFLICT):
        assert canary not in kept
    assert 'record_corrected' in kept and 'conflict_resolved' in kept
