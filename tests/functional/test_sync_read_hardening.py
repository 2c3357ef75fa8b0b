"""The gateway's read paths against a hostile device, on the real pouchdb-server.

Long-polls end at the gateway's own deadline, one device holds a bounded
share of the service, malformed parameters get a 4xx, no id a device sends
reaches anything but a document of its own database, another worker's ids
answer exactly like missing ones, a disabled worker's devices are refused,
and the conflict listing stays within the caller's team.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time

import httpx
import pytest
from falcon import testing

from service.app import create_app
from tests.integration.records import sealed_contact

pytestmark = pytest.mark.functional

ORG = 'org-test'
#: pouchdb-server writes a newline into a waiting long-poll every 6 s; a
#: maximum above that is what a read timeout alone never enforces.
LONGPOLL_MAX = 7


@pytest.fixture
def admin(users):
    return users.bearer(users.token('admin-read', ['admin']))


def _enroll(client, users, admin, worker, team='team-a'):
    try:
        users.create(worker, ['worker'], team=team)
    except Exception:  # noqa: BLE001 - already created by another call
        pass
    registered = client.simulate_post('/devices', json={'worker': worker}, headers=admin)
    assert registered.status_code == 201, registered.text
    enrolled = client.simulate_post('/devices/enroll',
                                    json={'code': registered.json['enrollment_code']})
    assert enrolled.status_code == 201, enrolled.text
    return enrolled.json


def _bearer(creds):
    return {'Authorization': f'Bearer {creds["token"]}'}


def _basic(creds):
    raw = f'{creds["device_id"]}:{creds["secret"]}'.encode()
    return {'Authorization': 'Basic ' + base64.b64encode(raw).decode()}


def _push(client, creds, docs):
    result = client.simulate_post('/sync/records/_bulk_docs', headers=_bearer(creds),
                                  json={'docs': docs, 'new_edits': False})
    assert result.status_code == 201, result.text
    return result.json


def _rev(doc, n, sig, parents=()):
    return dict(doc, _rev=f'{n}-{sig}', _revisions={'start': n, 'ids': [sig, *parents]})


def _stored(client, creds, owner):
    """Push one sealed record of ``owner`` and return it (with its revision)."""
    doc = _rev(sealed_contact(owner, ORG)[0], 1, 'a' * 32)
    assert _push(client, creds, [doc]) == []
    return doc


# -- long-polls -------------------------------------------------------------


def test_long_polls_end_at_the_gateway_deadline_though_the_database_keeps_them_alive(
        services, users):
    """Both forms (plain and streamed with heartbeats) answer an empty body at the deadline."""
    app = create_app(services=dataclasses.replace(
        services, config=services.config.replace(longpoll_max_seconds=LONGPOLL_MAX)))
    client = testing.TestClient(app)
    admin = users.bearer(users.token('admin-lp', ['admin']))
    creds = _enroll(client, users, admin, 'w-lp')
    answers = {}

    def poll(name, params):
        answers[name] = client.simulate_get('/sync/records/_changes', headers=_basic(creds),
                                            params={'feed': 'longpoll', 'since': 'now', **params})

    threads = [threading.Thread(target=poll, args=(name, params), daemon=True) for name, params in
               (('plain', {}), ('streamed', {'heartbeat': '10000'}))]
    for thread in threads:
        thread.start()
    for thread in threads:
        # Far above the 7 s maximum: the poll ended at all, not how fast.
        thread.join(timeout=LONGPOLL_MAX * 8)
    assert set(answers) == {'plain', 'streamed'}, 'a long-poll never ended'
    for answer in answers.values():
        assert answer.status_code == 200
        body = json.loads(answer.text)
        assert body['results'] == [] and 'last_seq' in body


@pytest.mark.parametrize('query', [
    'limit=%C2%B2', 'heartbeat=%C2%B2', 'timeout=%C2%B2', 'limit=-1', 'limit=1e9',
    'heartbeat=99999999999999999999', 'heartbeat=' + '9' * 400, 'timeout=99999999999999999999',
    'timeout=' + '9' * 5000, 'limit=99999999999999999999', 'limit=0', 'since=-1',
    'since=99999999999999999999', 'since=' + '9' * 600, 'since=%00', 'feed=continuous',
    'feed=eventsource', 'style=%C2%B2', 'heartbeat=0', 'timeout=0',
])
def test_malformed_or_huge_changes_parameters_get_a_coded_4xx_or_are_clamped(
        client, users, admin, query):
    creds = _enroll(client, users, admin, 'w-params')
    _stored(client, creds, 'w-params')  # a visible row: a valid long-poll answers at once
    answer = client.simulate_get('/sync/records/_changes',
                                 query_string=f'feed=longpoll&since=0&{query}',
                                 headers=_basic(creds))
    assert answer.status_code < 500, (query, answer.status_code, answer.text)
    if answer.status_code >= 400:
        assert answer.status_code == 400 and answer.json['code'] and answer.json['error']
    else:
        assert len(json.loads(answer.text)['results']) <= 1


def test_checkpoint_bodies_that_are_not_json_get_a_400(client, users, admin):
    creds = _enroll(client, users, admin, 'w-nan')
    for body in (b'{"last_seq":NaN}', b'{"last_seq":1e999}', b'{"a":-Infinity}'):
        answer = client.simulate_put('/sync/records/_local/x', body=body, headers={
            **_basic(creds), 'Content-Type': 'application/json'})
        assert answer.status_code == 400 and answer.json['code'] == 'non_finite_number', answer.text
    assert client.simulate_get('/sync/records/_local/x',
                               headers=_basic(creds)).status_code == 404


# -- fair share -------------------------------------------------------------


def test_one_device_holds_a_bounded_share_and_others_are_still_served(
        services, users, couch_server):
    from tests.support.live import LiveServer

    app = create_app(services=dataclasses.replace(
        services, config=services.config.replace(device_max_concurrent=3)))
    share = app.fieldvault_share
    client = testing.TestClient(app)
    admin = users.bearer(users.token('admin-share', ['admin']))
    hog = _enroll(client, users, admin, 'w-hog')
    other = _enroll(client, users, admin, 'w-other')
    live = LiveServer(app)
    try:
        since = client.simulate_get('/sync/records/', headers=_basic(hog)).json['update_seq']
        polls = []

        def poll(params):
            polls.append(httpx.get(live.url + '/sync/records/_changes', timeout=120,
                                   auth=(hog['device_id'], hog['secret']),
                                   params={'feed': 'longpoll', 'since': since, **params}))

        threads = [threading.Thread(target=poll, args=(params,), daemon=True)
                   for params in ({}, {'heartbeat': '1000'}, {'heartbeat': '1000'})]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while share.in_flight(hog['device_id']) < 3:
            assert time.monotonic() < deadline, 'the long-polls never started'
            time.sleep(0.02)
        auth = (hog['device_id'], hog['secret'])
        extra = httpx.get(live.url + '/sync/records/', auth=auth, timeout=30)
        assert extra.status_code == 429
        assert extra.json()['error'] == 'too_many_requests'
        assert int(extra.headers['Retry-After']) >= 1
        # Another device and the service itself are still served.
        assert httpx.get(live.url + '/sync/records/', timeout=30,
                         auth=(other['device_id'], other['secret'])).status_code == 200
        assert httpx.get(live.url + '/healthz', timeout=30).status_code == 200
        # A visible change ends the polls; every slot (streamed ones too) comes back.
        services.couch.put(services.db('records'), sealed_contact('w-hog', ORG)[0])
        for thread in threads:
            thread.join(timeout=120)
        assert [poll.status_code for poll in polls] == [200, 200, 200]
        deadline = time.monotonic() + 60
        while share.in_flight(hog['device_id']):
            assert time.monotonic() < deadline, 'a finished request kept its slot'
            time.sleep(0.02)
        assert httpx.get(live.url + '/sync/records/', auth=auth, timeout=30).status_code == 200
    finally:
        live.stop()


# -- _bulk_get ---------------------------------------------------------------


def test_an_empty_bulk_get_is_answered_without_the_database(client, users, admin):
    creds = _enroll(client, users, admin, 'w-empty')
    for db in ('records', 'config'):
        answer = client.simulate_post(f'/sync/{db}/_bulk_get?revs=true', headers=_basic(creds),
                                      json={'docs': []})
        assert answer.status_code == 200 and answer.json == {'results': []}


# -- ids that are not documents of the device's database ------------------------


_NOT_DOCUMENTS = ['..', '.', '_security', '_design/x', 'a/b', '_all_dbs', '_local/x', 'rk:ab']


def _missing_like(client, creds, path, params=None):
    answer = client.simulate_get(path, headers=_basic(creds), params=params)
    return answer.status_code, answer.json


@pytest.mark.parametrize('db', ['config', 'records'])
def test_dot_and_reserved_ids_answer_as_missing_documents_on_every_path(
        client, users, admin, db):
    creds = _enroll(client, users, admin, 'w-dots')
    missing_id = 'contact:00000000-0000-4000-8000-00000000dead'
    for params in (None, {'open_revs': 'all'}, {'open_revs': '["1-' + 'a' * 32 + '"]'}):
        expected = _missing_like(client, creds, f'/sync/{db}/{missing_id}', params)
        assert expected[0] in (200, 404)
        for raw in ('..', '%2e%2e', '%2E%2E', '.', '%2e', '_security', '_design%2Fx',
                    'a%2Fb', '_all_dbs'):
            got = _missing_like(client, creds, f'/sync/{db}/{raw}', params)
            assert got == expected, (raw, params, got)
    for local in ('..', '.', '%2e%2e'):
        got = client.simulate_get(f'/sync/{db}/_local/{local}', headers=_basic(creds))
        assert got.status_code == 404 and got.json['reason'] == 'missing', local
    # _bulk_get: each slot as a missing id's, with and without a revision.
    for rev in (None, '1-' + 'a' * 32):
        def ask(ids):
            docs = [{'id': doc_id, **({'rev': rev} if rev else {})} for doc_id in ids]
            answer = client.simulate_post(f'/sync/{db}/_bulk_get?revs=true',
                                          headers=_basic(creds), json={'docs': docs})
            assert answer.status_code == 200, answer.text
            return answer.json['results']
        expected = ask([missing_id])[0]['docs']
        for entry in ask(_NOT_DOCUMENTS + ['']):
            assert entry['docs'] == json.loads(json.dumps(expected).replace(
                missing_id, entry['id'])), entry
    # _all_docs by keys and _revs_diff.
    rows = client.simulate_post(f'/sync/{db}/_all_docs', headers=_basic(creds),
                                json={'keys': _NOT_DOCUMENTS + ['', missing_id]}).json['rows']
    assert rows == [{'key': key, 'error': 'not_found'} for key in _NOT_DOCUMENTS + ['', missing_id]]
    revs = ['1-' + 'a' * 32, '2-' + 'b' * 32]
    diff = client.simulate_post(f'/sync/{db}/_revs_diff', headers=_basic(creds),
                                json={key: revs for key in ['..', '.', '_security', missing_id]})
    assert diff.status_code == 200
    assert diff.json == {key: diff.json[missing_id] for key in ['..', '.', '_security',
                                                                missing_id]}
    assert diff.json[missing_id] == {'missing': revs}


def test_the_welcome_and_database_info_never_reach_a_device_through_an_id(
        client, users, admin):
    creds = _enroll(client, users, admin, 'w-welcome')
    for path in ('/sync/config/..', '/sync/config/%2e%2e', '/sync/config/.',
                 '/sync/records/..', '/sync/records/.'):
        answer = client.simulate_get(path, headers=_basic(creds))
        assert answer.status_code == 404 and answer.json['reason'] == 'missing', path
        assert 'couchdb' not in answer.text and 'doc_count' not in answer.text


# -- another worker's ids --------------------------------------------------------


def test_another_workers_ids_answer_exactly_like_missing_ones(client, users, admin):
    alice = _enroll(client, users, admin, 'w-alice-f')
    bob = _enroll(client, users, admin, 'w-bob-f')
    theirs = _stored(client, alice, 'w-alice-f')
    tomb = _rev(sealed_contact('w-alice-f', ORG)[0], 1, 'e' * 32)
    _push(client, alice, [tomb])
    gone = {'_id': tomb['_id'], '_deleted': True, '_rev': '2-' + 'f' * 32,
            '_revisions': {'start': 2, 'ids': ['f' * 32, 'e' * 32]}}
    assert _push(client, alice, [gone]) == []
    never = 'contact:00000000-0000-4000-8000-00000000beef'

    def as_bob(foreign_id):
        """Every read path's answer to bob, with the id replaced by a marker."""
        answers = []
        rev = theirs['_rev'] if foreign_id == theirs['_id'] else gone['_rev']
        for params in (None, {'open_revs': 'all'}, {'open_revs': json.dumps([rev])}):
            got = client.simulate_get(f'/sync/records/{foreign_id}', headers=_basic(bob),
                                      params=params)
            answers.append((got.status_code, got.text))
        for docs in ([{'id': foreign_id}], [{'id': foreign_id, 'rev': rev}]):
            got = client.simulate_post('/sync/records/_bulk_get', params={'revs': 'true'},
                                       headers=_basic(bob), json={'docs': docs})
            answers.append((got.status_code, got.text))
        got = client.simulate_post('/sync/records/_revs_diff', headers=_basic(bob),
                                   json={foreign_id: [rev, '9-' + 'c' * 32]})
        answers.append((got.status_code, got.text))
        got = client.simulate_post('/sync/records/_all_docs', headers=_basic(bob),
                                   json={'keys': [foreign_id]}, params={'include_docs': 'true'})
        answers.append((got.status_code, got.text))
        return [(status, text.replace(foreign_id, 'ID').replace(rev, 'REV'))
                for status, text in answers]

    def as_missing(rev):
        answers = []
        for params in (None, {'open_revs': 'all'}, {'open_revs': json.dumps([rev])}):
            got = client.simulate_get(f'/sync/records/{never}', headers=_basic(bob),
                                      params=params)
            answers.append((got.status_code, got.text))
        for docs in ([{'id': never}], [{'id': never, 'rev': rev}]):
            got = client.simulate_post('/sync/records/_bulk_get', params={'revs': 'true'},
                                       headers=_basic(bob), json={'docs': docs})
            answers.append((got.status_code, got.text))
        got = client.simulate_post('/sync/records/_revs_diff', headers=_basic(bob),
                                   json={never: [rev, '9-' + 'c' * 32]})
        answers.append((got.status_code, got.text))
        got = client.simulate_post('/sync/records/_all_docs', headers=_basic(bob),
                                   json={'keys': [never]}, params={'include_docs': 'true'})
        answers.append((got.status_code, got.text))
        return [(status, text.replace(never, 'ID').replace(rev, 'REV'))
                for status, text in answers]

    for foreign_id, rev in ((theirs['_id'], theirs['_rev']), (tomb['_id'], gone['_rev'])):
        assert as_bob(foreign_id) == as_missing(rev), foreign_id
    # Alice herself still reads her own document on each path.
    mine = client.simulate_get(f'/sync/records/{theirs["_id"]}', headers=_basic(alice),
                               params={'open_revs': 'all'})
    assert mine.status_code == 200 and mine.json[0]['ok']['_rev'] == theirs['_rev']
    got = client.simulate_post('/sync/records/_bulk_get', headers=_basic(alice),
                               json={'docs': [{'id': theirs['_id']}]})
    assert got.json['results'][0]['docs'][0]['ok']['_id'] == theirs['_id']
    diff = client.simulate_post('/sync/records/_revs_diff', headers=_basic(alice),
                                json={theirs['_id']: [theirs['_rev'], '9-' + 'c' * 32]})
    assert diff.json == {theirs['_id']: {'missing': ['9-' + 'c' * 32]}}


# -- a disabled worker ------------------------------------------------------------

SYNC_PATHS = [
    ('GET', '/sync/', None), ('GET', '/sync/records/', None), ('HEAD', '/sync/records', None),
    ('GET', '/sync/records/_local/x', None), ('PUT', '/sync/records/_local/x', {'a': 1}),
    ('GET', '/sync/records/_changes', None), ('POST', '/sync/records/_revs_diff', {}),
    ('POST', '/sync/records/_bulk_docs', {'docs': []}),
    ('POST', '/sync/records/_bulk_get', {'docs': []}),
    ('POST', '/sync/records/_all_docs', {'keys': []}),
    ('POST', '/sync/records/_ensure_full_commit', {}), ('GET', '/sync/records/contact:x', None),
    ('GET', '/sync/config/_changes', None),
]


def test_a_disabled_workers_devices_stop_syncing_on_every_path(client, users, admin, services):
    creds = _enroll(client, users, admin, 'w-leaving')
    # Warm the cache until the device and its worker are served from memory.
    deadline = time.monotonic() + 30
    while not services.device_watch.trusted:
        assert client.simulate_get('/sync/records/', headers=_basic(creds)).status_code == 200
        assert time.monotonic() < deadline, 'the directory feed never went live'
        time.sleep(0.02)
    for headers in (_basic(creds), _bearer(creds)):
        assert client.simulate_get('/sync/records/_changes', headers=headers).status_code == 200
    patched = client.simulate_patch('/users/w-leaving', json={'disabled': True}, headers=admin)
    assert patched.status_code == 200, patched.text
    # Within the directory feed's latency; the bound only says it happened.
    deadline = time.monotonic() + 30
    while client.simulate_get('/sync/records/', headers=_basic(creds)).status_code != 401:
        assert time.monotonic() < deadline, 'the disabled worker kept syncing'
        time.sleep(0.01)
    for headers in (_basic(creds), _bearer(creds)):
        for method, path, body in SYNC_PATHS:
            answer = client.simulate_request(method, path, headers=headers, json=body)
            assert answer.status_code == 401, (method, path, answer.status_code)
            if method != 'HEAD':
                assert answer.json['error'] == 'unauthorized'
    # Enabled again, the same device syncs again.
    assert client.simulate_patch('/users/w-leaving', json={'disabled': False},
                                 headers=admin).status_code == 200
    deadline = time.monotonic() + 30
    while client.simulate_get('/sync/records/', headers=_basic(creds)).status_code != 200:
        assert time.monotonic() < deadline, 'the enabled worker stayed refused'
        time.sleep(0.01)


def test_a_worker_role_taken_away_stops_their_devices(client, users, admin):
    creds = _enroll(client, users, admin, 'w-moved')
    assert client.simulate_get('/sync/records/', headers=_basic(creds)).status_code == 200
    assert client.simulate_patch('/users/w-moved', json={'roles': ['liaison']},
                                 headers=admin).status_code == 200
    deadline = time.monotonic() + 30
    while client.simulate_get('/sync/records/', headers=_basic(creds)).status_code != 401:
        assert time.monotonic() < deadline, 'a former worker kept syncing'
        time.sleep(0.01)


# -- conflicts ----------------------------------------------------------------------


def _conflicted(client, creds, owner, *, deleted_loser=False):
    """Push a record with two leaves; optionally the losing one a deletion."""
    doc = sealed_contact(owner, ORG)[0]
    base = _rev(doc, 1, 'a' * 32)
    edit = _rev(doc, 2, 'b' * 32, ['a' * 32])
    if deleted_loser:
        other = {'_id': doc['_id'], '_deleted': True, '_rev': '2-' + 'c' * 32,
                 '_revisions': {'start': 2, 'ids': ['c' * 32, 'a' * 32]}}
    else:
        other = _rev(doc, 2, 'c' * 32, ['a' * 32])
    assert _push(client, creds, [base, edit, other]) == []
    return doc['_id']


def test_conflicts_list_only_the_callers_team_and_deleted_losing_leaves(
        client, users, admin):
    team_a = _enroll(client, users, admin, 'w-team-a', team='team-a')
    team_b = _enroll(client, users, admin, 'w-team-b', team='team-b')
    edited = _conflicted(client, team_a, 'w-team-a')
    deletion = _conflicted(client, team_a, 'w-team-a', deleted_loser=True)
    theirs = _conflicted(client, team_b, 'w-team-b', deleted_loser=True)
    seen = {}
    for name, roles, team in (('adv-a', ['advocate'], 'team-a'), ('sup-a', ['supervisor'], 'team-a'),
                              ('adv-b', ['advocate'], 'team-b'), ('adv-none', ['advocate'], None)):
        token = users.token(name, roles, team=team)
        answer = client.simulate_get('/records/conflicts', headers=users.bearer(token))
        assert answer.status_code == 200
        seen[name] = {item['id']: item for item in answer.json['conflicts']}
    assert set(seen['adv-a']) == set(seen['sup-a']) == {edited, deletion}
    assert set(seen['adv-b']) == {theirs}
    assert seen['adv-none'] == {}
    assert theirs not in json.dumps(seen['adv-a']) and edited not in json.dumps(seen['adv-b'])
    # The overruled deletion is listed with its deleted leaf; the live edit wins.
    assert seen['adv-a'][deletion]['rev'] == '2-' + 'b' * 32
    assert seen['adv-a'][deletion]['deleted_conflicts'] == ['2-' + 'c' * 32]
    assert seen['adv-a'][deletion]['conflicts'] == []
    assert seen['adv-a'][edited]['conflicts'] and seen['adv-a'][edited]['deleted_conflicts'] == []
    token = users.token('admin-conf', ['admin'])
    assert client.simulate_get('/records/conflicts',
                               headers=users.bearer(token)).status_code == 403
