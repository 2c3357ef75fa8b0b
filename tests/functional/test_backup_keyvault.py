"""`fieldvault keyvault backup|restore`: file mode and header, the retention
window, no resurrection of deleted or shredded documents, bad files."""

from __future__ import annotations

import json
import os
import stat

import pytest
from click.testing import CliRunner

from fieldvault import cli

pytestmark = pytest.mark.functional



def _invoke(env, *args):
    return CliRunner().invoke(cli, list(args), env=env)


def _seed(services):
    db = services.db('keyvault')
    for index in range(3):
        services.couch.put(db, {'_id': f'rk:{index:032x}', 'type': 'rk', 'kek': 'oek-1'})
    services.couch.put(db, {'_id': 'grant:oek-1:adv-1', 'type': 'grant', 'advocate': 'adv-1'})


def test_backup_writes_a_private_file_with_a_header(services, env, tmp_path):
    _seed(services)
    out = tmp_path / 'kv.jsonl'
    result = _invoke(env, 'keyvault', 'backup', '--out', str(out))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    assert header['format'] == 'fieldvault-keyvault-backup/1' and header['created_at']
    assert len(lines) == 5 and all('_rev' not in json.loads(line) for line in lines[1:])
    again = _invoke(env, 'keyvault', 'backup', '--out', str(out))
    assert again.exit_code != 0 and 'exists' in again.output


def test_restore_brings_back_lost_documents_only(services, env, tmp_path):
    _seed(services)
    db = services.db('keyvault')
    out = tmp_path / 'kv.jsonl'
    assert _invoke(env, 'keyvault', 'backup', '--out', str(out)).exit_code == 0
    # A grant deleted on purpose (revocation) stays deleted; a lost vault comes back.
    grant = services.couch.get(db, 'grant:oek-1:adv-1')
    services.couch.delete(db, grant['_id'], grant['_rev'])
    result = _invoke(env, 'keyvault', 'restore', str(out))
    assert result.exit_code == 0, result.output
    assert services.couch.get_or_none(db, 'grant:oek-1:adv-1') is None
    services.couch.delete_db(db)
    services.couch.ensure_db(db)
    result = _invoke(env, 'keyvault', 'restore', str(out))
    assert result.exit_code == 0 and 'restored 4 documents' in result.output, result.output
    assert len(list(services.couch.iter_prefix(db, 'rk:'))) == 3


def test_restore_skips_envelopes_shredded_after_the_backup(services, env, tmp_path):
    _seed(services)
    db = services.db('keyvault')
    out = tmp_path / 'kv.jsonl'
    assert _invoke(env, 'keyvault', 'backup', '--out', str(out)).exit_code == 0
    # A sealing after the backup: its directory record lists the shredded key.
    services.couch.put(services.db('directory'), {
        '_id': 'sealing:' + 'a' * 32, 'type': 'sealing', 'status': 'sealed',
        'rkids': [f'{1:032x}']})
    services.couch.delete_db(db)
    services.couch.ensure_db(db)
    result = _invoke(env, 'keyvault', 'restore', str(out))
    assert result.exit_code == 0 and '1 shredded envelopes skipped' in result.output
    assert services.couch.get_or_none(db, f'rk:{1:032x}') is None
    assert services.couch.get_or_none(db, f'rk:{2:032x}') is not None


def _write_backup(path, created_at, docs=()):
    lines = [json.dumps({'format': 'fieldvault-keyvault-backup/1', 'created_at': created_at})]
    lines += [json.dumps(doc) for doc in docs]
    path.write_text('\n'.join(lines) + '\n')


def test_restore_refuses_a_backup_older_than_the_retention_window(services, env, tmp_path):
    old = tmp_path / 'old.jsonl'
    _write_backup(old, '2020-01-01T00:00:00Z', [{'_id': 'rk:' + 'b' * 32, 'type': 'rk'}])
    result = _invoke(env, 'keyvault', 'restore', str(old))
    assert result.exit_code != 0 and 'retention window (30 days' in result.output
    assert services.couch.get_or_none(services.db('keyvault'), 'rk:' + 'b' * 32) is None
    # The window is a setting.
    wide = _invoke({**env, 'FIELDVAULT_KEYVAULT_BACKUP_RETENTION_DAYS': '100000'},
                   'keyvault', 'restore', str(old))
    assert wide.exit_code == 0, wide.output


@pytest.mark.parametrize('content', [
    '', 'not json\n', '{"format": "other", "created_at": "2026-01-01T00:00:00Z"}\n',
    '{"format": "fieldvault-keyvault-backup/1"}\n',
    '{"format": "fieldvault-keyvault-backup/1", "created_at": "yesterday"}\n',
    '{"format": "fieldvault-keyvault-backup/1", "created_at": "2999-01-01T00:00:00Z"}\n',
])
def test_restore_refuses_files_that_are_not_backups(services, env, tmp_path, content):
    path = tmp_path / 'bad.jsonl'
    path.write_text(content)
    result = _invoke(env, 'keyvault', 'restore', str(path))
    assert result.exit_code != 0, content


def test_restore_refuses_a_bad_document_line(services, env, tmp_path):
    import datetime as dt
    now = dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    for doc in ({'_id': '_design/x'}, {'_id': 'rk:1', '_rev': '1-a'}, {'no_id': 1}):
        path = tmp_path / 'bad.jsonl'
        _write_backup(path, now, [doc])
        result = _invoke(env, 'keyvault', 'restore', str(path))
        assert result.exit_code != 0 and 'line 2' in result.output, doc


def test_backup_and_restore_counts_add_up_and_say_what_they_count(services, env, tmp_path):
    _seed(services)
    db = services.db('keyvault')
    services.couch.put(db, {'_id': 'shredded:' + 'c' * 32, 'type': 'shredded',
                            'sealing': 'sealing:' + 'd' * 32})
    out = tmp_path / 'kv.jsonl'
    backup = _invoke(env, 'keyvault', 'backup', '--out', str(out))
    assert backup.exit_code == 0, backup.output
    assert 'backed up 5 key-vault documents' in backup.output
    assert '3 envelopes, 1 grants, 1 sealing tombstones, 0 other' in backup.output
    # Since the backup: one envelope lost, one grant deleted on purpose, one envelope shredded.
    lost = services.couch.get(db, f'rk:{0:032x}')
    services.couch.delete_db(db)
    services.couch.ensure_db(db)
    for index in (1, 2):
        services.couch.put(db, {'_id': f'rk:{index:032x}', 'type': 'rk', 'kek': 'oek-1'})
    grant = services.couch.put(db, {'_id': 'grant:oek-1:adv-1', 'type': 'grant',
                                    'advocate': 'adv-1'})
    services.couch.delete(db, 'grant:oek-1:adv-1', grant)
    services.couch.put(services.db('directory'), {
        '_id': 'sealing:' + 'a' * 32, 'type': 'sealing', 'status': 'sealed',
        'rkids': [f'{2:032x}']})
    restore = _invoke(env, 'keyvault', 'restore', str(out))
    assert restore.exit_code == 0, restore.output
    assert ('5 documents in the backup: restored 1 documents; 1 already present; '
            '1 deleted in the vault (left deleted); 1 shredded envelopes skipped; '
            '1 sealing tombstones skipped') in restore.output
    assert services.couch.get(db, lost['_id'])['kek'] == 'oek-1'
    event = [row['doc'] for row in services.couch.all_docs(services.db('audit'),
                                                            include_docs=True)
             if row['doc'].get('kind') == 'keyvault_restored'][-1]['details']
    assert event['documents'] == sum(event[name] for name in (
        'restored', 'already_present', 'deleted_in_vault', 'shredded_skipped',
        'tombstones_skipped'))
