"""Config documents the tablet app reads: record schemas and instrument packs.

Tablets get them through replication of the config database (devices may not
call the staff endpoints ``/schemas`` and ``/instruments``), so a tablet that
enrolled once can show the screening questions and validate a form offline.
Written by ``fieldvault db init`` (which ``make run`` and the tests' setup
call); a document is rewritten only when its content changed, so replicas
pull nothing new after an idempotent re-run.

- ``record-schema:<type>-<major>``: ``{"type": "record-schema", "schema_id",
  "json_schema", "identifying_paths"}``, the exported JSON Schema (draft
  2020-12) the app checks a form against before sealing, and the JSON
  Pointers it seals.
- ``instrument-pack:<id>:<version>``: ``{"type": "instrument-pack", "pack"}``,
  the newest installed version of every pack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sync.couch import CouchDBClient
from sync.errors import SyncError

__all__ = ['app_config_documents', 'publish_app_config']


def app_config_documents(json_schemas: Mapping[str, dict[str, Any]],
                         identifying: Mapping[str, Iterable[str]],
                         packs: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the config documents for the given schemas and packs.

    Args:
        json_schemas: ``"<type>/<major>"`` -> exported JSON Schema.
        identifying: ``"<type>/<major>"`` -> JSON Pointers of identifying fields.
        packs: Pack id -> the pack's dict (``InstrumentPack.to_dict()``).
    """
    docs = []
    for schema_id, json_schema in sorted(json_schemas.items()):
        docs.append({'_id': f'record-schema:{schema_id.replace("/", "-")}',
                     'type': 'record-schema', 'schema_id': schema_id,
                     'json_schema': json_schema,
                     'identifying_paths': list(identifying[schema_id])})
    for pack_id, pack in sorted(packs.items()):
        docs.append({'_id': f'instrument-pack:{pack_id}:{pack["version"]}',
                     'type': 'instrument-pack', 'pack': pack})
    return docs


def publish_app_config(couch: CouchDBClient, config_db: str,
                       docs: list[dict[str, Any]]) -> list[str]:
    """Write the documents whose content changed; return their ids.

    One read of the stored documents by key and at most one ``_bulk_docs``,
    whatever the number of documents.
    """
    rows = couch.all_docs(config_db, keys=[doc['_id'] for doc in docs], include_docs=True)
    stored = {row['key']: row.get('doc') for row in rows if row.get('doc')}
    changed = []
    for doc in docs:
        current = stored.get(doc['_id'])
        if current is None:
            changed.append(doc)
        elif {key: value for key, value in current.items() if key != '_rev'} != doc:
            changed.append({**doc, '_rev': current['_rev']})
    if changed:
        results = couch.bulk_docs(config_db, changed)
        # A conflict is another instance's run writing the same content.
        failed = [result for result in results
                  if result.get('error') and result.get('error') != 'conflict']
        if failed:
            raise SyncError(f'{len(failed)} tablet config documents could not be written')
    return [doc['_id'] for doc in changed]
