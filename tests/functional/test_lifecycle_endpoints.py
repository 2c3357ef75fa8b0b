"""Bad input for every key lifecycle endpoint (authorization is covered by
test_authorization_matrix, which picks up every mounted route)."""

from __future__ import annotations

import pytest

import keys
from tests.integration.records import sealed_contact

pytestmark = pytest.mark.functional


@pytest.fixture
def h(users, role_tokens):
    return {role: users.bearer(token) for role, token in role_tokens.items()}


def _published(client, h, services):
    """Pin a signer and publish oek-1 active, oek-0 decrypt-only (future)."""
    signer = keys.SigningKey.generate()
    assert client.simulate_put('/keys/signer', json={'public': signer.public_b64()},
                               headers=h['admin']).status_code == 201
    new, old = keys.OrgKeyPair.generate('oek-1'), keys.OrgKeyPair.generate('oek-0')
    body = keys.build_manifest('org-test', 1, [
        new.manifest_entry('active'), old.manifest_entry('decrypt-only', '2999-01-01')])
    assert client.simulate_put('/keys/manifest', json={'signed': keys.sign_manifest(
        body, signer)}, headers=h['admin']).status_code == 200
    return signer, new, old, body


def test_recovery_refuses_bad_certificates(client, h, services):
    assert client.simulate_put('/keys/recovery', json={'certificate': 'x'},
                               headers=h['admin']).status_code == 422
    assert client.simulate_put('/keys/recovery', json={'certificate': {}, 'more': 1},
                               headers=h['admin']).status_code == 422
    assert client.simulate_get('/keys/recovery', headers=h['admin']).status_code == 404
    signer, *_ = _published(client, h, services)
    other = keys.AdvocateKey.generate('adv-9')
    cert = keys.certify_advocate_key(other.public_record(), signer, certified_by='admin-1')
    answer = client.simulate_put('/keys/recovery', json={'certificate': cert},
                                 headers=h['admin'])
    assert answer.status_code == 422 and answer.json['code'] == 'key_mismatch'
    forged = keys.certify_advocate_key(keys.AdvocateKey.generate('recovery').public_record(),
                                       keys.SigningKey.generate(), certified_by='admin-1')
    assert client.simulate_put('/keys/recovery', json={'certificate': forged},
                               headers=h['admin']).status_code in (409, 422)


def test_envelopes_page_refuses_bad_parameters(client, h, services):
    for query in ('', 'kek=bad%20id', 'kek=oek-1&limit=0', 'kek=oek-1&limit=5000',
                  'kek=oek-1&limit=x', 'kek=oek-1&after=grant:oek-1:adv'):
        answer = client.simulate_get('/keys/envelopes', query_string=query,
                                     headers=h['supervisor'])
        assert answer.status_code == 422, query
    answer = client.simulate_get('/keys/envelopes', query_string='kek=oek-1',
                                 headers=h['supervisor'])
    assert answer.status_code == 200 and answer.json == {'envelopes': [], 'next': None,
                                                         'scanned': 0}


def _stored_contact(services):
    """A sealed contact of worker-1 (the supervisor's team), stored, and its envelope.

    Custodians page out only their own team's envelopes, so each envelope's
    record is stored with its owner.
    """
    doc, envelope = sealed_contact('worker-1', 'org-test')
    services.couch.put(services.db('records'), doc)
    return doc, envelope


def _all_pages(client, h, kek, *, limit):
    """Page through ``GET /keys/envelopes`` as the rewrap client does; return the pages."""
    pages, after = [], None
    while True:
        query = f'kek={kek}&limit={limit}' + (f'&after={after}' if after else '')
        page = client.simulate_get('/keys/envelopes', query_string=query,
                                   headers=h['supervisor']).json
        pages.append(page['envelopes'])
        after = page['next']
        if after is None:
            return pages


def test_envelopes_page_pages_and_filters(client, h, services):
    docs = []
    for index in range(7):
        _doc, envelope = _stored_contact(services)
        docs.append(dict(envelope, kek='oek-0' if index % 2 else 'oek-1'))
    services.couch.bulk_docs(services.db('keyvault'), docs)
    pages = _all_pages(client, h, 'oek-0', limit=2)
    seen = [env['_id'] for page in pages for env in page]
    assert all(env['kek'] == 'oek-0' for page in pages for env in page)
    assert sorted(seen) == sorted(doc['_id'] for doc in docs if doc['kek'] == 'oek-0')


def _keyvault_reads(services, monkeypatch) -> list[int | None]:
    """Record the ``limit`` of every key-range read of the key vault."""
    limits: list[int | None] = []
    real = services.couch.all_docs

    def spy(db, **params):
        if db == services.db('keyvault') and params.get('keys') is None:
            limits.append(params.get('limit'))
        return real(db, **params)

    monkeypatch.setattr(services.couch, 'all_docs', spy)
    return limits


def test_envelopes_page_reads_only_the_rows_it_needs(client, h, services, monkeypatch):
    # Rows read past a page's last envelope are read again by the next page,
    # so a vault where every envelope matches is read once, page by page.
    docs = [dict(_stored_contact(services)[1], kek='oek-0') for _ in range(9)]
    services.couch.bulk_docs(services.db('keyvault'), docs)
    limits = _keyvault_reads(services, monkeypatch)
    pages = _all_pages(client, h, 'oek-0', limit=4)
    seen = [env['_id'] for page in pages for env in page]
    assert sorted(seen) == sorted(doc['_id'] for doc in docs)
    assert limits == [4, 4, 4]  # 4 + 4 + the last 1 (short read: exhausted)


def test_envelopes_page_crosses_a_mostly_rewrapped_vault(client, h, services, monkeypatch):
    # One envelope of the old key among many of the new one: the page still
    # finds it, in reads that grow instead of one per page size.
    docs = sorted((dict(_stored_contact(services)[1], kek='oek-1')
                   for _ in range(40)), key=lambda doc: doc['_id'])
    docs[-1]['kek'] = 'oek-0'  # last in id order: the scan crosses all 39 others first
    services.couch.bulk_docs(services.db('keyvault'), docs)
    limits = _keyvault_reads(services, monkeypatch)
    pages = _all_pages(client, h, 'oek-0', limit=2)
    found = [env['_id'] for page in pages for env in page]
    assert found == [docs[-1]['_id']]
    assert sum(limit for limit in limits) < 2 * 40 and max(limits) > 2


def test_rewrapped_refuses_bad_batches_and_never_overwrites(client, h, services):
    for body in ({}, {'from': 'oek-0', 'to': 'oek-1', 'envelopes': []},
                 {'from': 'oek-0', 'to': 'oek-1', 'envelopes': 'x'},
                 {'from': '!', 'to': 'oek-1', 'envelopes': [{}]}):
        assert client.simulate_post('/keys/envelopes/rewrapped', json=body,
                                    headers=h['supervisor']).status_code == 422, body
    assert client.simulate_post('/keys/envelopes/rewrapped', json={
        'from': 'oek-0', 'to': 'oek-1', 'envelopes': [{}]},
        headers=h['supervisor']).status_code == 409  # no manifest yet
    _published(client, h, services)
    _doc, envelope = sealed_contact('worker-1', 'org-test')
    envelope = dict(envelope, kek='oek-0')
    rev = services.couch.bulk_docs(services.db('keyvault'), [envelope])[0]['rev']
    stored = services.couch.get(services.db('keyvault'), envelope['_id'])
    assert stored['_rev'] == rev
    swapped = client.simulate_post('/keys/envelopes/rewrapped', headers=h['supervisor'], json={
        'from': 'oek-1', 'to': 'oek-0', 'envelopes': [stored]})
    assert swapped.status_code == 422  # must seal to the active key, from a demoted one
    malformed = dict(stored, kek='oek-1', ct='AAAA')
    answer = client.simulate_post('/keys/envelopes/rewrapped', headers=h['supervisor'], json={
        'from': 'oek-0', 'to': 'oek-1', 'envelopes': [malformed]})
    assert answer.status_code == 422
    no_rev = {k: v for k, v in stored.items() if k != '_rev'}
    no_rev['kek'] = 'oek-1'
    assert client.simulate_post('/keys/envelopes/rewrapped', headers=h['supervisor'], json={
        'from': 'oek-0', 'to': 'oek-1', 'envelopes': [no_rev]}).status_code == 422
    # Moving the envelope to another document is refused; a stale _rev is a conflict.
    moved = dict(stored, kek='oek-1', doc='contact:elsewhere')
    answer = client.simulate_post('/keys/envelopes/rewrapped', headers=h['supervisor'], json={
        'from': 'oek-0', 'to': 'oek-1', 'envelopes': [moved]})
    assert answer.status_code == 200 and answer.json['refused'] == [stored['_id']]
    stale = dict(stored, kek='oek-1', _rev='1-' + 'f' * 32)
    answer = client.simulate_post('/keys/envelopes/rewrapped', headers=h['supervisor'], json={
        'from': 'oek-0', 'to': 'oek-1', 'envelopes': [stale]})
    assert answer.json == {'written': 0, 'conflicts': [stored['_id']], 'refused': []}
    assert services.couch.get(services.db('keyvault'), envelope['_id'])['kek'] == 'oek-0'


def test_rewrapped_answers_deleted_and_missing_envelopes_as_conflicts(client, h, services):
    _published(client, h, services)
    db = services.db('keyvault')
    gone, kept = (dict(sealed_contact('worker-1', 'org-test')[1], kek='oek-0')
                  for _ in range(2))
    services.couch.bulk_docs(db, [gone, kept])
    gone, kept = services.couch.get(db, gone['_id']), services.couch.get(db, kept['_id'])
    services.couch.delete(db, gone['_id'], gone['_rev'])
    _doc, never = sealed_contact('worker-1', 'org-test')
    never = dict(never, kek='oek-1', _rev='1-' + 'a' * 32)
    answer = client.simulate_post('/keys/envelopes/rewrapped', headers=h['supervisor'], json={
        'from': 'oek-0', 'to': 'oek-1',
        'envelopes': [dict(gone, kek='oek-1'), never, dict(kept, kek='oek-1')]})
    assert answer.status_code == 200
    assert answer.json == {'written': 1, 'conflicts': [gone['_id'], never['_id']],
                           'refused': []}
    assert services.couch.get_or_none(db, gone['_id']) is None
    assert services.couch.get_or_none(db, never['_id']) is None
    assert services.couch.get(db, kept['_id'])['kek'] == 'oek-1'


def test_census_counts_per_key(client, h, services):
    docs = [dict(sealed_contact('worker-1', 'org-test')[1], kek=kek)
            for kek in ('a-1', 'a-1', 'b-2')]
    services.couch.bulk_docs(services.db('keyvault'), docs)
    answer = client.simulate_get('/keys/census', headers=h['admin'])
    assert answer.json == {'census': {'a-1': 2, 'b-2': 1}, 'total': 3}


def test_rewrap_runs_refuse_bad_reports(client, h):
    for body in ({}, {'from': 'a', 'to': 'b', 'phase': 'middle'},
                 {'from': 'a', 'to': 'b', 'phase': 'started', 'counts': {'x': 1}},
                 {'from': 'a', 'to': 'b', 'phase': 'started', 'counts': {'rewrapped': 'no'}},
                 {'from': 'a', 'to': 'b', 'phase': 'started', 'census': {'bad id': 1}}):
        assert client.simulate_post('/keys/rewrap-runs', json=body,
                                    headers=h['supervisor']).status_code == 422, body
    assert client.simulate_post('/keys/rewrap-runs', headers=h['supervisor'], json={
        'from': 'a', 'to': 'b', 'phase': 'finished', 'counts': {'rewrapped': 3}}
    ).status_code == 201


def test_key_grants_delete_refuses_unsafe_retirement(client, h, services):
    assert client.simulate_delete('/keys/grants/oek-1', headers=h['admin']).status_code == 409
    _published(client, h, services)
    assert client.simulate_delete('/keys/grants/bad%20id',
                                  headers=h['admin']).status_code in (404, 422)
    assert client.simulate_delete('/keys/grants/oek-7', headers=h['admin']).status_code == 404
    answer = client.simulate_delete('/keys/grants/oek-1', headers=h['admin'])
    assert answer.status_code == 409 and answer.json['code'] == 'key_active'
    answer = client.simulate_delete('/keys/grants/oek-0', headers=h['admin'])
    assert answer.status_code == 409 and answer.json['code'] == 'still_accepting'


def test_advocate_grants_delete(client, h, services):
    answer = client.simulate_delete('/advocates/keys/recovery/grants', headers=h['admin'])
    assert answer.status_code == 422
    services.couch.put(services.db('keyvault'), {'_id': 'grant:oek-1:adv-5', 'kek': 'oek-1',
                                                 'advocate': 'adv-5'})
    answer = client.simulate_delete('/advocates/keys/adv-5/grants', headers=h['admin'])
    assert answer.status_code == 200 and answer.json['deleted'] == 1
    assert services.couch.get_or_none(services.db('keyvault'), 'grant:oek-1:adv-5') is None
