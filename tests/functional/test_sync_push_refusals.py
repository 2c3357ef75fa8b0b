"""What the gateway refuses on push, what it keeps of a refusal, and what a
refused batch may cost, against the real pouchdb-server."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from service.audit import event_hash
from tests.functional.test_sync_gateway import ORG, _basic, _enroll, _push, _with_rev
from tests.integration.records import plain_contact, sealed_contact

pytestmark = pytest.mark.functional

#: Planted where a device could put a youth's name; must never be stored or kept.
CANARY = 'Jane Canaryname'
CONTACT_ID = 'contact:00000000-0000-4000-8000-000000000001'
HASH = 'a' * 32


@pytest.fixture
def admin(users):
    return users.bearer(users.token('admin-refusals', ['admin']))


@pytest.fixture
def advocate(users):
    return users.bearer(users.token('advocate-refusals', ['advocate']))


def _dump(services, logical):
    return json.dumps(services.couch.all_docs(services.db(logical), include_docs=True))


def _quarantined(services):
    return [row['doc'] for row in services.couch.all_docs(services.db('quarantine'),
                                                          include_docs=True)]


def _audit_events(services, kind='push_refused'):
    return [row['doc'] for row in services.couch.all_docs(services.db('audit'), include_docs=True)
            if row['doc'].get('kind') == kind]


def _assert_no_canary(*texts):
    for text in texts:
        assert CANARY not in text and CANARY.lower() not in text
        assert base64.b64encode(CANARY.encode()).decode() not in text


def _assert_database_answers(client, creds, advocate):
    """pouchdb-server still serves the feed and the conflicts listing."""
    changes = client.simulate_get('/sync/records/_changes', params={'since': '0'},
                                  headers=_basic(creds))
    assert changes.status_code == 200, changes.text
    assert 'last_seq' in changes.json
    listed = client.simulate_get('/records/conflicts', headers=advocate)
    assert listed.status_code == 200, listed.text


# -- revision metadata --------------------------------------------------------

#: Revision metadata CouchDB would refuse (or that would corrupt a revision
#: tree), each merged into a tombstone of CONTACT_ID pushed with new_edits=false.
MALFORMED_REVISIONS = {
    'issue_crash_body': {'_rev': '1-abc', '_revisions': {'start': 'x', 'ids': 5}},
    'start_string': {'_rev': '1-abc', '_revisions': {'start': '1', 'ids': ['abc']}},
    'start_float': {'_rev': '1-abc', '_revisions': {'start': 1.0, 'ids': ['abc']}},
    'start_bool': {'_rev': '1-abc', '_revisions': {'start': True, 'ids': ['abc']}},
    'start_zero': {'_rev': '0-abc', '_revisions': {'start': 0, 'ids': ['abc']}},
    'start_negative': {'_rev': '1-abc', '_revisions': {'start': -1, 'ids': ['abc']}},
    'start_not_rev_position': {'_rev': '2-abc', '_revisions': {'start': 3, 'ids': ['abc']}},
    'start_missing': {'_rev': '1-abc', '_revisions': {'ids': ['abc']}},
    'ids_number': {'_rev': '1-abc', '_revisions': {'start': 1, 'ids': 5}},
    'ids_empty': {'_rev': '1-abc', '_revisions': {'start': 1, 'ids': []}},
    'ids_missing': {'_rev': '1-abc', '_revisions': {'start': 1}},
    'ids_empty_string': {'_rev': '1-abc', '_revisions': {'start': 1, 'ids': ['']}},
    'ids_not_strings': {'_rev': '2-abc', '_revisions': {'start': 2, 'ids': ['abc', 7]}},
    'ids_object': {'_rev': '1-abc', '_revisions': {'start': 1, 'ids': {'abc': 1}}},
    'ids_first_not_rev_hash': {'_rev': '1-abc', '_revisions': {'start': 1, 'ids': ['abd']}},
    'ids_longer_than_start': {'_rev': '1-abc', '_revisions': {'start': 1, 'ids': ['abc', 'abd']}},
    'ids_bad_charset': {'_rev': '2-abc', '_revisions': {'start': 2, 'ids': ['abc', 'x/y']}},
    'revisions_list': {'_rev': '1-abc', '_revisions': [1, ['abc']]},
    'revisions_string': {'_rev': '1-abc', '_revisions': '1-abc'},
    'revisions_extra_member': {'_rev': '1-abc',
                               '_revisions': {'start': 1, 'ids': ['abc'], 'x': 1}},
    'rev_object': {'_rev': {'start': 1}, '_revisions': {'start': 1, 'ids': ['abc']}},
    'rev_number': {'_rev': 1, '_revisions': {'start': 1, 'ids': ['abc']}},
    'rev_empty': {'_rev': '', '_revisions': {'start': 1, 'ids': ['abc']}},
    'rev_no_position': {'_rev': 'abc', '_revisions': {'start': 1, 'ids': ['abc']}},
    'rev_position_text': {'_rev': 'x-abc', '_revisions': {'start': 1, 'ids': ['abc']}},
    'rev_no_hash': {'_rev': '1-', '_revisions': {'start': 1, 'ids': ['abc']}},
    'rev_leading_zero': {'_rev': '01-abc', '_revisions': {'start': 1, 'ids': ['abc']}},
    'rev_bad_charset': {'_rev': '1-ab c', '_revisions': {'start': 1, 'ids': ['ab c']}},
    'rev_hash_too_long': {'_rev': '1-' + 'a' * 65,
                          '_revisions': {'start': 1, 'ids': ['a' * 65]}},
    'rev_position_huge': {'_rev': '1' * 30 + '-abc',
                          '_revisions': {'start': int('1' * 30), 'ids': ['abc']}},
    'rev_missing_with_revisions': {'_revisions': {'start': 1, 'ids': ['abc']}},
    # As db.remove() sends a tombstone: _rev alone, no _revisions.
    'rev_alone_object': {'_rev': {'start': 1}},
    'rev_alone_no_position': {'_rev': 'abc'},
    'rev_alone_bad_charset': {'_rev': '1-ab c'},
    'rev_alone_position_zero': {'_rev': '0-abc'},
    'rev_missing': {},
    'deleted_not_boolean': {'_rev': '1-abc', '_revisions': {'start': 1, 'ids': ['abc']},
                            '_deleted': 'yes'},
    'unknown_reserved_member': {'_rev': '1-abc', '_revisions': {'start': 1, 'ids': ['abc']},
                                '_rev_tree': []},
}


@pytest.mark.parametrize('shape', sorted(MALFORMED_REVISIONS))
def test_malformed_revision_metadata_is_refused_and_the_database_keeps_answering(
        client, users, admin, advocate, services, shape):
    creds = _enroll(client, users, admin, 'w-revs')
    doc = {'_id': CONTACT_ID, '_deleted': True, **MALFORMED_REVISIONS[shape]}
    result = _push(client, creds, [doc])
    assert result.status_code == 201, result.text
    assert [entry['error'] for entry in result.json] == ['forbidden']
    assert services.couch.all_docs(services.db('records'), keys=[CONTACT_ID])[0].get(
        'error') == 'not_found'
    rule = 'reserved_member' if shape == 'unknown_reserved_member' else 'revision'
    assert [entry['rule'] for entry in _quarantined(services)] == [rule]
    _assert_database_answers(client, creds, advocate)


def test_well_formed_revision_metadata_of_every_shape_lands(client, users, admin, services):
    """The revision rules refuse nothing PouchDB or CouchDB send."""
    creds = _enroll(client, users, admin, 'w-revs-ok')
    first, second = sealed_contact('w-revs-ok', ORG)[0], sealed_contact('w-revs-ok', ORG)[0]
    history = dict(first, _rev='3-' + 'c' * 32,
                   _revisions={'start': 3, 'ids': ['c' * 32, 'b' * 32, 'a' * 32]})
    # A revision history shortened by revs_limit: fewer ids than the position.
    pruned = dict(second, _rev='9-' + 'd' * 32, _revisions={'start': 9, 'ids': ['d' * 32]})
    # A tombstone as PouchDB's db.remove() sends it, with no _revisions.
    removed = {'_id': sealed_contact('w-revs-ok', ORG)[0]['_id'], '_rev': '1-' + 'e' * 32,
               '_deleted': True}
    assert _push(client, creds, [history, pruned, removed]).json == []
    stored = {row['id']: row['value']['rev'] for row in services.couch.all_docs(
        services.db('records'), keys=[first['_id'], second['_id'], removed['_id']])}
    assert stored == {first['_id']: history['_rev'], second['_id']: pruned['_rev'],
                      removed['_id']: removed['_rev']}
    # new_edits=true: a create without _rev and an update naming its parent.
    fresh = sealed_contact('w-revs-ok', ORG)[0]
    created = client.simulate_post('/sync/records/_bulk_docs', headers=_basic(creds),
                                   json={'docs': [fresh]})
    assert created.status_code == 201 and created.json[0].get('ok'), created.text
    updated = client.simulate_post('/sync/records/_bulk_docs', headers=_basic(creds), json={
        'docs': [dict(fresh, _rev=created.json[0]['rev'])]})
    assert updated.json[0].get('ok') and updated.json[0]['rev'].startswith('2-'), updated.text


def test_an_envelope_with_a_rev_object_is_refused_per_document(
        client, users, admin, advocate, services):
    creds = _enroll(client, users, admin, 'w-rk-rev')
    record, envelope = sealed_contact('w-rk-rev', ORG)
    odd = dict(envelope, _rev={'start': 1, 'ids': [HASH]}, _revisions={'start': 1, 'ids': [HASH]})
    result = _push(client, creds, [_with_rev(record), odd])
    assert result.status_code == 201, result.text
    assert [(entry['id'], entry['error']) for entry in result.json] == [
        (envelope['_id'], 'forbidden')]
    assert 'rev' not in result.json[0]
    assert services.couch.get_or_none(services.db('keyvault'), envelope['_id']) is None
    assert [entry['rule'] for entry in _quarantined(services)] == ['revision']
    _assert_database_answers(client, creds, advocate)


# -- non-finite numbers -------------------------------------------------------

@pytest.mark.parametrize('number', ['NaN', 'Infinity', '-Infinity', '1e999', '-1e999',
                                    pytest.param('1' + '0' * 400, id='400_digit_integer')])
def test_non_finite_numbers_in_tombstones_and_checkpoints_are_a_400(
        client, users, admin, services, number):
    creds = _enroll(client, users, admin, 'w-nan')
    headers = {**_basic(creds), 'Content-Type': 'application/json'}
    tombstone = ('{"new_edits":false,"docs":[{"_id":"%s","_rev":"1-%s","_deleted":true,'
                 '"_revisions":{"start":1,"ids":["%s"]},"n":%s}]}'
                 % (CONTACT_ID, HASH, HASH, number))
    checkpoint = '{"_id":"_local/cp","last_seq":%s,"history":[{"x":[%s]}]}' % (number, number)
    for answer in (
            client.simulate_post('/sync/records/_bulk_docs', body=tombstone, headers=headers),
            client.simulate_put('/sync/records/_local/cp', body=checkpoint, headers=headers)):
        assert answer.status_code == 400, answer.text
        assert answer.json['code'] == 'non_finite_number'
        assert answer.json['error'] == 'non_finite_number'
    assert services.couch.all_docs(services.db('records'), keys=[CONTACT_ID])[0].get(
        'error') == 'not_found'


def test_a_checkpoint_passes_on_no_special_member_but_its_rev(client, users, admin, services):
    creds = _enroll(client, users, admin, 'w-cp-meta')
    for rev in ({'start': 1}, 5, ['0-1']):
        odd = client.simulate_put('/sync/records/_local/cp', headers=_basic(creds),
                                  json={'last_seq': 1, '_rev': rev})
        assert odd.status_code == 400 and odd.json['code'] == 'bad_request', odd.text
    data = base64.b64encode(CANARY.encode()).decode()
    put = client.simulate_put('/sync/records/_local/cp', headers=_basic(creds), json={
        'last_seq': 1, '_attachments': {'a.txt': {'content_type': 'text/plain', 'data': data}},
        '_deleted': True, '_revisions': {'start': 'x', 'ids': 5}, '_conflicts': 5})
    assert put.status_code == 201, put.text
    got = client.simulate_get('/sync/records/_local/cp', headers=_basic(creds))
    assert got.status_code == 200 and got.json['last_seq'] == 1
    assert set(got.json) == {'_id', '_rev', 'last_seq'}
    again = client.simulate_put('/sync/records/_local/cp', headers=_basic(creds),
                                json={'last_seq': 2, '_rev': put.json['rev']})
    assert again.status_code == 201, again.text


# -- tombstones ---------------------------------------------------------------

def test_a_tombstone_keeps_only_what_a_tombstone_needs(client, users, admin, services):
    creds = _enroll(client, users, admin, 'w-tomb')
    other_tablet = _enroll(client, users, admin, 'w-tomb')
    record = _with_rev(sealed_contact('w-tomb', ORG)[0])
    assert _push(client, creds, [record]).json == []
    # As db.put({...doc, _deleted: true}) sends it, with plaintext added.
    tombstone = dict(plain_contact('w-tomb', ORG), _id=record['_id'], _deleted=True,
                     notes=CANARY, full_name=CANARY, owner='w-someone-else',
                     _rev='2-' + 'b' * 32, _revisions={'start': 2, 'ids': ['b' * 32, HASH]})
    # And a tombstone of an id never stored here (created and deleted offline).
    offline = {'_id': sealed_contact('w-tomb', ORG)[0]['_id'], '_rev': '2-' + 'c' * 32,
               '_deleted': True, '_revisions': {'start': 2, 'ids': ['c' * 32, HASH]},
               'client_name': CANARY}
    assert _push(client, creds, [tombstone, offline]).json == []
    records = services.db('records')
    for doc_id, rev in ((record['_id'], tombstone['_rev']), (offline['_id'], offline['_rev'])):
        stored = services.couch.get(records, doc_id, rev=rev, revs='true')
        assert set(stored) == {'_id', '_rev', '_revisions', '_deleted', 'owner'}
        assert stored['owner'] == 'w-tomb' and stored['_deleted'] is True
    _assert_no_canary(_dump(services, 'records'))
    # The worker's other tablet pulls the deletions, and no plaintext.
    changes = client.simulate_get('/sync/records/_changes', params={'since': '0'},
                                  headers=_basic(other_tablet))
    assert {row['id'] for row in changes.json['results'] if row.get('deleted')} == {
        record['_id'], offline['_id']}
    pulled = client.simulate_post('/sync/records/_bulk_get', headers=_basic(other_tablet), json={
        'docs': [{'id': tombstone['_id'], 'rev': tombstone['_rev']},
                 {'id': offline['_id'], 'rev': offline['_rev']}]})
    assert [entry['docs'][0]['ok']['_deleted'] for entry in pulled.json['results']] == [True] * 2
    opened = client.simulate_get(f'/sync/records/{record["_id"]}',
                                 params={'open_revs': 'all'}, headers=_basic(other_tablet))
    _assert_no_canary(changes.text, pulled.text, opened.text)


def test_a_tombstone_must_pass_the_id_and_owner_rules(client, users, admin, services):
    alice = _enroll(client, users, admin, 'w-tomb-a')
    bob = _enroll(client, users, admin, 'w-tomb-b')
    bobs = _with_rev(sealed_contact('w-tomb-b', ORG)[0])
    assert _push(client, bob, [bobs]).json == []
    foreign = {'_id': bobs['_id'], '_rev': '2-' + 'b' * 32, '_deleted': True,
               '_revisions': {'start': 2, 'ids': ['b' * 32, HASH]}}
    named = {'_id': f'contact:{CANARY}', '_rev': '1-' + HASH, '_deleted': True}
    untyped = {'_id': f'note:{uuid.uuid4()}', '_rev': '1-' + HASH, '_deleted': True}
    result = _push(client, alice, [foreign, named, untyped])
    assert [entry['error'] for entry in result.json] == ['forbidden'] * 3
    assert sorted(entry['rule'] for entry in _quarantined(services)) == ['id', 'id', 'owner']
    assert services.couch.get(services.db('records'), bobs['_id'])['_rev'] == bobs['_rev']
    _assert_no_canary(_dump(services, 'records'), _dump(services, 'quarantine'),
                      _dump(services, 'audit'))


# -- quarantine by allow-list and valid ids -----------------------------------

#: Every member a quarantined copy may hold besides sealed values.
KEPT_MEMBERS = frozenset({
    '_id', '_rev', '_revisions', '_deleted', 'type', 'schema', 'owner', 'device', 'fle',
    'created_at', 'updated_at', 'doc', 'rkid', 'kek', 'suite', 'enc', 'ct', 'dev', 'at'})

def test_every_refused_document_is_quarantined_by_allow_list(client, users, admin, services):
    creds = _enroll(client, users, admin, 'w-allow')
    _bob = _enroll(client, users, admin, 'w-allow-bob')
    record, envelope = sealed_contact('w-allow', ORG)
    envelope_like = {'_id': 'rk:' + 'ab' * 16, 'type': 'rk', 'client_name': CANARY,
                     'doc': record['_id'], 'rkid': 'ab' * 16}
    foreign = dict(sealed_contact('w-allow-bob', ORG)[0], notes=CANARY, youth_code=CANARY)
    plain = plain_contact('w-allow', ORG, full_name=CANARY, notes=CANARY)
    unknown_type = {'_id': f'note:{uuid.uuid4()}', 'type': 'note', 'owner': 'w-allow',
                    'text': CANARY, 'created_at': '2026-03-02T10:05:00Z'}
    named_member = {'_id': f'contact:{uuid.uuid4()}', 'type': 'contact', CANARY: {
        'nested': CANARY}, 'owner': CANARY, 'schema': CANARY, 'org': CANARY}
    design = {'_id': '_design/x', 'views': {'v': {'map': f'function(){{"{CANARY}"}}'}}}
    docs = [envelope_like, foreign, plain, unknown_type, named_member, design,
            ['not', 'an', 'object', CANARY]]
    result = _push(client, creds, [_with_rev(doc) if isinstance(doc, dict) else doc
                                   for doc in docs])
    assert [entry['error'] for entry in result.json] == ['forbidden'] * len(docs)
    quarantined = _quarantined(services)
    assert len(quarantined) == len(docs)
    _assert_no_canary(_dump(services, 'quarantine'), _dump(services, 'audit'))
    by_id = {entry['doc_id']: entry['doc'] for entry in quarantined}
    # What is known to be safe survives: metadata, types, ids, sealed values.
    assert by_id[envelope_like['_id']] == {
        '_id': envelope_like['_id'], '_rev': '1-' + HASH,
        '_revisions': {'start': 1, 'ids': [HASH]}, 'type': 'rk', 'doc': record['_id'],
        'rkid': 'ab' * 16}
    kept = by_id[foreign['_id']]
    sealed = [name for name, value in foreign.items()
              if isinstance(value, dict) and value.get('fle') == 1]
    assert sealed and all(kept[name] == foreign[name] for name in sealed)
    assert kept['fle'] == foreign['fle'] and kept['type'] == 'contact'
    assert kept['created_at'] == foreign['created_at']
    assert by_id[named_member['_id']] == {
        '_id': named_member['_id'], '_rev': '1-' + HASH, '_revisions': {'start': 1, 'ids': [HASH]},
        'type': 'contact', 'owner': {'redacted': True}, 'schema': {'redacted': True}}
    for entry in quarantined:
        assert set(entry['doc']) <= KEPT_MEMBERS | set(sealed), entry['doc']


def test_refused_documents_record_only_ids_that_passed_the_id_rules(
        client, users, admin, services):
    creds = _enroll(client, users, admin, 'w-ids')
    record = sealed_contact('w-ids', ORG)[0]
    docs = [dict(record, _id=f'contact:{CANARY}'),
            {'_id': f'rk:{CANARY}', 'type': 'rk'},
            {'_id': f'contact:{uuid.uuid4()}{CANARY}', '_deleted': True},
            {'_id': {'name': CANARY}, 'type': 'contact'}]
    result = _push(client, creds, [_with_rev(doc) for doc in docs])
    assert [entry['error'] for entry in result.json] == ['forbidden'] * len(docs)
    quarantined = _quarantined(services)
    assert [entry['doc_id'] for entry in quarantined] == ['invalid-id'] * len(docs)
    assert {entry['doc']['_id'] for entry in quarantined} == {'invalid-id'}
    events = _audit_events(services)
    assert events and all(event['subject'] in (None, 'invalid-id') for event in events)
    assert {item for event in events for item in event['details']['doc_ids']} == {'invalid-id'}
    _assert_no_canary(_dump(services, 'quarantine'), _dump(services, 'audit'))


# -- attachments ----------------------------------------------------------------

def test_documents_with_attachments_are_refused_and_quarantined_without_them(
        client, users, admin, services):
    creds = _enroll(client, users, admin, 'w-att')
    record, envelope = sealed_contact('w-att', ORG)
    data = base64.b64encode(CANARY.encode()).decode()
    attachments = {'scan.txt': {'content_type': 'text/plain', 'data': data}}
    stubbed = {'scan.txt': {'content_type': 'text/plain', 'stub': True, 'length': 15,
                            'digest': 'md5-' + data}}
    tombstone = {'_id': sealed_contact('w-att', ORG)[0]['_id'], '_deleted': True,
                 '_attachments': attachments}
    docs = [_with_rev(dict(envelope, _attachments=attachments)),
            _with_rev(dict(record, _attachments=stubbed)),
            _with_rev(tombstone), _with_rev(dict(envelope, _attachments={}))]
    result = _push(client, creds, docs)
    assert [entry['error'] for entry in result.json] == ['forbidden'] * len(docs)
    assert {entry['rule'] for entry in _quarantined(services)} == {'attachments'}
    assert services.couch.get_or_none(services.db('keyvault'), envelope['_id']) is None
    assert services.couch.all_docs(services.db('records'), keys=[
        record['_id'], tombstone['_id']])[0].get('error') == 'not_found'
    quarantine = _dump(services, 'quarantine')
    assert '_attachments' not in quarantine and 'scan.txt' not in quarantine
    _assert_no_canary(quarantine, _dump(services, 'audit'))
    # The envelope itself is kept whole (never lost), only its attachments dropped.
    kept = next(entry['doc'] for entry in _quarantined(services)
                if entry['doc_id'] == envelope['_id'])
    assert kept['ct'] == envelope['ct'] and kept['enc'] == envelope['enc']


# -- what a refused batch costs -------------------------------------------------

class _Upstream:
    """Counts the requests the app's CouchDB client sends, by method and database."""

    def __init__(self, services) -> None:
        self.sent: list[tuple[str, str]] = []
        self._hooks = services.couch._http.event_hooks
        self._hooks['request'].append(self._count)
        self._services = services

    def _count(self, request) -> None:
        self.sent.append((request.method, request.url.path))

    def to(self, logical: str, method: str | None = None) -> list[tuple[str, str]]:
        prefix = f'/{self._services.db(logical)}'
        return [(verb, path) for verb, path in self.sent
                if (path == prefix or path.startswith(prefix + '/'))
                and (method is None or verb == method)]

    def close(self) -> None:
        self._hooks['request'].remove(self._count)


def test_a_refused_batch_is_quarantined_and_audited_in_bulk(client, users, admin, services):
    creds = _enroll(client, users, admin, 'w-bulk')
    upstream = _Upstream(services)
    try:
        result = client.simulate_post('/sync/records/_bulk_docs', headers=_basic(creds),
                                      json={'docs': [{}] * 500})
    finally:
        upstream.close()
    assert result.status_code == 201, result.text
    assert len(result.json) == 500 and {entry['error'] for entry in result.json} == {'forbidden'}
    quarantined = _quarantined(services)
    assert len(quarantined) == 500 and {entry['doc_id'] for entry in quarantined} == {
        'invalid-id'}
    assert upstream.to('quarantine') == [
        ('POST', f'/{services.db("quarantine")}/_bulk_docs')]
    assert upstream.to('records', 'POST') == [] and upstream.to('records', 'PUT') == []
    audit_writes = [request for request in upstream.to('audit') if request[0] != 'GET']
    assert len(audit_writes) == 1
    # A fixed handful whatever the batch size: the device and its worker (read
    # once, then from the directory cache), the sealed-youth registry, the
    # stored-state lookups, one quarantine write, the audit chain's tail and
    # its one write. 500 refusals must not mean 500 of anything.
    assert len(upstream.sent) <= 10, upstream.sent
    events = _audit_events(services)
    assert len(events) == 1
    details = events[0]['details']
    assert details['count'] == 500 and details['rules'] == {'id': 500}
    assert len(details['doc_ids']) == 500
    assert {entry['batch'] for entry in quarantined} == {details['batch']}
    # The chain still verifies.
    chain = [row['doc'] for row in services.couch.all_docs(services.db('audit'),
                                                           include_docs=True)]
    for before, after in zip(chain, chain[1:]):
        assert after['prev'] == before['hash']
    assert all(event['hash'] == event_hash(event) for event in chain)


def test_one_request_may_not_carry_more_documents_than_the_bound(
        client, users, admin, services, app):
    bound = services.config.max_bulk_docs
    creds = _enroll(client, users, admin, 'w-bound')
    upstream = _Upstream(services)
    try:
        pushed = client.simulate_post('/sync/records/_bulk_docs', headers=_basic(creds),
                                      json={'docs': [{}] * (bound + 1)})
        fetched = client.simulate_post('/sync/records/_bulk_get', headers=_basic(creds),
                                       json={'docs': [{'id': CONTACT_ID}] * (bound + 1)})
    finally:
        upstream.close()
    for answer in (pushed, fetched):
        assert answer.status_code == 413, answer.text
        assert answer.json['code'] == 'too_many_documents'
    assert [sent for sent in upstream.sent if sent[1].endswith(('_bulk_docs', '_bulk_get'))] == []
    assert _quarantined(services) == [] and _audit_events(services) == []
    at_bound = client.simulate_post('/sync/records/_bulk_get', headers=_basic(creds),
                                    json={'docs': [{'id': CONTACT_ID}] * bound})
    assert at_bound.status_code == 200 and len(at_bound.json['results']) == bound
