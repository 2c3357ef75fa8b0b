"""A document the database itself refuses during a push is reported to the
device in its per-document answer, in request order, while the rest of the
batch lands: nothing is reported stored that was not.

The refusal is a real one: a ``validate_doc_update`` function installed in
the physical database (pouchdb-server runs them as CouchDB does)."""

from __future__ import annotations

import pytest

from tests.functional.test_sync_gateway import ORG, _enroll, _push, _with_rev
from tests.integration.records import sealed_contact

pytestmark = pytest.mark.functional


def _refuse_in(services, logical: str, doc_id: str) -> None:
    services.couch.put(services.db(logical), {
        '_id': '_design/refuse-one',
        'validate_doc_update': (
            'function (newDoc) { if (newDoc._id === %r) '
            '{ throw({forbidden: "refused by the database"}); } }' % doc_id),
    })


@pytest.fixture
def admin(users):
    return users.bearer(users.token('admin-upstream', ['admin']))


def test_a_record_the_database_refuses_is_reported_and_the_rest_land(
        client, users, admin, services):
    device = _enroll(client, users, admin, 'w-upstream')
    first, refused, last = (sealed_contact('w-upstream', ORG)[0] for _ in range(3))
    _refuse_in(services, 'records', refused['_id'])
    answer = _push(client, device, [_with_rev(first), _with_rev(refused), _with_rev(last)])
    assert answer.status_code == 201, answer.text
    assert answer.json == [{'id': refused['_id'], 'error': 'forbidden',
                            'reason': 'refused by the database'}]
    records = services.db('records')
    assert services.couch.get_or_none(records, refused['_id']) is None
    assert services.couch.get_or_none(records, first['_id'])
    assert services.couch.get_or_none(records, last['_id'])


def test_an_envelope_the_database_refuses_is_reported(client, users, admin, services):
    device = _enroll(client, users, admin, 'w-upstream')
    document, envelope = sealed_contact('w-upstream', ORG)
    _refuse_in(services, 'keyvault', envelope['_id'])
    answer = _push(client, device, [_with_rev(document), _with_rev(envelope)])
    assert answer.status_code == 201, answer.text
    assert [(entry['id'], entry['error']) for entry in answer.json] == [
        (envelope['_id'], 'forbidden')]
    assert services.couch.get_or_none(services.db('keyvault'), envelope['_id']) is None
