"""Real PouchDB 9 tablets (node) against fieldvault under gunicorn."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import ORG
from tests.integration.records import plain_contact, sealed_contact

pytestmark = pytest.mark.integration

#: Records per device; the issue asks 200.
PER_DEVICE = 200


def _sealed_batch(worker: str, count: int) -> tuple[list[dict], list[dict]]:
    records, envelopes = [], []
    for _index in range(count):
        doc, envelope = sealed_contact(worker, ORG)
        records.append(doc)
        envelopes.append(envelope)
    return records, envelopes


def test_two_devices_sync_live_and_each_gets_only_its_own(stack):
    stack.services.couch.put(stack.services.db('config'), {'_id': 'service-areas', 'areas': []})
    alice, bob = stack.enroll('w-alice'), stack.enroll('w-bob')
    alice_docs, alice_env = _sealed_batch('w-alice', PER_DEVICE)
    bob_docs, bob_env = _sealed_batch('w-bob', PER_DEVICE)
    # Both tablets sync live at once: alice with Basic, bob with a bearer token.
    runs = [
        stack.tablet(alice, 'sync_live', name='alice', docs=alice_docs + alice_env,
                     expect=PER_DEVICE * 2, background=True, timeout_ms=120000),
        stack.tablet(bob, 'sync_live', name='bob', docs=bob_docs + bob_env, bearer=True,
                     expect=PER_DEVICE * 2, background=True, timeout_ms=120000),
    ]
    import json
    results = [json.loads(proc.communicate(timeout=180)[0].decode().splitlines()[-1])
               for proc in runs]
    assert all(result['ok'] for result in results), results
    stored = stack.records()
    assert sorted(doc['_id'] for doc in stored) == sorted(
        doc['_id'] for doc in alice_docs + bob_docs)
    keyvault = stack.services.couch.all_docs(stack.services.db('keyvault'))
    assert {row['id'] for row in keyvault} >= {env['_id'] for env in alice_env + bob_env}
    # Now pull into fresh tablets: exactly their own records plus the config.
    for creds, mine, name in ((alice, alice_docs, 'alice2'), (bob, bob_docs, 'bob2')):
        pulled = stack.tablet(creds, 'pull', name=name)
        assert pulled['ok'], pulled
        assert sorted(pulled['ids']) == sorted(doc['_id'] for doc in mine)
        config = stack.tablet(creds, 'pull', name=name + '-config', db='config')
        assert 'service-areas' in config['ids']
        assert not any(doc_id.startswith('device-control:') for doc_id in config['ids'])


def test_bad_documents_are_refused_per_doc_and_quarantined(stack):
    alice = stack.enroll('w-carol')
    good, envelope = _sealed_batch('w-carol', 5)
    bad = [
        plain_contact('w-carol', ORG),                       # plaintext identifying field
        sealed_contact('w-dave', ORG)[0],                    # foreign owner
        {'_id': '_design/evil', 'views': {}},                # design document
        dict(sealed_contact('w-carol', ORG)[0], notes='x' * (300 * 1024)),  # oversized
        {'_id': 'rk:broken', 'type': 'rk'},                  # malformed envelope
    ]
    result = stack.tablet(alice, 'push', name='carol', docs=good + envelope + bad)
    assert result['ok'], result
    assert result['denied'] == 5
    stored = {doc['_id'] for doc in stack.records()}
    assert stored == {doc['_id'] for doc in good}
    quarantined = stack.services.couch.all_docs(stack.services.db('quarantine'),
                                                include_docs=True)
    assert sorted(row['doc']['doc_id'] for row in quarantined) == sorted(
        doc['_id'] for doc in bad)
    assert all(row['doc']['device'] == alice['device_id'] for row in quarantined)
    # A second push sends nothing again (envelopes included: _revs_diff knows them).
    again = stack.tablet(alice, 'push', name='carol')
    assert again['ok'] and again['result']['docs_written'] == 0, again


def test_revoked_device_stops_with_401_and_never_syncs_again(stack):
    creds = stack.enroll('w-erin')
    docs, envelopes = _sealed_batch('w-erin', 3)
    first = stack.tablet(creds, 'push', name='erin', docs=docs)
    assert first['ok'], first
    stack.devices.revoke(creds['device_id'])
    live = stack.tablet(creds, 'sync_live', name='erin', expect=10 ** 6, timeout_ms=20000)
    assert live['error'] == {'name': 'unauthorized', 'status': 401}, live
    for action in ('push', 'pull'):
        again = stack.tablet(creds, action, name='erin', docs=_sealed_batch('w-erin', 1)[0])
        assert again['ok'] is False and again['error']['status'] == 401, again


def test_service_killed_mid_replication_resumes_and_stores_each_doc_once(stack):
    creds = stack.enroll('w-frank')
    docs, envelopes = _sealed_batch('w-frank', PER_DEVICE)
    process = stack.tablet(creds, 'push', name='frank', docs=docs + envelopes,
                           batch_size=10, retry=True, background=True)
    deadline = time.monotonic() + 60
    while len(stack.records()) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    stack.service.kill()
    assert len(stack.records()) < PER_DEVICE
    stack.service.start()
    import json
    out, err = process.communicate(timeout=180)
    result = json.loads(out.decode().splitlines()[-1])
    assert result['ok'], (result, err.decode()[-1000:])
    stored = stack.records()
    assert sorted(doc['_id'] for doc in stored) == sorted(doc['_id'] for doc in docs)
    assert not any(doc.get('_conflicts') for doc in stored)
    conflicts = stack.services.couch.request(
        'GET', f'/{stack.services.db("records")}/_all_docs',
        params={'include_docs': 'true', 'conflicts': 'true'}).json()['rows']
    assert not any(row['doc'].get('_conflicts') for row in conflicts)


def test_database_down_is_503_with_retry_after(couch_server, tmp_path):
    import httpx

    from service.embedded_db import free_port
    from tests.integration.conftest import Service
    dead = Service(f'http://127.0.0.1:{free_port()}', 'down_', tmp_path).start()
    try:
        for path in ('/sync/', '/sync/records/', '/sync/records/_changes'):
            answer = httpx.get(dead.url + path, auth=('d-' + '0' * 32, 'x' * 43), timeout=10)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers['Retry-After']
            assert answer.json()['error'] == 'database_unavailable'
    finally:
        dead.stop()
