"""Sealing a youth through the real CLI over real HTTP, end to end:

set up keys, submit the youth's records (and another youth's), take a
key-vault backup and an old copy of the records database, seal by two
people, then prove that no key opens the youth's fields (every org private
key, from the advocate's grant and the recovery grant, plus the old record
copies plus every envelope left), that a key-vault restore does not bring
the envelopes back, that the other youth is untouched, that the audit log
is intact and holds no identifying value."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

import keys
import schemas
from fieldvault import cli
from tests import factories
from tests.conftest import PASSWORD
from tests.functional.test_encryption_flow import (
    ADVOCATE_PASS,
    CANARY,
    RECOVERY_PASS,
    SIGNER_PASS,
    planted_identity,
    run,
)

pytestmark = pytest.mark.functional




def _all_org_keys(services, recovery_file) -> keys.Keyring:
    """Every org private key there is: via the advocate's grants and the recovery grant."""
    directory, keyvault = services.db('directory'), services.db('keyvault')
    pinned = services.couch.get(services.db('config'), 'org-signer')['public']
    advocate_doc = services.couch.get(directory, 'apk:adv-1')
    advocate = keys.AdvocateKey.unwrap(advocate_doc['wrapped'], ADVOCATE_PASS)
    recovery_blob = json.loads(recovery_file.read_text())
    recovery = keys.AdvocateKey.unwrap(recovery_blob['wrapped'], RECOVERY_PASS)
    org_keys = {}
    for grant in services.couch.iter_prefix(keyvault, 'grant:'):
        holder = advocate if grant['advocate'] == 'adv-1' else recovery
        org_key = keys.open_grant(grant, holder, org=services.config.org,
                                  pinned_public_b64=pinned)
        org_keys[org_key.kid] = org_key
    assert org_keys
    return keys.Keyring(org_keys.values())


def _open(document, envelopes, keyring, org):
    return keys.open_document(document, envelopes=envelopes, keyring=keyring,
                              paths=schemas.identifying_paths(document['type']), org=org)


def test_two_person_sealing_shreds_the_youth_for_every_key(live, services, users, tmp_path,
                                                           captured_logs, test_config, env):
    org = test_config.org
    users.create('admin-1', ['admin'], team='team-a')
    users.create('admin-2', ['admin'], team='team-a')
    users.create('sup-1', ['supervisor'], team='team-a')
    users.create('adv-1', ['advocate'], team='team-a')
    users.create('worker-1', ['worker'], team='team-a')
    runner = CliRunner()
    homes = {name: str(tmp_path / name) for name in
             ('admin-1', 'admin-2', 'sup-1', 'adv-1', 'worker-1')}
    for name, home in homes.items():
        run(runner, ['login', '--server', live.url, '--username', name, '--home', home,
                     '--password', PASSWORD])
    out = run(runner, ['admin', '--home', homes['admin-1'], 'init-signer'],
              f'{SIGNER_PASS}\n{SIGNER_PASS}\n')
    signer_fingerprint = out.split('fingerprint: ')[1].splitlines()[0]
    out = run(runner, ['advocate', '--home', homes['adv-1'], 'enroll'],
              f'{ADVOCATE_PASS}\n{ADVOCATE_PASS}\n')
    run(runner, ['admin', '--home', homes['admin-1'], 'certify', 'adv-1',
                 '--fingerprint', out.split('admin: ')[1].strip()], f'{SIGNER_PASS}\n')
    recovery_file = tmp_path / 'recovery.json'
    run(runner, ['recovery', 'create', '--out', str(recovery_file)],
        f'{RECOVERY_PASS}\n{RECOVERY_PASS}\n')
    run(runner, ['keys', '--home', homes['admin-1'], 'init', '--kid', 'oek-1', '--org', org,
                 '--recovery', str(recovery_file)], f'{SIGNER_PASS}\n')
    for name in ('worker-1', 'adv-1'):
        run(runner, ['pin', '--home', homes[name], '--fingerprint', signer_fingerprint])

    # Youth X: two identity records and a contact, linked by client_id; youth Y: one identity.
    client_x = str(uuid.uuid4())
    records_x = [planted_identity('worker-1') for _ in range(2)]
    for record in records_x:
        record['client_id'] = client_x
    contact = factories.make_record('contact', owner='worker-1', client_id=client_x,
                                    notes=f'{CANARY}-notes')
    records_x.append(contact)
    record_y = planted_identity('worker-1')
    for record in [*records_x, record_y]:
        record['org'] = org
        path = tmp_path / f'{record["_id"].replace(":", "_")}.json'
        path.write_text(json.dumps(record))
        run(runner, ['intake', '--home', homes['worker-1'], 'submit', str(path)])
    run(runner, ['advocate', '--home', homes['adv-1'], 'open', records_x[0]['_id'],
                 '--purpose', 'record_correction'], f'{ADVOCATE_PASS}\n')

    # What an adversary might hold later: an old copy of the records database,
    # and a key-vault backup taken before the sealing.
    records_db, keyvault = services.db('records'), services.db('keyvault')
    old_records = {row['id']: row['doc'] for row in
                   services.couch.all_docs(records_db, include_docs=True)}
    backup = tmp_path / 'keyvault.jsonl'
    result = runner.invoke(cli, ['keyvault', 'backup', '--out', str(backup)], env=env)
    assert result.exit_code == 0, result.output
    envelope_ids_x = {f'rk:{rkid}' for record in records_x
                      for rkid in old_records[record['_id']]['fle']['keys']}
    old_revs = {doc_id: services.couch.get(keyvault, doc_id)['_rev'] for doc_id in envelope_ids_x}
    assert len(envelope_ids_x) == 3

    # Two people: the proposer cannot approve, nor can a second admin.
    out = run(runner, ['sealing', '--home', homes['admin-1'], 'propose', '--client-id', client_x,
                       '--reason', 'erasure_request'])
    assert 'proposed for 3 records' in out
    sealing_id = out.split('sealing ')[1].split()[0]
    for approver in ('admin-1', 'admin-2'):
        refused = runner.invoke(cli, ['sealing', '--home', homes[approver], 'approve',
                                      sealing_id, '--yes'])
        assert refused.exit_code != 0 and 'second_person_required' in refused.output
    assert all(services.couch.get_or_none(keyvault, doc_id) for doc_id in envelope_ids_x)
    out = run(runner, ['sealing', '--home', homes['sup-1'], 'approve', sealing_id, '--yes'])
    assert 'sealed 3 records; 3 envelopes destroyed' in out
    again = runner.invoke(cli, ['sealing', '--home', homes['sup-1'], 'approve', sealing_id,
                                '--yes'])
    assert again.exit_code != 0 and 'already_sealed' in again.output

    # The envelopes are gone, and compaction dropped their old revision bodies.
    for doc_id in envelope_ids_x:
        assert services.couch.get_or_none(keyvault, doc_id) is None
        old = services.couch.request('GET', f'/{keyvault}/{doc_id}',
                                     params={'rev': old_revs[doc_id]}, ok=(404,))
        assert old.status_code == 404 or not {'enc', 'ct'} & set(old.json()), old.text

    # Records keep their non-identifying fields (for counts) and their ciphertext.
    for record in records_x:
        stored = services.couch.get(records_db, record['_id'])
        assert stored['client_id'] == client_x and stored['type'] == record['type']

    # Every org private key + the old record copies + every envelope left: nothing opens.
    keyring = _all_org_keys(services, recovery_file)
    remaining = list(services.couch.iter_prefix(keyvault, 'rk:'))
    for record in records_x:
        with pytest.raises(keys.InvalidCiphertext):
            _open(old_records[record['_id']], remaining, keyring, org)
        with pytest.raises(keys.InvalidCiphertext):
            _open(services.couch.get(records_db, record['_id']), remaining, keyring, org)
    opened_y = _open(old_records[record_y['_id']], remaining, keyring, org)
    assert opened_y['legal_first_name'] == record_y['legal_first_name']
    denied = runner.invoke(cli, ['advocate', '--home', homes['adv-1'], 'open',
                                 records_x[1]['_id'], '--purpose', 'case_management'],
                           input=f'{ADVOCATE_PASS}\n')
    assert denied.exit_code != 0 and '410 sealed' in denied.output

    # Restoring the older backup into the live vault brings nothing of X back ...
    result = runner.invoke(cli, ['keyvault', 'restore', str(backup)], env=env)
    assert result.exit_code == 0, result.output
    assert 'restored 0 documents' in result.output
    assert all(services.couch.get_or_none(keyvault, doc_id) is None for doc_id in envelope_ids_x)
    # ... nor into an empty vault after a disaster (the tombstones went with it;
    # the sealing record in the directory still lists the shredded keys).
    services.couch.delete_db(keyvault)
    services.couch.ensure_db(keyvault)
    result = runner.invoke(cli, ['keyvault', 'restore', str(backup)], env=env)
    assert result.exit_code == 0, result.output
    assert '3 shredded envelopes skipped' in result.output
    assert all(services.couch.get_or_none(keyvault, doc_id) is None for doc_id in envelope_ids_x)
    # Each shredded key is a deleted envelope again, as the sealing left it: a
    # tablet's late push of one is refused, and opening says "sealed".
    rows = services.couch.all_docs(keyvault, keys=sorted(envelope_ids_x))
    assert all(row['value']['deleted'] for row in rows), rows
    denied = runner.invoke(cli, ['advocate', '--home', homes['adv-1'], 'open',
                                 records_x[0]['_id'], '--purpose', 'case_management'],
                           input=f'{ADVOCATE_PASS}\n')
    assert denied.exit_code != 0 and '410 sealed' in denied.output
    remaining = list(services.couch.iter_prefix(keyvault, 'rk:'))
    keyring = _all_org_keys(services, recovery_file)
    assert _open(old_records[record_y['_id']], remaining, keyring, org)['legal_last_name'] \
        == record_y['legal_last_name']
    for record in records_x:
        with pytest.raises(keys.InvalidCiphertext):
            _open(old_records[record['_id']], remaining, keyring, org)

    # The audit log: every step is there, the chain is intact, no identifying value.
    audit = list(services.couch.iter_prefix(services.db('audit'), 'event:'))
    kinds = [event['kind'] for event in audit]
    for kind in ('login', 'advocate_key_enrolled', 'grant_stored', 'record_submitted',
                 'record_released', 'keyvault_backup', 'sealing_proposed', 'youth_sealed',
                 'keyvault_restored'):
        assert kind in kinds, kind
    sealed = next(event for event in audit if event['kind'] == 'youth_sealed')
    assert sealed['actor'] == 'user:sup-1' and sealed['team'] == 'team-a'
    assert sealed['details']['envelopes'] == 3
    opened = next(event for event in audit if event['kind'] == 'record_released')
    assert opened['details']['purpose'] == 'record_correction'
    text = json.dumps(audit) + captured_logs.getvalue()
    assert CANARY not in text
    assert client_x not in json.dumps(audit)
    for record in [*records_x, record_y]:
        for pointer in schemas.identifying_paths(record['type']):
            value = record
            for part in pointer.lstrip('/').split('/'):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, str) and len(value) >= 6:
                assert value not in text, pointer
    verified = runner.invoke(cli, ['audit', 'verify'], env=env)
    assert verified.exit_code == 0, verified.output
