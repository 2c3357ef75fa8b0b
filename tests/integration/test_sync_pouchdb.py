"""Real PouchDB 9 tablets (node) against fieldvault under gunicorn."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.conftest import ORG
from tests.integration.records import plain_contact, publish_test_manifest, sealed_contact

pytestmark = pytest.mark.integration

#: Records per device; the issue asks 200.
PER_DEVICE = 200


def _sealed_batch(worker: str, count: int, manifest_body: dict | None = None,
                  plaintexts: list[dict] | None = None) -> tuple[list[dict], list[dict]]:
    records, envelopes = [], []
    for _index in range(count):
        plain = plain_contact(worker, ORG)
        if plaintexts is not None:
            plaintexts.append(plain)
        doc, envelope = sealed_contact(worker, ORG, manifest_body=manifest_body, plain=plain)
        records.append(doc)
        envelopes.append(envelope)
    return records, envelopes


PASSWORD = 'correct horse battery staple'
SIGNER_PASS = 'signer passphrase long enough'
ADVOCATE_PASS = 'advocate passphrase long enough'


def _cli(args, input_text=None):
    from click.testing import CliRunner

    from fieldvault import cli
    result = CliRunner().invoke(cli, args, input=input_text, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _org_key_ceremony(stack, tmp_path) -> tuple[dict, str]:
    """Run the real CLI key ceremony against the gunicorn service.

    Returns:
        (the verified published manifest body, the advocate's CLI home).
    """
    import httpx

    import keys
    url = stack.service.url
    admin_home, adv_home = str(tmp_path / 'cli-admin'), str(tmp_path / 'cli-adv')
    for home, name in ((admin_home, 'admin-1'), (adv_home, 'adv-1')):
        _cli(['login', '--server', url, '--username', name, '--home', home,
              '--password', PASSWORD])
    out = _cli(['admin', '--home', admin_home, 'init-signer'], f'{SIGNER_PASS}\n{SIGNER_PASS}\n')
    signer_fingerprint = out.split('fingerprint: ')[1].splitlines()[0]
    out = _cli(['advocate', '--home', adv_home, 'enroll'], f'{ADVOCATE_PASS}\n{ADVOCATE_PASS}\n')
    _cli(['admin', '--home', admin_home, 'certify', 'adv-1', '--fingerprint',
          out.split('admin: ')[1].strip()], f'{SIGNER_PASS}\n')
    recovery_file = tmp_path / 'recovery.json'
    _cli(['recovery', 'create', '--out', str(recovery_file)],
         'recovery passphrase long enough\n' * 2)
    _cli(['keys', '--home', admin_home, 'init', '--kid', 'oek-1', '--org', ORG,
          '--recovery', str(recovery_file)], f'{SIGNER_PASS}\n')
    _cli(['pin', '--home', adv_home, '--fingerprint', signer_fingerprint])
    # What a tablet does: fetch the manifest (public) and verify it against
    # the signing key pinned at enrollment.
    signed = httpx.get(url + '/keys/manifest', timeout=10).json()['signed']
    pinned = httpx.get(url + '/keys/signer', timeout=10,
                       headers={'Authorization': 'Bearer ' + _token(url, 'adv-1')}).json()
    return keys.verify_manifest(signed, pinned['public']), adv_home


def _token(url: str, username: str) -> str:
    import httpx
    answer = httpx.post(url + '/auth/login', json={'username': username, 'password': PASSWORD},
                        timeout=10)
    return answer.json()['token']


def test_two_devices_sync_live_and_each_gets_only_its_own(stack, tmp_path):
    accounts = stack.services.accounts
    accounts.create_user('admin-1', PASSWORD, ['admin'])
    accounts.create_user('adv-1', PASSWORD, ['advocate'], team='team-a')
    for worker in ('w-alice', 'w-bob'):
        accounts.create_user(worker, PASSWORD, ['worker'], team='team-a')
    # Keys first, through the CLI and the service's HTTP API; the tablets
    # then seal to the published org key.
    manifest, adv_home = _org_key_ceremony(stack, tmp_path)
    stack.services.couch.put(stack.services.db('config'), {'_id': 'service-areas', 'areas': []})
    alice, bob = stack.enroll('w-alice'), stack.enroll('w-bob')
    plaintexts: list[dict] = []
    alice_docs, alice_env = _sealed_batch('w-alice', PER_DEVICE, manifest, plaintexts)
    bob_docs, bob_env = _sealed_batch('w-bob', PER_DEVICE, manifest, plaintexts)
    # Both tablets sync live at once: alice with Basic, bob with a bearer token.
    runs = [
        stack.tablet(alice, 'sync_live', name='alice', docs=alice_docs + alice_env,
                     expect=PER_DEVICE * 2, background=True, timeout_ms=120000),
        stack.tablet(bob, 'sync_live', name='bob', docs=bob_docs + bob_env, bearer=True,
                     expect=PER_DEVICE * 2, background=True, timeout_ms=120000),
    ]
    results = [json.loads(proc.communicate(timeout=180)[0].decode().splitlines()[-1])
               for proc in runs]
    assert all(result["ok"] and not result["denied"] for result in results), [
        (r["ok"], r.get("denied"), r.get("error")) for r in results]
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
    # An advocate opens all 400 with the CLI (one key unlock, one audited
    # release per record) and reads back every plaintext value.
    ids_file = tmp_path / 'ids.txt'
    ids_file.write_text('\n'.join(doc['_id'] for doc in alice_docs + bob_docs))
    out = _cli(['advocate', '--home', adv_home, 'open-many', '--ids-file', str(ids_file),
                '--purpose', 'case_management'], f'{ADVOCATE_PASS}\n')
    opened = {doc['_id']: doc for doc in
              (json.loads(line) for line in out.splitlines() if line.startswith('{'))}
    assert len(opened) == PER_DEVICE * 2
    for plain in plaintexts:
        got = opened[plain['_id']]
        for key, value in plain.items():
            assert got.get(key) == value, (plain['_id'], key)
    audit = stack.services.couch.all_docs(stack.services.db('audit'), include_docs=True)
    assert sum(row['doc'].get('kind') == 'record_released' for row in audit) == PER_DEVICE * 2


def test_bad_documents_are_refused_per_doc_and_quarantined(stack):
    alice = stack.enroll('w-carol')
    publish_test_manifest(stack.services.couch, stack.services.db('config'), ORG)
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
    # Ids that failed the id rules are never recorded as they were sent.
    assert sorted(row['doc']['doc_id'] for row in quarantined) == sorted(
        [doc['_id'] for doc in bad[:2] + bad[3:4]] + ['invalid-id'] * 2)
    assert all(row['doc']['device'] == alice['device_id'] for row in quarantined)
    # A second push sends nothing again (envelopes included: _revs_diff knows them).
    again = stack.tablet(alice, 'push', name='carol')
    assert again['ok'] and again['result']['docs_written'] == 0, again


def test_deletions_by_remove_and_by_put_replicate_as_bare_tombstones(stack):
    creds = stack.enroll('w-del')
    publish_test_manifest(stack.services.couch, stack.services.db('config'), ORG)
    docs, envelopes = _sealed_batch('w-del', 2)
    first = stack.tablet(creds, 'push', name='del', docs=docs + envelopes)
    assert first['ok'] and first['denied'] == 0, first
    removed, put_deleted = docs[0]['_id'], docs[1]['_id']
    deleted = stack.tablet(creds, 'push', name='del', remove=[removed],
                           put_deleted=[put_deleted])
    assert deleted['ok'] and deleted['denied'] == 0, deleted
    assert deleted['result']['docs_written'] == 2, deleted
    records = stack.services.db('records')
    for doc_id in (removed, put_deleted):
        assert stack.services.couch.get_or_none(records, doc_id) is None
        tombstone = stack.services.couch.open_revs(records, doc_id, 'all')[0]['ok']
        assert set(tombstone) == {'_id', '_rev', '_revisions', '_deleted', 'owner'}
        assert tombstone['owner'] == 'w-del'
    # The worker's other tablet pulls the deletions.
    other = stack.tablet(stack.enroll('w-del'), 'pull', name='del-other')
    assert other['ok'] and other['result']['docs_written'] == 2, other
    assert not {removed, put_deleted} & set(other['ids'])


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
    publish_test_manifest(stack.services.couch, stack.services.db('config'), ORG)
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
