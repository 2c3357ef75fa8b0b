"""Gateway paths added for throughput and replicator coverage: the owner
check that runs beside validation, ``_all_docs`` by keys, and a streamed
long-poll (in-process; tests/integration covers it under gunicorn)."""

from __future__ import annotations

import json

import pytest

from sync.couch import doc_path
from tests.functional.test_sync_gateway import ORG, _basic, _enroll, _push, _with_rev
from tests.integration.records import plain_contact, publish_test_manifest, sealed_contact

pytestmark = pytest.mark.functional


@pytest.fixture
def admin(users):
    return users.bearer(users.token('admin-sync2', ['admin']))


@pytest.fixture(autouse=True)
def published(services):
    """The manifest the test records are sealed to, so their envelopes are accepted."""
    return publish_test_manifest(services.couch, services.db('config'), ORG)


def _alice_and_a_record_of_bob(client, users, admin, suffix=''):
    """Enroll devices of w-alice and w-bob; bob pushes one record. Returns (alice, bobs)."""
    alice = _enroll(client, users, admin, f'w-alice{suffix}')
    bob = _enroll(client, users, admin, f'w-bob{suffix}')
    bobs = sealed_contact(f'w-bob{suffix}', ORG)[0]
    assert _push(client, bob, [_with_rev(bobs)]).json == []
    return alice, bobs


def test_a_stored_foreign_owner_wins_over_later_rules_and_own_updates_land(
        client, users, admin, services):
    alice, bobs = _alice_and_a_record_of_bob(client, users, admin)
    # Alice claims bob's id: once as her own valid record, once as plaintext
    # (which would fail the schema): both are refused for the owner rule.
    claim = _with_rev(dict(sealed_contact('w-alice', ORG)[0], _id=bobs['_id']), 2, 'b' * 32)
    plain_claim = _with_rev(dict(plain_contact('w-alice', ORG), _id=bobs['_id']), 2, 'c' * 32)
    tombstone = {'_id': bobs['_id'], '_rev': '2-' + 'd' * 32, '_deleted': True,
                 '_revisions': {'start': 2, 'ids': ['d' * 32, 'a' * 32]}}
    mine = sealed_contact('w-alice', ORG)[0]
    result = _push(client, alice, [claim, plain_claim, tombstone, _with_rev(mine)])
    assert result.status_code == 201
    assert [entry['reason'] for entry in result.json] == [
        'The stored document belongs to another worker.'] * 3
    assert services.couch.get(services.db('records'), bobs['_id'])['owner'] == 'w-bob'
    # Her own record updates normally.
    update = _with_rev(dict(mine, status='closed') if 'status' in mine else mine, 2, 'e' * 32)
    update['_revisions'] = {'start': 2, 'ids': ['e' * 32, 'a' * 32]}
    assert _push(client, alice, [update]).json == []
    quarantine = services.couch.all_docs(services.db('quarantine'), include_docs=True)
    assert sorted(row['doc']['rule'] for row in quarantine) == ['owner'] * 3


def test_all_docs_by_keys_answers_only_visible_documents(client, users, admin, services):
    alice = _enroll(client, users, admin, 'w-alice')
    mine, envelope = sealed_contact('w-alice', ORG)
    theirs = sealed_contact('w-bob', ORG)[0]
    services.couch.bulk_docs(services.db('records'), [mine, theirs])
    services.couch.bulk_docs(services.db('keyvault'), [envelope])
    keys = [mine['_id'], theirs['_id'], envelope['_id'], 'contact:missing']
    answer = client.simulate_post('/sync/records/_all_docs', params={'include_docs': 'true'},
                                  json={'keys': keys}, headers=_basic(alice))
    assert answer.status_code == 200, answer.text
    rows = answer.json['rows']
    assert [row['key'] for row in rows] == keys
    assert rows[0]['doc']['_id'] == mine['_id'] and rows[0]['value']['rev']
    assert rows[1:] == [{'key': key, 'error': 'not_found'} for key in keys[1:]]
    assert theirs['owner'] not in answer.text.replace('w-alice', '')
    bad = client.simulate_post('/sync/records/_all_docs', json={'keys': 'x'},
                               headers=_basic(alice))
    assert bad.status_code == 400


def test_longpoll_with_heartbeat_streams_newlines_then_the_json(client, users, admin, app):
    alice = _enroll(client, users, admin, 'w-alice')
    gateway = next(resource for path, resource in app.fieldvault_routes
                   if path == '/sync/{db}/_changes')._gateway
    gateway.pull._longpoll_max = 1
    since = client.simulate_get('/sync/records/', headers=_basic(alice)).json['update_seq']
    result = client.simulate_get('/sync/records/_changes', headers=_basic(alice), params={
        'feed': 'longpoll', 'heartbeat': '200', 'since': str(since), 'style': 'all_docs'})
    assert result.status_code == 200
    assert result.text.startswith('\n')
    assert json.loads(result.text) == {'results': [], 'last_seq': since}


def test_a_batch_larger_than_one_chunk_keeps_every_rule_and_the_order_of_answers(
        client, users, admin, services):
    """Record-heavy batches are checked and written in halves; the answer must not change."""
    from sync import push

    alice, bobs = _alice_and_a_record_of_bob(client, users, admin, '-chunks')
    size = push._SPLIT_AT_RECORDS * 2 + 7  # records; with envelopes, twice as many docs
    batch, envelopes = [], []
    for _index in range(size):
        doc, envelope = sealed_contact('w-alice-chunks', ORG)
        batch.append(_with_rev(doc))
        envelopes.append(_with_rev(envelope))
    # Records and envelopes alternate (record i at position 2i), so the first
    # half (the first `size` of the 2 * size documents) holds records
    # 0 .. half - 1: a refusal early in the first half, one on each side of
    # the boundary, and a foreign owner in the second half.
    half = -(-size // 2)
    refused_at = {3: 'plain', half - 1: 'plain', half: 'plain', size - 2: 'foreign'}
    for index, kind in refused_at.items():
        if kind == 'plain':
            batch[index] = _with_rev(plain_contact('w-alice-chunks', ORG))
        else:
            batch[index] = _with_rev(dict(batch[index], _id=bobs['_id']), 2, 'f' * 32)
    mixed = [item for pair in zip(batch, envelopes) for item in pair]
    result = _push(client, alice, mixed)
    assert result.status_code == 201
    assert [entry['id'] for entry in result.json] == [batch[index]['_id']
                                                       for index in sorted(refused_at)]
    assert [entry['reason'].split(':')[0] for entry in result.json] == [
        'The document does not match its schema'] * 3 + [
        'The stored document belongs to another worker.']
    stored = {row['id'] for row in services.couch.all_docs(services.db('records'))}
    accepted = {doc['_id'] for index, doc in enumerate(batch) if index not in refused_at}
    assert accepted <= stored
    assert not {batch[index]['_id'] for index, kind in refused_at.items()
                if kind == 'plain'} & stored
    assert services.couch.get(services.db('records'), bobs['_id'])['owner'] == 'w-bob-chunks'
    vault = {row['id'] for row in services.couch.all_docs(services.db('keyvault'))}
    assert {envelope['_id'] for envelope in envelopes} <= vault
    quarantine = services.couch.all_docs(services.db('quarantine'), include_docs=True)
    assert sorted(row['doc']['rule'] for row in quarantine) == ['owner'] + ['schema'] * 3


def _bobs_envelope(client, users, admin, suffix):
    """Enroll w-alice and w-bob devices; bob pushes a record and its envelope."""
    alice = _enroll(client, users, admin, f'w-alice{suffix}')
    bob = _enroll(client, users, admin, f'w-bob{suffix}')
    record, envelope = (_with_rev(doc) for doc in sealed_contact(f'w-bob{suffix}', ORG))
    assert _push(client, bob, [record, envelope]).json == []
    return alice, bob, envelope


def _revisions(services, doc_id):
    """Return ``(winning rev, conflicts)`` of a keyvault document."""
    doc = services.couch.get(services.db('keyvault'), doc_id, conflicts='true')
    return doc['_rev'], doc.get('_conflicts', [])


def test_a_device_cannot_add_a_revision_to_an_envelope_it_did_not_create(
        client, users, admin, services):
    alice, _bob, envelope = _bobs_envelope(client, users, admin, '-rk')
    # A new branch (1-b...) and a child revision (2-c...) of bob's envelope,
    # each well formed: both would change what advocates read.
    other_key = sealed_contact('w-alice-rk', ORG)[1]
    branch = _with_rev(dict(envelope, enc=other_key['enc'], ct=other_key['ct']), 1, 'b' * 32)
    child = dict(envelope, _rev='2-' + 'c' * 32,
                 _revisions={'start': 2, 'ids': ['c' * 32, 'a' * 32]})
    result = _push(client, alice, [branch, child])
    assert result.status_code == 201
    assert [(entry['id'], entry['error']) for entry in result.json] == [
        (envelope['_id'], 'forbidden')] * 2
    assert {entry['reason'] for entry in result.json} == {
        'An envelope with this id is already stored; devices may only create envelopes.'}
    assert _revisions(services, envelope['_id']) == (envelope['_rev'], [])
    quarantine = services.couch.all_docs(services.db('quarantine'), include_docs=True)
    assert sorted(row['doc']['rule'] for row in quarantine) == ['envelope_exists'] * 2
    # Without a revision (new_edits=true) it is refused the same way.
    created = client.simulate_post('/sync/records/_bulk_docs', headers=_basic(alice), json={
        'docs': [{key: value for key, value in envelope.items()
                  if key not in ('_rev', '_revisions')}]})
    assert created.status_code == 201
    assert created.json[0]['error'] == 'forbidden'
    assert _revisions(services, envelope['_id']) == (envelope['_rev'], [])


def test_a_retried_or_already_rewrapped_envelope_push_is_accepted(
        client, users, admin, services):
    _alice, bob, envelope = _bobs_envelope(client, users, admin, '-retry')
    # The same revision again: a retry after a lost answer writes nothing.
    assert _push(client, bob, [envelope]).json == []
    # Rotation rewrapped it on the server (revision 2); bob's old revision is
    # in its history, so pushing it again is accepted and changes nothing.
    vault = services.db('keyvault')
    rewrapped = dict(services.couch.get(vault, envelope['_id']), kek='k2')
    services.couch.put(vault, rewrapped)
    winner = _revisions(services, envelope['_id'])
    assert winner[0].startswith('2-')
    assert _push(client, bob, [envelope]).json == []
    assert _revisions(services, envelope['_id']) == winner


def test_a_shredded_envelope_cannot_be_pushed_back(client, users, admin, services):
    _alice, bob, envelope = _bobs_envelope(client, users, admin, '-shred')
    vault = services.db('keyvault')
    services.couch.request('DELETE', doc_path(vault, envelope['_id']),
                           params={'rev': envelope['_rev']})
    assert services.couch.get_or_none(vault, envelope['_id']) is None
    # A new branch would be live and win over the tombstone: refused.
    revived = _with_rev(envelope, 1, 'e' * 32)
    result = _push(client, bob, [revived])
    assert [entry['error'] for entry in result.json] == ['forbidden']
    assert services.couch.get_or_none(vault, envelope['_id']) is None
    _assert_quarantined_without_key_material(services, envelope)
    # The original revision is in the tombstone's history: a harmless no-op.
    assert _push(client, bob, [envelope]).json == []
    assert services.couch.get_or_none(vault, envelope['_id']) is None


def test_two_revisions_of_one_new_envelope_in_a_batch_store_only_the_first(
        client, users, admin, services):
    alice = _enroll(client, users, admin, 'w-alice-twice')
    record, envelope = (_with_rev(doc) for doc in sealed_contact('w-alice-twice', ORG))
    second = _with_rev(dict(envelope, kek='k-other'), 1, 'f' * 32)
    again = dict(envelope)  # the first revision repeated is harmless
    result = _push(client, alice, [record, envelope, second, again])
    assert [(entry['id'], entry['error']) for entry in result.json] == [
        (envelope['_id'], 'forbidden')]
    assert _revisions(services, envelope['_id']) == (envelope['_rev'], [])


def _assert_quarantined_without_key_material(services, envelope):
    """The refusal of a deleted envelope is quarantined, but not its sealed key."""
    entries = [row['doc'] for row in services.couch.all_docs(
        services.db('quarantine'), include_docs=True) if row['doc'].get('doc_id') == envelope['_id']]
    assert [entry['rule'] for entry in entries] == ['envelope_deleted']
    kept = entries[0]['doc']
    assert kept['_id'] == envelope['_id']
    for name in ('enc', 'ct'):
        if name in envelope:
            assert kept[name] == {'redacted': True}
    assert envelope['enc'] not in json.dumps(entries)


def test_an_envelope_arriving_after_its_record_was_sealed_is_refused(
        client, users, admin, services):
    """The record reached the server, its envelope did not; then the youth was sealed."""
    users.create('w-late', ['worker'], team='team-late')
    device = _enroll(client, users, admin, 'w-late')
    record, envelope = (_with_rev(doc) for doc in sealed_contact('w-late', ORG))
    assert _push(client, device, [record]).json == []
    proposer = users.bearer(users.token('sup-late', ['supervisor'], team='team-late'))
    approver = users.bearer(users.token('adm-late', ['admin'], team='team-late'))
    proposed = client.simulate_post('/sealings', headers=proposer, json={
        'reason': 'erasure_request', 'youth_code': record['youth_code']})
    assert proposed.status_code == 201, proposed.text
    approved = client.simulate_post(f'/sealings/{proposed.json["id"]}/approve', json={},
                                    headers=approver)
    assert approved.status_code == 200, approved.text
    vault = services.db('keyvault')
    assert services.couch.all_docs(vault, keys=[envelope['_id']])[0]['value']['deleted']
    result = _push(client, device, [envelope])
    assert [(entry['id'], entry['error']) for entry in result.json] == [
        (envelope['_id'], 'forbidden')]
    assert result.json[0]['reason'].startswith('This record key was shredded')
    assert services.couch.get_or_none(vault, envelope['_id']) is None
    _assert_quarantined_without_key_material(services, envelope)
