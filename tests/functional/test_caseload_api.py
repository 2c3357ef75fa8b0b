"""The caseload API: team-scoped record metadata, revisions, resolution, the
record audit trail and the quarantine queue, against the real database."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests import factories

pytestmark = pytest.mark.functional

CANARY = 'Zanzibar-Canary-7731'


@pytest.fixture
def staff(users):
    """Tokens of two teams: ``{'adv-a': token, ...}``."""
    for name, team in (('wrk-a', 'team-a'), ('wrk-b', 'team-b')):
        users.create(name, ['worker'], team=team)
    return {name: users.token(name, [role], team=team) for name, role, team in (
        ('adv-a', 'advocate', 'team-a'), ('sup-a', 'supervisor', 'team-a'),
        ('adv-b', 'advocate', 'team-b'), ('sup-b', 'supervisor', 'team-b'))}


def _store(services, document):
    services.couch.put(services.db('records'), document)
    return document


def _contact(owner, **overrides):
    return factories.fake_sealed(factories.make_contact(owner=owner, notes=CANARY, **overrides))


def _screening(owner, **overrides):
    return factories.fake_sealed(factories.make_screening(owner=owner, **overrides))


@pytest.fixture
def records(services, staff):
    """Four team-a records and two team-b records."""
    return {
        'a_contact': _store(services, _contact('wrk-a', youth_code='quiet-river-07',
                                               contact_at='2026-03-02T10:05:00Z')),
        'a_contact_old': _store(services, _contact('wrk-a', youth_code='brave-stone-11',
                                                   contact_at='2026-01-15T09:00:00Z')),
        'a_positive': _store(services, _screening('wrk-a', youth_code='quiet-river-07')),
        'a_negative': _store(services, _screening(
            'wrk-a', youth_code='calm-lake-02',
            responses=[{'item_code': f'QYIT_{n}', 'value': 'no', 'timeframe': 'ever'}
                       for n in range(1, 5)],
            result={'positive_screen': False}, response_notes=None)),
        'b_contact': _store(services, _contact('wrk-b', youth_code='quiet-river-07')),
        'b_screening': _store(services, _screening('wrk-b', youth_code='quiet-river-07')),
    }


def _list(client, users, token, query=''):
    result = client.simulate_get('/caseload', query_string=query, headers=users.bearer(token))
    assert result.status_code == 200, result.text
    return result.json


def _ids(answer):
    return {record['id'] for record in answer['records']}


def test_caseload_lists_only_the_callers_team(client, users, staff, records):
    team_a = {doc['_id'] for key, doc in records.items() if key.startswith('a_')}
    team_b = {doc['_id'] for key, doc in records.items() if key.startswith('b_')}
    for name in ('adv-a', 'sup-a'):
        answer = _list(client, users, staff[name])
        assert _ids(answer) == team_a
        assert answer['total'] == 4
    for name in ('adv-b', 'sup-b'):
        assert _ids(_list(client, users, staff[name])) == team_b
    # The same youth code is on both teams: only the caller's own come back.
    assert _ids(_list(client, users, staff['adv-a'], 'youth_code=quiet-river-07')) == {
        records['a_contact']['_id'], records['a_positive']['_id']}


def test_caseload_of_a_caller_without_a_team_is_empty(client, users, records):
    token = users.token('adv-none', ['advocate'], team=None)
    assert _list(client, users, token) == {'records': [], 'total': 0, 'next': None}


def test_caseload_filters(client, users, staff, records):
    token = staff['adv-a']
    assert _ids(_list(client, users, token, 'type=screening')) == {
        records['a_positive']['_id'], records['a_negative']['_id']}
    assert _ids(_list(client, users, token, 'result=positive')) == {records['a_positive']['_id']}
    assert _ids(_list(client, users, token, 'result=negative')) == {records['a_negative']['_id']}
    assert _ids(_list(client, users, token, 'from=2026-01-01&to=2026-01-31')) == {
        records['a_contact_old']['_id']}
    assert _ids(_list(client, users, token, 'worker=wrk-b')) == set()
    assert len(_list(client, users, token, 'worker=wrk-a')['records']) == 4
    assert _list(client, users, token, 'conflicts=open')['records'] == []


def test_caseload_pages_newest_first(client, users, staff, records):
    first = _list(client, users, staff['adv-a'], 'limit=3')
    assert len(first['records']) == 3 and first['next'] == 3
    second = _list(client, users, staff['adv-a'], 'limit=3&offset=3')
    assert len(second['records']) == 1 and second['next'] is None
    dates = [record['date'] for record in first['records'] + second['records']]
    assert dates == sorted(dates, reverse=True)
    assert second['records'][0]['id'] == records['a_contact_old']['_id']


def test_caseload_carries_metadata_only(client, users, staff, records):
    answer = _list(client, users, staff['adv-a'])
    text = json.dumps(answer)
    assert CANARY not in text
    assert '"ct"' not in text and '"fle"' not in text and '"precise_location"' not in text
    record = next(item for item in answer['records'] if item['id'] == records['a_positive']['_id'])
    assert record['result'] == {'positive_screen': True, 'concern_level': None}
    assert record['instrument'] == 'QYIT' and record['youth_code'] == 'quiet-river-07'


@pytest.mark.parametrize('query, field', [
    ('youth_code=Maria%20Lopez', 'youth_code'), ('from=yesterday', 'from'),
    ('type=letter', 'type'), ('result=maybe', 'result'), ('limit=0', 'limit'),
    ('limit=201', 'limit'), ('name=Maria', 'name'), ('conflicts=all', 'conflicts'),
])
def test_caseload_refuses_bad_queries_without_echo(client, users, staff, query, field):
    result = client.simulate_get('/caseload', query_string=query,
                                 headers=users.bearer(staff['adv-a']))
    assert result.status_code == 422
    assert result.json['code'] == 'validation_failed'
    # A parameter the API does not declare is counted, never named back.
    assert list(result.json['fields']) == [field if field != 'name' else '_unknown']
    assert 'Maria' not in result.text and 'yesterday' not in result.text


def _conflict(services, owner):
    """Store a record with two open revisions, as two tablets make one."""
    plain = factories.make_contact(owner=owner)
    doc = factories.fake_sealed(plain)
    left = dict(doc, _rev='2-' + 'b' * 32, _revisions={'start': 2, 'ids': ['b' * 32, 'a' * 32]},
                engaged=False)
    right = dict(doc, _rev='2-' + 'c' * 32, _revisions={'start': 2, 'ids': ['c' * 32, 'a' * 32]},
                 contact_type='drop_in')
    services.couch.bulk_docs(services.db('records'), [left, right], new_edits=False)
    return doc['_id']


def test_conflicts_listed_released_and_resolved_within_the_team(client, users, staff, services):
    record_id = _conflict(services, 'wrk-a')
    foreign_id = _conflict(services, 'wrk-b')
    listed = _list(client, users, staff['adv-a'], 'conflicts=open')
    assert [(item['id'], item['conflicts']) for item in listed['records']] == [(record_id, 1)]
    released = client.simulate_post(f'/caseload/{record_id}/revisions',
                                    json={'purpose': 'case_management'},
                                    headers=users.bearer(staff['adv-a']))
    assert released.status_code == 200
    revisions = released.json['revisions']
    assert {doc['_rev'] for doc in revisions} == {'2-' + 'b' * 32, '2-' + 'c' * 32}
    loser = revisions[1]
    for path, body in ((f'/caseload/{foreign_id}/revisions', {'purpose': 'case_management'}),
                       (f'/caseload/{foreign_id}/resolution', {'keep': '2-' + 'b' * 32})):
        refused = client.simulate_post(path, json=body, headers=users.bearer(staff['adv-a']))
        assert refused.status_code == 404, path
    bad = client.simulate_post(f'/caseload/{record_id}/resolution', json={'keep': '9-' + 'f' * 32},
                               headers=users.bearer(staff['adv-a']))
    assert bad.status_code == 422
    kept = client.simulate_post(f'/caseload/{record_id}/resolution', json={'keep': loser['_rev']},
                                headers=users.bearer(staff['adv-a']))
    assert kept.status_code == 200, kept.text
    stored = services.couch.get(services.db('records'), record_id, conflicts='true')
    assert '_conflicts' not in stored
    assert stored['contact_type'] == loser['contact_type']
    assert stored['engaged'] == loser['engaged']
    again = client.simulate_post(f'/caseload/{record_id}/resolution', json={'keep': stored['_rev']},
                                 headers=users.bearer(staff['adv-a']))
    assert again.status_code == 409 and again.json['code'] == 'no_conflict'
    # Team b's conflict is untouched.
    assert services.couch.get(services.db('records'), foreign_id, conflicts='true')['_conflicts']
    trail = client.simulate_get(f'/caseload/{record_id}/audit',
                                headers=users.bearer(staff['sup-a']))
    assert trail.status_code == 200
    kinds = [event['kind'] for event in trail.json['events']]
    assert kinds == ['record_released', 'conflict_resolved']
    assert trail.json['events'][0]['details']['purpose'] == 'case_management'


def test_record_audit_trail_is_the_teams_supervisors(client, users, staff, records):
    record_id = records['b_contact']['_id']
    for name in ('sup-a', 'adv-a'):
        result = client.simulate_get(f'/caseload/{record_id}/audit',
                                     headers=users.bearer(staff[name]))
        assert result.status_code == (404 if name == 'sup-a' else 403)
    assert client.simulate_get(f'/caseload/{record_id}/audit',
                               headers=users.bearer(staff['sup-b'])).status_code == 200


def test_correction_of_a_foreign_or_stale_record_is_refused(client, users, staff, records):
    foreign = records['b_contact']
    result = client.simulate_put(f'/caseload/{foreign["_id"]}', headers=users.bearer(
        staff['adv-a']), json={'document': foreign, 'envelopes': []})
    assert result.status_code == 404
    own = dict(records['a_contact'])
    stale = client.simulate_put(f'/caseload/{own["_id"]}', headers=users.bearer(staff['adv-a']),
                                json={'document': dict(own, _rev='1-' + 'f' * 32),
                                      'envelopes': []})
    assert stale.status_code == 409 and stale.json['code'] == 'stale_revision'


def test_correction_keeps_the_envelope_metadata(client, users, staff, services, records):
    own = services.couch.get(services.db('records'), records['a_contact']['_id'])
    for name, value in (('owner', 'wrk-b'), ('type', 'identity'), ('org', 'org-other'),
                        ('created_at', '2020-01-01T00:00:00Z')):
        result = client.simulate_put(f'/caseload/{own["_id"]}', headers=users.bearer(
            staff['adv-a']), json={'document': dict(own, **{name: value}), 'envelopes': []})
        assert result.status_code == 422, name
        assert result.json['code'] == 'immutable_field'
        assert name in result.json['fields']


def _quarantined(services, worker, doc, *, rule='unknown_schema', redacted=0):
    entry = {'_id': f'q:{uuid.uuid4().hex}', 'type': 'quarantine', 'device': f'dev-{worker}',
             'worker': worker, 'db': 'records', 'at': round(time.time(), 3), 'batch': 'b1',
             'rule': rule, 'reason': 'Refused.', 'fields': {}, 'doc_id': doc['_id'],
             'doc': doc, 'redacted': redacted}
    services.couch.put(services.db('quarantine'), entry)
    return entry['_id']


def test_quarantine_is_listed_by_team_released_and_discarded(client, users, staff, services):
    own_doc = _contact('wrk-a')
    own = _quarantined(services, 'wrk-a', own_doc)
    partial = _quarantined(services, 'wrk-a', _contact('wrk-a'), rule='invalid_document',
                           redacted=2)
    foreign = _quarantined(services, 'wrk-b', _contact('wrk-b'))
    listed = client.simulate_get('/quarantine', headers=users.bearer(staff['sup-a']))
    assert listed.status_code == 200
    entries = {entry['id']: entry for entry in listed.json['entries']}
    assert set(entries) == {own, partial}
    assert entries[own]['releasable'] and not entries[partial]['releasable']
    assert CANARY not in listed.text and '"ct"' not in listed.text
    only_rule = client.simulate_get('/quarantine', query_string='rule=invalid_document',
                                    headers=users.bearer(staff['sup-a']))
    assert [entry['id'] for entry in only_rule.json['entries']] == [partial]
    sup_a = users.bearer(staff['sup-a'])
    assert client.simulate_post(f'/quarantine/{foreign}/release', headers=sup_a).status_code == 404
    assert client.simulate_delete(f'/quarantine/{foreign}', headers=sup_a).status_code == 404
    assert client.simulate_post(f'/quarantine/{partial}/release',
                                headers=sup_a).json['code'] == 'not_releasable'
    released = client.simulate_post(f'/quarantine/{own}/release', headers=sup_a)
    assert released.status_code == 200, released.text
    assert services.couch.get(services.db('records'), own_doc['_id'])['owner'] == 'wrk-a'
    assert services.couch.get_or_none(services.db('quarantine'), own) is None
    assert client.simulate_delete(f'/quarantine/{partial}', headers=sup_a).status_code == 200
    assert services.couch.get_or_none(services.db('quarantine'), partial) is None
    assert services.couch.get_or_none(services.db('quarantine'), foreign) is not None
    events = [doc for doc in services.couch.iter_prefix(services.db('audit'), 'event:')
              if doc['kind'] in ('quarantine_released', 'quarantine_discarded')]
    assert [(event['kind'], event['team']) for event in events] == [
        ('quarantine_released', 'team-a'), ('quarantine_discarded', 'team-a')]
    assert CANARY not in json.dumps(events)


def test_quarantine_release_applies_the_sealing_rule(client, users, staff, services):
    from sync.sealed import SealedRegistry
    doc = _contact('wrk-a', youth_code='sealed-youth-01')
    registry = SealedRegistry(services.couch, services.db('directory'), services.device_watch)
    registry.add(youth_codes=['sealed-youth-01'])
    entry = _quarantined(services, 'wrk-a', doc)
    result = client.simulate_post(f'/quarantine/{entry}/release',
                                  headers=users.bearer(staff['sup-a']))
    assert result.status_code == 409 and result.json['code'] == 'youth_sealed'
    assert services.couch.get_or_none(services.db('records'), doc['_id']) is None


@pytest.mark.parametrize('route', [
    ('POST', '/records/{id}/open', {'purpose': 'case_management'}),
    ('POST', '/records/{id}/open-failures', {'code': 'no_grant'}),
    ('POST', '/caseload/{id}/revisions', {'purpose': 'case_management'}),
    ('POST', '/caseload/{id}/resolution', {'keep': '1-' + 'a' * 32}),
    ('GET', '/caseload/{id}/audit', None),
    ('PUT', '/caseload/{id}', {'document': {}, 'envelopes': []}),
])
@pytest.mark.parametrize('record_id', ['_all_docs', '_design%2Fprogram', '_changes',
                                       'contact:not-a-uuid'])
def test_a_record_route_answers_a_database_path_as_a_missing_record(
        client, users, staff, records, route, record_id):
    method, template, body = route
    headers = users.bearer(staff['sup-a'])
    answer = client.simulate_request(method, template.format(id=record_id), headers=headers,
                                     json=body)
    assert answer.status_code == 404, (template, record_id, answer.text)
