"""One rule for every new envelope: the sync gateway, desk intake and desk
correction accept a record-key envelope only for a key version the published
manifest accepts, and refuse it, for the same reason, while no manifest is
published."""

from __future__ import annotations

import keys
import pytest

from tests.functional.test_sync_gateway import _enroll, _push, _with_rev
from tests.integration.records import publish_test_manifest, sealed_contact

pytestmark = pytest.mark.functional

ORG = 'org-test'
NO_MANIFEST = ('No key manifest is published yet, so no key version accepts new '
               'envelopes.')
UNLISTED = 'The envelope is sealed to a key version the manifest does not list.'


@pytest.fixture
def admin(users):
    return users.bearer(users.token('admin-rule', ['admin']))


@pytest.fixture
def worker(users):
    return users.bearer(users.token('w-desk', ['worker']))


def _pushed_envelope(client, users, admin, services, worker_name, envelope_of):
    """Push one record and its envelope from a tablet; return (answer, record, envelope)."""
    tablet = _enroll(client, users, admin, worker_name)
    record, envelope = envelope_of(worker_name)
    answer = _push(client, tablet, [_with_rev(record), _with_rev(envelope)])
    assert answer.status_code == 201, answer.text
    return answer, record, envelope


def _desk(client, worker, envelope_of):
    document, envelope = envelope_of('w-desk')
    answer = client.simulate_post('/records', json={'document': document,
                                                    'envelopes': [envelope]}, headers=worker)
    return answer, document, envelope


def _vault(services, doc_id):
    return services.couch.get_or_none(services.db('keyvault'), doc_id)


def _quarantined(services):
    return [row['doc'] for row in services.couch.all_docs(services.db('quarantine'),
                                                          include_docs=True)]


def test_without_a_manifest_a_pushed_envelope_is_refused_and_kept(client, users, admin,
                                                                   services):
    answer, record, envelope = _pushed_envelope(
        client, users, admin, services, 'w-tablet', lambda name: sealed_contact(name, ORG))
    assert [(entry['id'], entry['error'], entry['rule'], entry['reason'])
            for entry in answer.json] == [(envelope['_id'], 'forbidden', 'key_version',
                                           NO_MANIFEST)]
    assert _vault(services, envelope['_id']) is None
    kept = _quarantined(services)
    assert [(entry['rule'], entry['doc_id']) for entry in kept] == [
        ('key_version', envelope['_id'])]
    # Nothing the worker captured is lost: the envelope is kept whole.
    assert kept[0]['doc']['ct'] == envelope['ct']


def test_without_a_manifest_desk_intake_refuses_the_envelope_for_the_same_reason(
        client, worker, services):
    answer, document, envelope = _desk(client, worker, lambda name: sealed_contact(name, ORG))
    assert answer.status_code == 422, answer.text
    assert answer.json['code'] == 'invalid_envelope'
    assert answer.json['fields'] == {'envelopes': {'0': [NO_MANIFEST]}}
    assert services.couch.get_or_none(services.db('records'), document['_id']) is None
    assert _vault(services, envelope['_id']) is None


def test_a_key_the_manifest_does_not_list_is_refused_alike_on_both_paths(
        client, users, admin, worker, services):
    publish_test_manifest(services.couch, services.db('config'), ORG)
    stranger = keys.OrgKeyPair.generate('k-unpublished')
    unlisted = keys.build_manifest(ORG, 1, [stranger.manifest_entry('active')])

    def sealed(name):
        return sealed_contact(name, ORG, manifest_body=unlisted)

    pushed, _record, envelope = _pushed_envelope(client, users, admin, services, 'w-tab2',
                                                 sealed)
    assert [(entry['id'], entry['rule'], entry['reason']) for entry in pushed.json] == [
        (envelope['_id'], 'key_version', UNLISTED)]
    desk, _document, desk_envelope = _desk(client, worker, sealed)
    assert desk.status_code == 422, desk.text
    assert desk.json['fields'] == {'envelopes': {'0': [UNLISTED]}}
    assert _vault(services, envelope['_id']) is None
    assert _vault(services, desk_envelope['_id']) is None


def test_once_published_both_paths_store_the_envelope(client, users, admin, worker, services):
    publish_test_manifest(services.couch, services.db('config'), ORG)
    pushed, _record, envelope = _pushed_envelope(
        client, users, admin, services, 'w-tab3', lambda name: sealed_contact(name, ORG))
    assert pushed.json == []
    desk, _document, desk_envelope = _desk(client, worker,
                                           lambda name: sealed_contact(name, ORG))
    assert desk.status_code == 201, desk.text
    assert _vault(services, envelope['_id']) and _vault(services, desk_envelope['_id'])


def test_a_desk_correction_meets_the_same_rule(client, users, worker, services):
    body = publish_test_manifest(services.couch, services.db('config'), ORG)
    document, envelope = sealed_contact('w-desk', ORG)
    created = client.simulate_post('/records', json={'document': document,
                                                     'envelopes': [envelope]}, headers=worker)
    assert created.status_code == 201, created.text
    advocate = users.bearer(users.token('adv-rule', ['advocate']))
    stored = services.couch.get(services.db('records'), document['_id'])
    stranger = keys.OrgKeyPair.generate('k-unpublished')
    unlisted = keys.build_manifest(ORG, 1, [stranger.manifest_entry('active')])
    for manifest, expected in ((unlisted, 422), (body, 200)):
        corrected, new_envelope = keys.reseal_fields(stored, {'/notes': 'Corrected note.'},
                                                     org=ORG, manifest_body=manifest)
        answer = client.simulate_put(f'/caseload/{document["_id"]}', headers=advocate,
                                     json={'document': corrected, 'envelopes': [new_envelope]})
        assert answer.status_code == expected, answer.text
        if expected == 422:
            assert answer.json['fields'] == {'envelopes': {'0': [UNLISTED]}}, answer.json
            assert _vault(services, new_envelope['_id']) is None
        else:
            assert _vault(services, new_envelope['_id'])
