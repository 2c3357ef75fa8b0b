"""Audit and key-vault backup commands of ``fieldvault`` (operator commands).

``audit verify`` and ``keyvault backup|restore`` read CouchDB directly with
the service's ``Config`` (like ``users bootstrap-admin``). A backup holds
sealed envelopes and grants only: no key that opens them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

import click

import fle
from service.audit import GENESIS, event_hash
from service.cli_ops import OperatorGroup, operator_services
from service.sealing import TOMBSTONE_PREFIX, leave_deleted_envelopes, shredded_rkids

__all__ = ['verify_chain', 'BACKUP_FORMAT', 'audit_verify', 'keyvault']

BACKUP_FORMAT = 'fieldvault-keyvault-backup/1'
_PREFIX = 'event:'


def verify_chain(events: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Yield one sentence per problem found in the audit chain, in chain order.

    Memory is constant: only the previous event's seq and hash are kept.
    Each problem names the event (seq and kind) where it shows:

    * an **edited** event no longer matches its own hash;
    * a **removed** event leaves a gap in ``seq`` (and its successor's
      ``prev`` no longer matches);
    * a **reordered** event sits under an id that is not its ``seq``, or
      its ``prev`` names another event than the one before it.
    """
    last_seq = 0
    last_hash: str | None = GENESIS
    for event in events:
        seq, kind = event.get('seq'), event.get('kind')
        label = f'event seq {seq} (kind {kind})'
        position = event.get('_id', '')[len(_PREFIX):]
        if not isinstance(seq, int) or not position.isdigit() or int(position) != seq:
            yield (f'reordered: {label} is stored at position {position}; '
                   f'events were moved or renumbered')
        elif seq <= last_seq:
            yield f'reordered: {label} comes after seq {last_seq}'
        elif seq != last_seq + 1:
            missing = (f'seq {last_seq + 1}' if seq == last_seq + 2
                       else f'seq {last_seq + 1} to {seq - 1}')
            yield f'removed: {missing} missing before {label}'
        elif event.get('prev') != last_hash:
            yield (f'chain broken at {label}: its prev does not match the hash of seq '
                   f'{last_seq} (an event was removed, replaced or reordered)')
        if event_hash(event) != event.get('hash'):
            yield f'edited: {label} does not match its hash'
        if isinstance(seq, int):
            last_seq = max(last_seq, seq)
        last_hash = event.get('hash')


#: What each key-vault document is, by ``_id`` prefix (the rest counts as ``other``).
_KINDS = ((fle.ENVELOPE_PREFIX, 'envelopes'), ('grant:', 'grants'),
          (TOMBSTONE_PREFIX, 'sealing tombstones'))


def _kind(doc_id: str) -> str:
    return next((kind for prefix, kind in _KINDS if doc_id.startswith(prefix)), 'other')


@click.command('verify')
@click.option('--head', default=None, metavar='SEQ:HASH',
              help='A head noted down earlier (printed by a previous verify); it must '
                   'still be in the chain, which detects truncation and re-chaining.')
@click.option('--page-size', default=500, show_default=True, type=click.IntRange(1, 5000))
def audit_verify(head: str | None, page_size: int) -> None:
    """Walk the whole chain; name every edited, removed or reordered event."""
    services = operator_services()
    db = services.db('audit')
    anchor = None
    if head:
        seq_text, _, hash_text = head.partition(':')
        if not seq_text.isdigit() or len(hash_text) != 64:
            raise click.BadParameter('expected SEQ:HASH', param_hint='--head')
        anchor = (int(seq_text), hash_text)
    state: dict[str, Any] = {'count': 0, 'seq': 0, 'hash': GENESIS, 'anchor_seen': False}

    def walk() -> Iterator[dict[str, Any]]:
        for event in services.couch.iter_prefix(db, _PREFIX, page_size=page_size):
            state['count'] += 1
            state['seq'], state['hash'] = event.get('seq', 0), event.get('hash')
            if anchor and event.get('seq') == anchor[0]:
                state['anchor_seen'] = event.get('hash') == anchor[1]
            yield event

    problems = 0
    for problem in verify_chain(walk()):
        problems += 1
        click.echo(f'TAMPERED {problem}')
    if anchor and not state['anchor_seen']:
        problems += 1
        click.echo(f'TAMPERED anchor: seq {anchor[0]} with the noted hash is not in the '
                   f'chain (truncated or re-chained)')
    services.couch.close()
    if problems:
        raise click.ClickException(f'audit log tampered: {problems} problem(s) in '
                                   f'{state["count"]} events')
    click.echo(f'audit log intact: {state["count"]} events; head '
               f'{state["seq"]}:{state["hash"]}')
    click.echo('note the head elsewhere and pass it to a later verify with --head')


@click.group(cls=OperatorGroup)
def keyvault() -> None:
    """Key-vault backup and restore (operator commands)."""


@keyvault.command('backup')
@click.option('--out', required=True, type=click.Path(dir_okay=False),
              help='File to write (mode 0600); refused if it exists.')
def keyvault_backup(out: str) -> None:
    """Write every key-vault document as JSON lines, with a header line."""
    services = operator_services()
    created_at = dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f'{out} exists; choose a new file') from None
    count = 0
    kinds = dict.fromkeys([kind for _prefix, kind in _KINDS] + ['other'], 0)
    with os.fdopen(fd, 'w', encoding='utf-8') as handle:
        handle.write(json.dumps({'format': BACKUP_FORMAT, 'created_at': created_at,
                                 'org': services.config.org,
                                 'db': services.db('keyvault')}) + '\n')
        for doc in services.couch.iter_prefix(services.db('keyvault'), ''):
            if doc['_id'].startswith('_'):
                continue
            doc = {k: v for k, v in doc.items() if k != '_rev'}
            handle.write(json.dumps(doc, sort_keys=True, separators=(',', ':')) + '\n')
            count += 1
            kinds[_kind(doc['_id'])] += 1
    services.audit.record('keyvault_backup', actor='cli:operator',
                          details={'documents': count, 'created_at': created_at,
                                   'kinds': {k.replace(' ', '_'): v
                                             for k, v in kinds.items()}})
    services.couch.close()
    shown = ', '.join(f'{number} {kind}' for kind, number in kinds.items())
    click.echo(f'backed up {count} key-vault documents to {out} (created_at {created_at}): '
               f'{shown}')


@keyvault.command('restore')
@click.argument('path', type=click.Path(exists=True, dir_okay=False))
def keyvault_restore(path: str) -> None:
    """Restore missing key-vault documents from a backup within the retention window.

    Documents that exist are left alone; envelopes a sealing shredded
    (even after the backup was taken) are skipped, and stay deleted.
    """
    services = operator_services()
    retention = services.config.keyvault_backup_retention_days
    with open(path, encoding='utf-8') as handle:
        try:
            header = json.loads(handle.readline())
            created = dt.datetime.strptime(header['created_at'], '%Y-%m-%dT%H:%M:%SZ')
        except (ValueError, KeyError, TypeError):
            raise click.ClickException('not a fieldvault key-vault backup') from None
        if header.get('format') != BACKUP_FORMAT:
            raise click.ClickException('not a fieldvault key-vault backup')
        age_days = (time.time() - created.replace(tzinfo=dt.timezone.utc).timestamp()) / 86400
        if age_days > retention:
            raise click.ClickException(
                f'backup from {header["created_at"]} is older than the retention window '
                f'({retention} days, FIELDVAULT_KEYVAULT_BACKUP_RETENTION_DAYS); it must be '
                f'destroyed, not restored')
        if age_days < -1:
            raise click.ClickException('backup is dated in the future; refusing it')
        db = services.db('keyvault')
        shredded = shredded_rkids(services.couch, db, services.db('directory'))
        restored = skipped = present = deleted = tombstones = total = 0
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal restored, present, deleted
            if not batch:
                return
            rows = services.couch.all_docs(db, keys=[doc['_id'] for doc in batch])
            # Only documents the vault has lost entirely come back: a
            # deleted one was deleted on purpose (a sealing, a revoked
            # advocate's grant, a retired version) and stays deleted.
            known = {row['id'] for row in rows if 'value' in row}
            gone = sum(1 for row in rows if row.get('value', {}).get('deleted'))
            docs = [doc for doc in batch if doc['_id'] not in known]
            deleted += gone
            present += len(batch) - len(docs) - gone
            results = services.couch.bulk_docs(db, docs) if docs else []
            restored += sum(1 for result in results if not result.get('error'))
            present += sum(1 for result in results if result.get('error'))
            batch.clear()

        for number, line in enumerate(handle, start=2):
            try:
                doc = json.loads(line)
                doc_id = doc['_id']
            except (ValueError, KeyError, TypeError):
                raise click.ClickException(f'line {number} is not a document') from None
            if not isinstance(doc_id, str) or doc_id.startswith('_') or '_rev' in doc:
                raise click.ClickException(f'line {number} is not a key-vault document')
            total += 1
            if doc_id.startswith(TOMBSTONE_PREFIX):
                tombstones += 1
                continue  # tombstones are written by sealings only, never restored
            if doc_id.startswith(fle.ENVELOPE_PREFIX) \
                    and doc_id[len(fle.ENVELOPE_PREFIX):] in shredded:
                skipped += 1
                continue
            batch.append(doc)
            if len(batch) >= 500:
                flush()
        flush()
    # As the sealing itself did: every shredded key stays a deleted rk:.
    leave_deleted_envelopes(services.couch, db, (fle.envelope_id(rkid) for rkid in shredded))
    services.audit.record('keyvault_restored', actor='cli:operator',
                          details={'documents': total, 'restored': restored,
                                   'shredded_skipped': skipped, 'already_present': present,
                                   'deleted_in_vault': deleted,
                                   'tombstones_skipped': tombstones,
                                   'backup_created_at': header['created_at']})
    services.couch.close()
    # The five numbers add up to the documents read: each one is counted once.
    click.echo(f'{total} documents in the backup: restored {restored} documents; '
               f'{present} already present; {deleted} deleted in the vault (left deleted); '
               f'{skipped} shredded envelopes skipped; {tombstones} sealing tombstones '
               f'skipped (only a sealing writes them)')
