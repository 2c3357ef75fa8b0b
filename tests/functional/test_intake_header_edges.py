"""Intake refuses exactly what an opener would: fle/1 header entries and
org ids that pass a loose identifier pattern but no opener accepts.

Each case is sent both ways a record can arrive (a device's sync push and
the desk's ``POST /records``) and must be refused by both, with nothing
stored; the same record with a well-formed header is stored by both."""

from __future__ import annotations

import copy

import pytest

import keys
import schemas
from tests.functional.test_lifecycle_endpoints import _published
from tests.functional.test_sync_gateway import ORG, _enroll, _push, _with_rev
from tests.integration.records import sealed_contact

pytestmark = pytest.mark.functional


def _first_entry(document):
    return next(iter(document['fle']['keys'].values()))


def _null_dev(document):
    _first_entry(document)['dev'] = None


def _null_at(document):
    _first_entry(document)['at'] = None


def _colon_dev(document):
    _first_entry(document)['dev'] = 'dev:42'


def _at_with_offset(document):
    _first_entry(document)['at'] = '2026-03-02T10:15:00+00:00'


def _long_kek(document):
    _first_entry(document)['kek'] = 'k' * 65


def _org_with_at_sign(document):
    document['org'] = 'org@test'


EDGES = [_null_dev, _null_at, _colon_dev, _at_with_offset, _long_kek, _org_with_at_sign]


@pytest.fixture
def admin(users):
    return users.bearer(users.token('admin-edges', ['admin']))


@pytest.mark.parametrize('edge', EDGES, ids=[edge.__name__.strip('_') for edge in EDGES])
def test_the_opener_refuses_it_and_so_does_the_schema(edge):
    """The premise (the opener refuses every case), and the schema agrees."""
    pair = keys.OrgKeyPair.generate('oek-1')
    body = keys.build_manifest(ORG, 1, [pair.manifest_entry('active')])
    document, envelope = sealed_contact('w-edge', ORG, manifest_body=body)
    paths = schemas.identifying_paths('contact')
    keyring = keys.Keyring([pair])
    assert keys.open_document(document, envelopes=[envelope], keyring=keyring, paths=paths,
                              org=ORG)['notes']
    edge(document)
    org = document['org']
    with pytest.raises(keys.InvalidCiphertext):
        keys.open_document(document, envelopes=[envelope], keyring=keyring, paths=paths,
                           org=org)
    with pytest.raises(schemas.SchemaValidationError):
        schemas.validate_document(document, sealed=True)


@pytest.mark.parametrize('edge', EDGES, ids=[edge.__name__.strip('_') for edge in EDGES])
def test_sync_push_refuses_it(edge, client, users, admin, services):
    device = _enroll(client, users, admin, 'w-edge')
    document = copy.deepcopy(sealed_contact('w-edge', ORG)[0])
    edge(document)
    answer = _push(client, device, [_with_rev(document)])
    assert answer.status_code == 201, answer.text
    assert [entry['error'] for entry in answer.json] == ['forbidden']
    assert services.couch.get_or_none(services.db('records'), document['_id']) is None


def test_sync_push_stores_the_well_formed_record(client, users, admin, services):
    device = _enroll(client, users, admin, 'w-edge')
    document = sealed_contact('w-edge', ORG)[0]
    assert _push(client, device, [_with_rev(document)]).json == []
    assert services.couch.get_or_none(services.db('records'), document['_id'])


@pytest.mark.parametrize('edge', EDGES, ids=[edge.__name__.strip('_') for edge in EDGES])
def test_desk_intake_refuses_it(edge, client, users, role_tokens, services):
    headers = {role: users.bearer(token) for role, token in role_tokens.items()}
    _signer, _new, _old, body = _published(client, headers, services)
    document, envelope = sealed_contact('worker-1', ORG, manifest_body=body)
    edge(document)
    answer = client.simulate_post('/records', json={'document': document,
                                                    'envelopes': [envelope]},
                                  headers=headers['worker'])
    assert answer.status_code == 422, answer.text
    assert services.couch.get_or_none(services.db('records'), document['_id']) is None
    assert services.couch.get_or_none(services.db('keyvault'), envelope['_id']) is None


def test_desk_intake_refuses_a_header_key_without_its_envelope(client, users, role_tokens,
                                                               services):
    headers = {role: users.bearer(token) for role, token in role_tokens.items()}
    _signer, _new, _old, body = _published(client, headers, services)
    document, envelope = sealed_contact('worker-1', ORG, manifest_body=body)
    # A second header key, as an edit session adds, whose envelope is not sent.
    other = sealed_contact('worker-1', ORG, manifest_body=body)[0]
    document['fle']['keys'].update(other['fle']['keys'])
    answer = client.simulate_post('/records', json={'document': document,
                                                    'envelopes': [envelope]},
                                  headers=headers['worker'])
    assert answer.status_code == 422, answer.text
    assert answer.json['code'] == 'missing_envelope'
    assert services.couch.get_or_none(services.db('records'), document['_id']) is None
    assert services.couch.get_or_none(services.db('keyvault'), envelope['_id']) is None
    # The same record with every envelope is stored.
    del document['fle']['keys'][next(iter(other['fle']['keys']))]
    stored = client.simulate_post('/records', json={'document': document,
                                                    'envelopes': [envelope]},
                                  headers=headers['worker'])
    assert stored.status_code == 201, stored.text
