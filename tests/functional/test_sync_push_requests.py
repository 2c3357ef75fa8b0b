"""What one push batch costs the database: the upstream requests the gateway
makes for a batch as PouchDB sends it (read checkpoint, ``_revs_diff``,
``_bulk_docs``, write checkpoint), and that the copies kept to save them
(checkpoints, the audit chain's tail) never let a stale copy win."""

from __future__ import annotations

import collections
import hashlib
import time
from urllib.parse import unquote

import pytest

import keys
from service.audit import AuditLog
from service.cli_audit import verify_chain
from service.resources.keys import MANIFEST_ID
from sync.sealed import REGISTRY_ID
from tests.functional.test_sync_gateway import ORG, _bearer, _enroll, _with_rev
from tests.integration.records import sealed_contact

pytestmark = pytest.mark.functional


@pytest.fixture
def admin(users):
    return users.bearer(users.token('admin-requests', ['admin']))


@pytest.fixture
def upstream(services, monkeypatch):
    """Every upstream request the app makes, as (method, logical db, what), feeds left out."""
    names = {services.db(name): name for name in
             ('records', 'keyvault', 'audit', 'quarantine', 'directory', 'config')}
    seen: list[tuple[str, str, str]] = []
    request = services.couch.request

    def counting(method, path, *args, **kwargs):
        parts = unquote(path).lstrip('/').split('/', 1)
        what = parts[1] if len(parts) > 1 else ''
        if not what.startswith('_changes'):
            # Documents by kind (checkpoints, events), endpoints by name.
            kind = what.split('/', 1)[0] if what.startswith('_') else what.split(':', 1)[0]
            seen.append((method, names.get(parts[0], parts[0]), kind))
        return request(method, path, *args, **kwargs)

    monkeypatch.setattr(services.couch, 'request', counting)
    return seen


def _batch(client, creds, docs, checkpoint):
    """One push batch as PouchDB sends it; returns the checkpoint it wrote."""
    headers = _bearer(creds)
    got = client.simulate_get('/sync/records/_local/rep', headers=headers)
    assert got.status_code in (200, 404), got.text
    revs = {doc['_id']: [doc['_rev']] for doc in docs}
    assert client.simulate_post('/sync/records/_revs_diff', json=revs,
                                headers=headers).status_code == 200
    pushed = client.simulate_post('/sync/records/_bulk_docs', headers=headers,
                                  json={'docs': docs, 'new_edits': False})
    assert pushed.status_code == 201 and pushed.json == [], pushed.text
    body = dict(got.json if got.status_code == 200 else {}, last_seq=checkpoint)
    put = client.simulate_put('/sync/records/_local/rep', json=body, headers=headers)
    assert put.status_code == 201, put.text


def _wait_until_trusted(watch):
    """Wait for a database's feed, then read what every push batch reads into memory.

    The first batch created the sealed-youth registry (directory); the key
    manifest (config) was published. Every later batch reads them from
    memory once one read has kept them.
    """
    deadline = time.monotonic() + 30
    while not watch.trusted and time.monotonic() < deadline:
        watch.get('user:nobody')
        time.sleep(0.05)
    assert watch.trusted, 'the feed never became live'
    for doc_id in (REGISTRY_ID, MANIFEST_ID):
        watch.get(doc_id)


def _publish_manifest(client, admin):
    """Pin a signer and publish a key manifest, as a deployment has; return its body."""
    signer = keys.SigningKey.generate()
    assert client.simulate_put('/keys/signer', json={'public': signer.public_b64()},
                               headers=admin).status_code == 201
    body = keys.build_manifest(ORG, 1, [keys.OrgKeyPair.generate('oek-1').manifest_entry(
        'active')])
    assert client.simulate_put('/keys/manifest', headers=admin, json={
        'signed': keys.sign_manifest(body, signer)}).status_code == 200
    return body


def test_a_push_batch_costs_its_lookup_its_writes_and_the_checkpoint_write_only(
        client, users, admin, services, upstream):
    manifest = _publish_manifest(client, admin)
    alice = _enroll(client, users, admin, 'w-alice')
    pairs = [sealed_contact('w-alice', ORG, manifest_body=manifest) for _ in range(7)]
    _batch(client, alice, [_with_rev(doc) for doc, _envelope in pairs[:3]]
           + [_with_rev(pairs[6][1])], 1)
    _wait_until_trusted(services.device_watch)
    _wait_until_trusted(services.config_watch)
    upstream.clear()
    _batch(client, alice, [_with_rev(doc) for doc, _envelope in pairs[3:]], 2)
    # The checkpoint is read from the copy its write kept, the device, its
    # worker and the worker's team from the directory's feed, and the audit
    # chain's tail from the event this process appended last.
    assert collections.Counter(upstream) == collections.Counter({
        ('POST', 'records', '_revs_diff'): 1,
        ('POST', 'records', '_bulk_get'): 1,  # owners of the pushed ids
        ('POST', 'records', '_bulk_docs'): 1,
        ('PUT', 'audit', 'event'): 1,  # push_accepted
        ('PUT', 'records', '_local'): 1,
    })
    upstream.clear()
    _batch(client, alice, [_with_rev(envelope) for _doc, envelope in pairs[:6]], 3)
    assert collections.Counter(upstream) == collections.Counter({
        ('POST', 'keyvault', '_revs_diff'): 1,
        ('POST', 'keyvault', '_all_docs'): 1,  # which pushed envelope ids exist
        ('POST', 'keyvault', '_bulk_docs'): 1,
        ('PUT', 'audit', 'event'): 1,
        ('PUT', 'records', '_local'): 1,
    })


def test_a_checkpoint_another_instance_wrote_wins_over_the_copy_kept_here(
        client, users, admin, services):
    alice = _enroll(client, users, admin, 'w-alice')
    headers = _bearer(alice)
    first = client.simulate_put('/sync/records/_local/rep', headers=headers,
                                json={'last_seq': 5})
    assert first.status_code == 201
    kept = client.simulate_get('/sync/records/_local/rep', headers=headers).json
    assert kept['last_seq'] == 5 and kept['_rev'] == first.json['rev']
    # Another instance of the service writes the same checkpoint upstream.
    digest = hashlib.sha256(b'records\0rep').hexdigest()[:40]
    physical = f'_local/fv.{alice["device_id"]}.{digest}'
    assert services.couch.get(services.db('records'), physical)['last_seq'] == 5
    newer = services.couch.put(services.db('records'), {
        '_id': physical, '_rev': first.json['rev'], 'last_seq': 9})
    # The device writes on the copy it read here: 409, as CouchDB answers a
    # stale revision, and PouchDB reads again: the newer checkpoint, which
    # it then writes on.
    stale = client.simulate_put('/sync/records/_local/rep', headers=headers,
                                json=dict(kept, last_seq=6))
    assert stale.status_code == 409
    fresh = client.simulate_get('/sync/records/_local/rep', headers=headers).json
    assert fresh['last_seq'] == 9 and fresh['_rev'] == newer
    again = client.simulate_put('/sync/records/_local/rep', headers=headers,
                                json=dict(fresh, last_seq=10))
    assert again.status_code == 201
    assert client.simulate_get('/sync/records/_local/rep',
                               headers=headers).json['last_seq'] == 10


def test_appends_of_two_instances_to_one_audit_chain_keep_it_whole(services):
    db = services.db('audit')
    one = AuditLog(services.couch, db)
    other = AuditLog(services.couch, db)
    # Each instance keeps the tail it wrote; the other's appends make it stale.
    for index in range(6):
        (one if index % 3 else other).record('login', actor=f'user:u{index}',
                                             details={'n': index})
    events = list(one.events())
    assert [event['seq'] for event in events] == [1, 2, 3, 4, 5, 6]
    assert list(verify_chain(events)) == []
