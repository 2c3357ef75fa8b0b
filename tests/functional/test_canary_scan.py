"""Plant canary values in every kind of request and scan everything the
service wrote (log lines, response bodies, audit and quarantine databases)
for them. An identifying value must never appear in any of those."""

from __future__ import annotations

import json

import pytest

import schemas
from tests import factories

pytestmark = pytest.mark.functional

CANARY = 'CANARY-7f3a9c'


def _planted_documents():
    """Every record type with a canary in each identifying field, unsealed."""
    for doc_type in schemas.RECORD_TYPES:
        doc = factories.make_record(doc_type)
        for pointer in schemas.identifying_paths(doc_type):
            parts = pointer.lstrip('/').split('/')
            target = doc
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = f'{CANARY}-{doc_type}-{parts[-1]}'
        yield doc


def _dump_db(services, logical: str) -> str:
    rows = services.couch.all_docs(services.db(logical), include_docs=True)
    return json.dumps(rows)


def test_no_canary_reaches_logs_bodies_audit_or_quarantine(client, users, role_tokens, services,
                                                          captured_logs):
    bodies = []
    worker = users.bearer(role_tokens['worker'])
    for doc in _planted_documents():
        assert schemas.identifying_paths(doc['type']), doc['type']
        result = client.simulate_post('/records/validate', json=doc, headers=worker)
        assert result.status_code == 422, result.text
        bodies.append(result.text)
        # The same canary in a query string, a header and an unknown field.
        doc['unplanned_field'] = CANARY
        bodies.append(client.simulate_post(
            f'/records/validate?note={CANARY}', json=doc,
            headers={**worker, 'X-Note': CANARY}).text)
    # In credentials: a password typed into the user name field.
    bodies.append(client.simulate_post(
        '/auth/login', json={'username': CANARY.lower(), 'password': CANARY}).text)
    bodies.append(client.simulate_post(
        '/auth/login', json={'username': 'worker-1', 'password': CANARY}).text)
    # In malformed and oversized bodies.
    bodies.append(client.simulate_post(
        '/records/validate', body='{"full_name": "' + CANARY,
        headers={**worker, 'Content-Type': 'application/json'}).text)
    bodies.append(client.simulate_get(f'/no-such-route/{CANARY}').text)

    scanned = {
        'responses': '\n'.join(bodies),
        'logs': captured_logs.getvalue(),
        'audit': _dump_db(services, 'audit'),
        'quarantine': _dump_db(services, 'quarantine'),
    }
    assert scanned['logs'], 'the scan must see log lines, or it proves nothing'
    for where, text in scanned.items():
        assert CANARY not in text and CANARY.lower() not in text, where
