"""A sealed youth stays sealed: what arrives for them later, by sync or desk
intake, is refused with a named rule and quarantined without key material."""

from __future__ import annotations

import json
import random
import uuid

import pytest
from click.testing import CliRunner

from fieldvault import cli
from sync.couch import doc_path
from sync.sealed import REGISTRY_ID, YOUTH_SEALED, SealedRegistry
from tests import factories
from tests.functional.test_lifecycle_endpoints import _published
from tests.functional.test_sync_gateway import ORG, _enroll, _push, _with_rev
from tests.integration.records import sealed_contact

pytestmark = pytest.mark.functional

WORKER = 'w-sealed'


def _youth_code(other: str = '') -> str:
    words = ('quiet', 'river', 'amber', 'stone', 'cedar', 'lark', 'maple', 'tide')
    while True:
        code = f'{random.choice(words)}-{random.choice(words)}-{random.randrange(100):02d}'
        if code != other:
            return code


def _strip(doc):
    return {key: value for key, value in doc.items() if key not in ('_rev', '_revisions')}


@pytest.fixture
def world(client, users, services):
    """A published manifest, an enrolled tablet of WORKER, and the two people of a sealing."""
    users.create(WORKER, ['worker'], team='team-s')
    h = {'admin': users.bearer(users.token('admin-s', ['admin'], team='team-s')),
         'sup': users.bearer(users.token('sup-s', ['supervisor'], team='team-s')),
         'worker': users.bearer(users.token(WORKER))}
    _signer, new, _old, body = _published(client, h, services)
    device = _enroll(client, users, h['admin'], WORKER)
    return {'h': h, 'body': body, 'device': device, 'org_key': new}


def _screening(world, youth_code, **overrides):
    plain = factories.make_record('screening', owner=WORKER, org=ORG, youth_code=youth_code,
                                  **overrides)
    return sealed_contact(WORKER, ORG, manifest_body=world['body'], plain=plain)


def _seal(client, world, youth_code):
    proposed = client.simulate_post('/sealings', headers=world['h']['sup'], json={
        'reason': 'erasure_request', 'youth_code': youth_code})
    assert proposed.status_code == 201, proposed.text
    approved = client.simulate_post(f'/sealings/{proposed.json["id"]}/approve', json={},
                                    headers=world['h']['admin'])
    assert approved.status_code == 200, approved.text


def _quarantined(services, doc_id):
    return [row['doc'] for row in services.couch.all_docs(
        services.db('quarantine'), include_docs=True) if row['doc'].get('doc_id') == doc_id]


def _assert_kept_without_key_material(services, envelope, rule):
    entries = _quarantined(services, envelope['_id'])
    assert entries and {entry['rule'] for entry in entries} == {rule}
    dumped = json.dumps(entries)
    assert envelope['enc'] not in dumped and envelope['ct'] not in dumped
    assert entries[0]['doc']['enc'] == {'redacted': True}


def _sealed_youth_with_record_on_the_tablet(client, world):
    """The tablet pushes one record R of a youth (and one of another youth); the youth is sealed."""
    code = _youth_code()
    record, envelope = (_with_rev(doc) for doc in _screening(world, code))
    other, other_envelope = (_with_rev(doc) for doc in _screening(world, _youth_code(code)))
    assert _push(client, world['device'], [record, envelope, other, other_envelope]).json == []
    _seal(client, world, code)
    return code, record, envelope, other


def test_desk_intake_cannot_recreate_a_sealed_record_after_its_tombstone(client, world, services):
    code, record, envelope, other = _sealed_youth_with_record_on_the_tablet(client, world)
    # The owner's tablet deletes R (allowed: its own record) ...
    tombstone = {'_id': record['_id'], '_rev': '2-' + 'b' * 32, '_deleted': True,
                 '_revisions': {'start': 2, 'ids': ['b' * 32, 'a' * 32]}}
    assert _push(client, world['device'], [tombstone]).json == []
    assert services.couch.get_or_none(services.db('records'), record['_id']) is None
    # ... then the worker re-creates R at the desk with the envelope the tablet kept.
    answer = client.simulate_post('/records', headers=world['h']['worker'], json={
        'document': _strip(record), 'envelopes': [_strip(envelope)]})
    assert answer.status_code == 403, answer.text
    assert answer.json['code'] == 'youth_sealed'
    assert services.couch.get_or_none(services.db('records'), record['_id']) is None
    assert services.couch.get_or_none(services.db('keyvault'), envelope['_id']) is None
    _assert_kept_without_key_material(services, envelope, 'youth_sealed')
    assert [entry['rule'] for entry in _quarantined(services, record['_id'])] == ['youth_sealed']
    # A fresh record key for R (the desk CLI seals again) is refused the same way.
    again, fresh = _screening(world, code, _id=record['_id'])
    answer = client.simulate_post('/records', headers=world['h']['worker'], json={
        'document': again, 'envelopes': [fresh]})
    assert answer.status_code == 403 and answer.json['code'] == 'youth_sealed'
    assert services.couch.get_or_none(services.db('keyvault'), fresh['_id']) is None
    # Another youth's records are still taken.
    taken, taken_envelope = _screening(world, _youth_code(code))
    answer = client.simulate_post('/records', headers=world['h']['worker'], json={
        'document': taken, 'envelopes': [taken_envelope]})
    assert answer.status_code == 201, answer.text


def test_desk_intake_refuses_an_envelope_the_vault_holds_deleted(client, world, services):
    """A key a sealing shredded stays shredded, even for a record the registry never saw."""
    record, envelope = _screening(world, _youth_code())
    vault = services.db('keyvault')
    rev = services.couch.put(vault, envelope)
    services.couch.request('DELETE', doc_path(vault, envelope['_id']), params={'rev': rev})
    answer = client.simulate_post('/records', headers=world['h']['worker'], json={
        'document': record, 'envelopes': [envelope]})
    assert answer.status_code == 403 and answer.json['code'] == 'envelope_deleted'
    assert services.couch.get_or_none(vault, envelope['_id']) is None
    assert services.couch.get_or_none(services.db('records'), record['_id']) is None
    _assert_kept_without_key_material(services, envelope, 'envelope_deleted')


def test_an_edit_synced_after_the_sealing_is_refused(client, world, services):
    code, record, envelope, _other = _sealed_youth_with_record_on_the_tablet(client, world)
    # The tablet edited R offline: a resealed field under a new record key.
    edited, new_envelope = _screening(world, code, _id=record['_id'])
    edited = dict(edited, _rev='2-' + 'c' * 32, _revisions={'start': 2, 'ids': ['c' * 32, 'a' * 32]})
    new_envelope = _with_rev(new_envelope)
    result = _push(client, world['device'], [new_envelope, edited])
    assert [(entry['id'], entry['error'], entry['reason']) for entry in result.json] == [
        (new_envelope['_id'], 'forbidden', YOUTH_SEALED.reason),
        (record['_id'], 'forbidden', YOUTH_SEALED.reason)]
    stored = services.couch.get(services.db('records'), record['_id'])
    assert stored['_rev'] == record['_rev']
    assert services.couch.get_or_none(services.db('keyvault'), new_envelope['_id']) is None
    _assert_kept_without_key_material(services, new_envelope, 'youth_sealed')
    # An edit that changes the linking key is still R: refused by its id.
    relinked, _envelope = _screening(world, _youth_code(code), _id=record['_id'])
    relinked = dict(relinked, _rev=edited['_rev'], _revisions=edited['_revisions'])
    assert [entry.get('reason') for entry in _push(client, world['device'], [relinked]).json] \
        == [YOUTH_SEALED.reason]
    opened = client.simulate_post(f'/records/{record["_id"]}/open',
                                  json={'purpose': 'case_management'},
                                  headers=world['h']['sup'])
    assert opened.status_code == 410


def test_a_reissued_tablet_cannot_add_screenings_for_a_sealed_youth(client, world, users,
                                                                   services):
    code, *_ = _sealed_youth_with_record_on_the_tablet(client, world)
    reissued = _enroll(client, users, world['h']['admin'], WORKER)
    pushed = [_with_rev(doc) for _ in range(2) for doc in _screening(world, code)]
    late_envelope = pushed.pop()  # the last envelope comes in a later batch
    result = _push(client, reissued, pushed)
    assert [(entry['id'], entry['reason']) for entry in result.json] == [
        (doc['_id'], YOUTH_SEALED.reason) for doc in pushed]
    result = _push(client, reissued, [late_envelope])
    assert [(entry['id'], entry['reason']) for entry in result.json] == [
        (late_envelope['_id'], YOUTH_SEALED.reason)]
    records = {row['id'] for row in services.couch.all_docs(services.db('records'))}
    vault = {row['id'] for row in services.couch.all_docs(services.db('keyvault'))}
    assert not {doc['_id'] for doc in pushed} & records
    assert not ({doc['_id'] for doc in pushed} | {late_envelope['_id']}) & vault
    for envelope in (pushed[1], late_envelope):
        _assert_kept_without_key_material(services, envelope, 'youth_sealed')
    # The registry names nobody: no linking key or record id in the clear.
    registry = json.dumps(services.couch.get(services.db('directory'), REGISTRY_ID))
    assert code not in registry and pushed[0]['_id'] not in registry
    # Another youth's screening from the same tablet lands.
    fresh = [_with_rev(doc) for doc in _screening(world, _youth_code(code))]
    assert _push(client, reissued, fresh).json == []


def test_a_sealing_before_the_registry_existed_is_still_honoured(client, world, services):
    """The registry is seeded from the sealing documents when it is first created."""
    code, record, envelope, _other = _sealed_youth_with_record_on_the_tablet(client, world)
    directory = services.db('directory')
    registry = services.couch.get(directory, REGISTRY_ID)
    services.couch.delete(directory, REGISTRY_ID, registry['_rev'])
    services.device_watch.forget(REGISTRY_ID)
    late = [_with_rev(doc) for doc in _screening(world, code)]
    result = _push(client, world['device'], late)
    assert [entry['reason'] for entry in result.json] == [YOUTH_SEALED.reason] * 2




def test_a_record_synced_while_the_approval_runs_is_sealed_too(client, world, services,
                                                                monkeypatch):
    """A sync between the approval's search and its registry write is caught afterwards."""
    code = _youth_code()
    assert _push(client, world['device'],
                 [_with_rev(doc) for doc in _screening(world, code)]).json == []
    record, envelope = (_with_rev(doc) for doc in _screening(world, code))
    original, synced = SealedRegistry.add, []

    def add_after_a_sync(self, **kwargs):
        if not synced:
            synced.append(_push(client, world['device'], [record, envelope]).json)
        return original(self, **kwargs)

    monkeypatch.setattr(SealedRegistry, 'add', add_after_a_sync)
    _seal(client, world, code)
    assert synced == [[]]  # the record and its envelope landed inside the window
    vault = services.couch.all_docs(services.db('keyvault'), keys=[envelope['_id']])
    assert vault[0]['value']['deleted']
    opened = client.simulate_post(f'/records/{record["_id"]}/open',
                                  json={'purpose': 'case_management'},
                                  headers=world['h']['sup'])
    assert opened.status_code == 410


def test_the_registry_outlives_a_lost_key_vault_restored_from_a_backup(client, world, services,
                                                                       env, tmp_path):
    """The registry lives in directory: losing and restoring keyvault leaves it whole."""
    code = _youth_code()
    assert _push(client, world['device'],
                 [_with_rev(doc) for doc in _screening(world, code)]).json == []
    backup = tmp_path / 'kv.jsonl'
    result = CliRunner().invoke(cli, ['keyvault', 'backup', '--out', str(backup)], env=env)
    assert result.exit_code == 0, result.output
    _seal(client, world, code)
    vault = services.db('keyvault')
    services.couch.delete_db(vault)
    services.couch.ensure_db(vault)
    result = CliRunner().invoke(cli, ['keyvault', 'restore', str(backup)], env=env)
    assert result.exit_code == 0, result.output
    late = [_with_rev(doc) for doc in _screening(world, code)]
    assert [entry['reason'] for entry in _push(client, world['device'], late).json] == [
        YOUTH_SEALED.reason] * 2
    assert not {doc['_id'] for doc in late} & {row['id'] for row in services.couch.all_docs(vault)}
