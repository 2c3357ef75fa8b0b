"""The whole fle/1 flow through the real CLI and real HTTP: enroll, certify,
first key, seal, submit, open; then a scan of every database, log line and
audit event for the planted identifying values."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import schemas
from fieldvault import cli
from tests import factories
from tests.conftest import PASSWORD

pytestmark = pytest.mark.functional

CANARY = 'CANARY-ab12cd'
SIGNER_PASS = 'signer passphrase long enough'
ADVOCATE_PASS = 'advocate passphrase long enough'
RECOVERY_PASS = 'recovery passphrase long enough'



def run(runner, args, input_text=None):
    result = runner.invoke(cli, args, input=input_text, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def planted_identity(owner: str) -> dict:
    doc = factories.make_record('identity', owner=owner)
    for pointer in schemas.identifying_paths('identity'):
        parts = pointer.lstrip('/').split('/')
        target = doc
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        # Free-text fields take the canary; formatted ones (dates, phones)
        # keep the factory's valid values, which are sealed all the same.
        free_text = any(word in parts[-1] for word in ('name', 'location', 'shelter',
                                                       'identifiers', 'marks'))
        if free_text and isinstance(target.get(parts[-1]), str):
            target[parts[-1]] = f'{CANARY}-{parts[-1]}'
    return doc


def test_enroll_certify_first_key_seal_submit_open(live, services, users, tmp_path,
                                                   captured_logs, test_config):
    users.create('admin-1', ['admin'])
    users.create('adv-1', ['advocate'], team='team-a')
    users.create('worker-1', ['worker'], team='team-a')
    users.create('adv-other', ['advocate'], team='team-b')
    runner = CliRunner()
    admin_home, adv_home, worker_home = (str(tmp_path / name) for name in ('a', 'v', 'w'))
    other_home = str(tmp_path / 'o')

    for home, name in ((admin_home, 'admin-1'), (adv_home, 'adv-1'),
                       (worker_home, 'worker-1'), (other_home, 'adv-other')):
        run(runner, ['login', '--server', live.url, '--username', name, '--home', home,
                     '--password', PASSWORD])

    out = run(runner, ['admin', '--home', admin_home, 'init-signer'],
              f'{SIGNER_PASS}\n{SIGNER_PASS}\n')
    signer_fingerprint = out.split('fingerprint: ')[1].splitlines()[0]

    out = run(runner, ['advocate', '--home', adv_home, 'enroll'],
              f'{ADVOCATE_PASS}\n{ADVOCATE_PASS}\n')
    adv_fingerprint = out.split('admin: ')[1].strip()

    # A wrong fingerprint read over the phone stops the certification.
    wrong = runner.invoke(cli, ['admin', '--home', admin_home, 'certify', 'adv-1',
                                '--fingerprint', '0000 0000'], input=f'{SIGNER_PASS}\n')
    assert wrong.exit_code != 0 and 'mismatch' in wrong.output
    # The server's fingerprint is never shown, so nobody copies it from there.
    assert 'do not trust this server' in wrong.output
    assert adv_fingerprint not in wrong.output
    assert adv_fingerprint.replace(' ', '')[:8] not in wrong.output.replace(' ', '')
    run(runner, ['admin', '--home', admin_home, 'certify', 'adv-1',
                 '--fingerprint', adv_fingerprint], f'{SIGNER_PASS}\n')

    recovery_file = tmp_path / 'recovery.json'
    run(runner, ['recovery', 'create', '--out', str(recovery_file)],
        f'{RECOVERY_PASS}\n{RECOVERY_PASS}\n')
    run(runner, ['keys', '--home', admin_home, 'init', '--kid', 'oek-1', '--org',
                 test_config.org, '--recovery', str(recovery_file)], f'{SIGNER_PASS}\n')

    # The worker pins the signer and submits a desk intake sealed locally.
    run(runner, ['pin', '--home', worker_home, '--fingerprint', signer_fingerprint])
    run(runner, ['pin', '--home', adv_home, '--fingerprint', signer_fingerprint])
    record = planted_identity('worker-1')
    record['org'] = test_config.org
    record_file = tmp_path / 'record.json'
    record_file.write_text(json.dumps(record))
    out = run(runner, ['intake', '--home', worker_home, 'submit', str(record_file)])
    assert f'submitted {record["_id"]}' in out

    # Stored sealed: no identifying value in the records database.
    stored = services.couch.get(services.db('records'), record['_id'])
    for pointer in schemas.identifying_paths('identity'):
        field = pointer.lstrip('/').split('/')[0]
        if field in stored and stored[field] is not None:
            assert isinstance(stored[field], dict)

    # The advocate opens it locally with the stated purpose.
    out = run(runner, ['advocate', '--home', adv_home, 'open', record['_id'],
                       '--purpose', 'case_management'], f'{ADVOCATE_PASS}\n')
    opened = json.loads(out[out.index('{'):])
    for pointer in schemas.identifying_paths('identity'):
        parts = pointer.lstrip('/').split('/')
        expected, got = record, opened
        for part in parts:
            expected = expected.get(part) if isinstance(expected, dict) else None
            got = got.get(part) if isinstance(got, dict) else None
        assert got == expected, pointer

    # A wrong passphrase is refused without detail.
    bad = runner.invoke(cli, ['advocate', '--home', adv_home, 'open', record['_id'],
                              '--purpose', 'case_management'], input='wrong passphrase!!\n')
    assert bad.exit_code != 0 and 'wrong passphrase' in bad.output

    # An advocate of another team gets a 404, as for a missing record.
    other = runner.invoke(cli, ['advocate', '--home', other_home, 'open', record['_id'],
                                '--purpose', 'case_management'], input=f'{ADVOCATE_PASS}\n')
    assert other.exit_code != 0

    audit = [row['doc'] for row in services.couch.all_docs(services.db('audit'),
                                                             include_docs=True)]
    opened_events = [event for event in audit if event['kind'] == 'record_released']
    # The wrong passphrase fails before the release; the other team is refused.
    assert len(opened_events) == 1
    assert opened_events[0]['details']['purpose'] == 'case_management'
    assert opened_events[0]['actor'] == 'user:adv-1'
    assert opened_events[0]['subject'] == record['_id']

    # The scan: every database, every log line, every audit event.
    everything = captured_logs.getvalue()
    for logical in ('records', 'keyvault', 'directory', 'config', 'audit', 'quarantine'):
        everything += json.dumps(services.couch.all_docs(services.db(logical),
                                                         include_docs=True))
    assert CANARY in json.dumps(record)
    assert CANARY not in everything


def test_plaintext_identifying_field_is_refused_naming_the_field(client, users, role_tokens):
    record = planted_identity('worker-1')
    result = client.simulate_post('/records', json={'document': record, 'envelopes': []},
                                  headers=users.bearer(role_tokens['worker']))
    assert result.status_code == 422
    assert CANARY not in result.text
    identifying = {pointer.lstrip('/').split('/')[0]
                   for pointer in schemas.identifying_paths('identity')}
    assert identifying & set(result.json['fields'])
