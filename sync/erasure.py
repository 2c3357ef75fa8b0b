"""Erasure that reaches the bytes of the embedded database's files.

Deleting a document and compacting (``POST /{db}/_compact``) is enough on
CouchDB: compaction copies the live revisions into a new file and removes
the old one. It is not enough on pouchdb-server. Its LevelDB backend
(``leveldown``) keeps every write in an append-only log and in sorted table
files; PouchDB's compaction only *deletes* the old revision bodies, which
LevelDB records as one more entry, and the bytes stay in the files until
LevelDB's own compaction happens to rewrite that key range. pouchdb-server
offers no way to trigger that over HTTP. Deleting a database does remove
its folder (``leveldown.destroy``).

So, on pouchdb-server, :func:`rebuild_database` copies the live state of a
database (every leaf revision with its revision history, deleted ones
included, nothing older) into a fresh database, destroys the old one, and
copies the state back into a new database under the old name. The shredded
envelopes' bodies are in no leaf, so they are in no file afterwards.

Writes that arrive while it runs are not lost: after a first copy the old
database is frozen (a ``validate_doc_update`` that fails every write with an
error, not ``forbidden``, so the gateway's answer makes PouchDB retry later
and the service answers other writers 503), the last changes are copied,
and only then is it destroyed. A write landing between the destruction and
the copy back goes into the new database and is kept. A crash part way
leaves the copy (``<db>__rebuild``); the next rebuild merges it back first.
"""

from __future__ import annotations

from typing import Any

from sync.couch import CouchDBClient

__all__ = ['is_embedded', 'rebuild_database', 'FREEZE_ID']

#: The design document that fails every write while the old database is copied.
FREEZE_ID = '_design/fieldvault-rebuild'
_FREEZE = {'_id': FREEZE_ID, 'validate_doc_update':
           'function () { throw new Error("database being rebuilt; retry"); }'}
_PAGE = 500


def is_embedded(couch: CouchDBClient) -> bool:
    """Return True when the server is pouchdb-server (whose deletes leave bytes in its files)."""
    return 'express-pouchdb' in couch.server_info()


def _copy(couch: CouchDBClient, source: str, target: str, since: Any = 0) -> tuple[Any, int]:
    """Copy every change of ``source`` after ``since`` (leaf revisions, with history).

    Returns:
        ``(last seq, documents copied)``.
    """
    copied = 0
    while True:
        page = couch.changes(source, since=since, limit=_PAGE, style_all_docs=True)
        wanted = [{'id': row['id'], 'rev': change['rev']}
                  for row in page.get('results', []) if row['id'] != FREEZE_ID
                  for change in row.get('changes', [])]
        if wanted:
            answer = couch.bulk_get(source, wanted, revs=True)
            docs = [item['ok'] for entry in answer.get('results', [])
                    for item in entry.get('docs', []) if 'ok' in item]
            if docs:
                couch.bulk_docs(target, docs, new_edits=False)
                copied += len(docs)
        since = page.get('last_seq', since)
        if len(page.get('results', [])) < _PAGE:
            return since, copied


def rebuild_database(couch: CouchDBClient, db: str, *, max_passes: int = 5) -> None:
    """Rebuild ``db`` from its live documents into fresh files and destroy the old ones.

    Args:
        couch: CouchDB client of a pouchdb-server.
        db: Physical database name.
        max_passes: Copies before freezing; each pass copies what arrived
            during the one before.
    """
    spare = f'{db}__rebuild'
    if couch.db_exists(spare):
        # A rebuild stopped part way: its copy may hold what the database lost.
        _copy(couch, spare, db)
        couch.delete_db(spare)
    couch.ensure_db(spare)
    since, copied = _copy(couch, db, spare)
    for _pass in range(max_passes):
        if not copied:
            break
        since, copied = _copy(couch, db, spare, since)
    frozen = couch.put(db, dict(_FREEZE))
    try:
        _copy(couch, db, spare, since)
    except Exception:
        couch.delete(db, FREEZE_ID, frozen)
        raise
    couch.delete_db(db)
    couch.ensure_db(db)
    _copy(couch, spare, db)
    couch.delete_db(spare)
