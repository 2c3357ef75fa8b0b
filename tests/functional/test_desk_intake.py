"""Desk intake (``POST /records``) creates records and never edits one."""

from __future__ import annotations

import pytest

from tests.functional.test_lifecycle_endpoints import _published
from tests.integration.records import sealed_contact

pytestmark = pytest.mark.functional

ORG = 'org-test'


@pytest.fixture
def h(users, role_tokens):
    return {role: users.bearer(token) for role, token in role_tokens.items()}


def _submit(client, headers, document, envelopes):
    return client.simulate_post('/records', json={'document': document,
                                                  'envelopes': envelopes}, headers=headers)


def _vault_ids(services):
    return {row['id'] for row in services.couch.all_docs(services.db('keyvault'))
            if row['id'].startswith('rk:')}


def test_a_stored_record_cannot_be_overwritten_by_sending_its_revision(client, h, services):
    _signer, _new, _old, body = _published(client, h, services)
    # Another worker's stored record, and its current revision.
    theirs, their_envelope = sealed_contact('worker-2', ORG, manifest_body=body)
    rev = services.couch.put(services.db('records'), theirs)
    services.couch.put(services.db('keyvault'), their_envelope)
    # worker-1 sends a valid record of its own under that id and revision.
    claim, envelope = sealed_contact('worker-1', ORG, manifest_body=body)
    claim = dict(claim, _id=theirs['_id'], _rev=rev)
    envelope = dict(envelope, doc=theirs['_id'])
    answer = _submit(client, h['worker'], claim, [envelope])
    assert answer.status_code == 422, answer.text
    assert answer.json['code'] == 'new_record_only' and '_rev' in answer.json['fields']
    stored = services.couch.get(services.db('records'), theirs['_id'])
    assert (stored['owner'], stored['_rev']) == ('worker-2', rev)
    assert envelope['_id'] not in _vault_ids(services)


def test_the_same_record_submitted_twice_leaves_no_orphan_envelope(client, h, services):
    _signer, _new, _old, body = _published(client, h, services)
    plain = sealed_contact('worker-1', ORG, manifest_body=body)
    first = _submit(client, h['worker'], *[plain[0], [plain[1]]])
    assert first.status_code == 201, first.text
    # The desk CLI seals again on every run: same record id, a new record key.
    again, new_envelope = sealed_contact('worker-1', ORG, manifest_body=body,
                                         _id=plain[0]['_id'])
    second = _submit(client, h['worker'], again, [new_envelope])
    assert second.status_code == 409 and second.json['code'] == 'conflict'
    assert _vault_ids(services) == {plain[1]['_id']}


def test_an_envelope_id_that_exists_leaves_no_record_behind(client, h, services):
    _signer, _new, _old, body = _published(client, h, services)
    document, envelope = sealed_contact('worker-1', ORG, manifest_body=body)
    services.couch.put(services.db('keyvault'), dict(envelope, doc='contact:someone-else'))
    answer = _submit(client, h['worker'], document, [envelope])
    assert answer.status_code == 409, answer.text
    assert services.couch.get_or_none(services.db('records'), document['_id']) is None
    stored = services.couch.get(services.db('keyvault'), envelope['_id'])
    assert stored['doc'] == 'contact:someone-else'
