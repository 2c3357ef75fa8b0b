"""Pure rules of the gateway: what a device may pull, what it may push, and
how a refused document is made safe to keep in quarantine.

Nothing here does I/O; ``sync.gateway`` feeds these functions the documents
it read and the validators it was given, so every rule has unit tests.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    'ENVELOPE_PREFIX',
    'META_FIELDS',
    'Refusal',
    'check_pushed_record',
    'doc_size',
    'is_sealed_value',
    'redact_for_quarantine',
    'visible_config_id',
    'visible_record',
]

#: Record-key envelopes; they live in keyvault only and are never pulled.
ENVELOPE_PREFIX = 'rk:'

#: CouchDB metadata a replicator adds; the record schemas do not know them.
META_FIELDS = frozenset({'_rev', '_revisions', '_deleted', '_conflicts', '_attachments'})

#: Fields of a record that carry no identifying value and survive redaction.
_SAFE_FIELDS = frozenset({'_id', '_rev', '_deleted', 'type', 'schema', 'org', 'owner', 'device'})

_SEALED_KEYS = frozenset({'fle', 'rk', 'n', 'ct'})


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why a pushed document was refused.

    Attributes:
        rule: Short token of the rule broken (``owner``, ``schema``, ...).
        reason: One sentence naming the field or rule, never a value.
        fields: Per-field schema messages (field -> messages), if any.
    """

    rule: str
    reason: str
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)


#: What ``json.dumps(doc, ensure_ascii=False, separators=(',', ':'))`` builds
#: on every call (it runs once per pushed document), built once.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(',', ':'))


def doc_size(doc: dict[str, Any]) -> int:
    """Return the size of a document as compact UTF-8 JSON, in bytes."""
    return len(_COMPACT_JSON.encode(doc).encode('utf-8'))


def is_sealed_value(value: Any) -> bool:
    """Return True when ``value`` has the shape of an fle/1 sealed value."""
    return (
        isinstance(value, dict)
        and set(value) == _SEALED_KEYS
        and value.get('fle') == 1
        and all(isinstance(value[key], str) for key in ('rk', 'n', 'ct'))
    )


def visible_record(doc: dict[str, Any] | None, worker: str) -> bool:
    """Return True when a records-db document may go to ``worker``'s device.

    Only the worker's own records are visible; envelopes and design
    documents never are. A tombstone is visible when it is stamped with the
    worker as owner (the gateway stamps tombstones it accepts).
    """
    if not doc:
        return False
    doc_id = doc.get('_id', '')
    if doc_id.startswith((ENVELOPE_PREFIX, '_design/', '_local/')):
        return False
    return doc.get('owner') == worker


def visible_config_id(doc_id: str, device_id: str) -> bool:
    """Return True when a config-db document id may go to ``device_id``.

    Every config document is shared except design documents and the
    device-control documents of other devices.
    """
    if doc_id.startswith(('_design/', '_local/')):
        return False
    if doc_id.startswith('device-control:'):
        return doc_id == f'device-control:{device_id}'
    return True


def strip_meta(doc: dict[str, Any]) -> dict[str, Any]:
    """Return the document without CouchDB replication metadata."""
    return {key: value for key, value in doc.items() if key not in META_FIELDS}


def check_pushed_record(
    doc: Any,
    *,
    worker: str,
    record_types: Iterable[str],
    max_doc_bytes: int,
    validate: Callable[[dict[str, Any]], Any],
    current_owner: str | None,
    schema_errors: tuple[type[Exception], ...],
    unknown_schema_errors: tuple[type[Exception], ...] = (),
) -> Refusal | None:
    """Decide whether a document pushed into ``records`` may be stored.

    Args:
        doc: The document as sent (with ``_rev``/``_revisions``).
        worker: The pushing device's worker.
        record_types: Types a device may write.
        max_doc_bytes: Largest accepted document.
        validate: Schema validation of the document without metadata; raises
            one of ``schema_errors`` with ``.messages``.
        current_owner: Owner of the stored document with this id, or None
            when there is none.
        schema_errors: Exceptions that mean "does not match its schema".
        unknown_schema_errors: Exceptions that mean "unknown type or version".

    Returns:
        None when the document may be stored, else the refusal.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get('_id'), str) or not doc['_id']:
        return Refusal('id', 'The document has no valid _id.')
    doc_id = doc['_id']
    if doc_id.startswith('_design/'):
        return Refusal('design_document', 'Devices may not write design documents.')
    if doc_id.startswith('_'):
        return Refusal('reserved_id', 'Document ids starting with "_" are reserved.')
    if doc_size(doc) > max_doc_bytes:
        return Refusal('max_doc_bytes', f'The document is larger than {max_doc_bytes} bytes.')
    if current_owner is not None and current_owner != worker:
        return Refusal('owner', 'The stored document belongs to another worker.')
    if doc.get('_deleted'):
        # A tombstone of the worker's own document (or of one created and
        # deleted offline, never stored here): it carries no data to check.
        return None
    if doc.get('_attachments'):
        return Refusal('attachments', 'Records may not carry attachments.')
    doc_type = doc.get('type')
    if doc_type not in set(record_types):
        return Refusal('type', 'The field "type" names a type devices may not write.')
    if not doc_id.startswith(f'{doc_type}:'):
        return Refusal('id', 'The _id must start with the document type.')
    if doc.get('owner') != worker:
        return Refusal('owner', 'The field "owner" must be the worker of this device.')
    try:
        validate(strip_meta(doc))
    except schema_errors as ex:
        messages = getattr(ex, 'messages', {}) or {}
        names = ', '.join(sorted(str(name) for name in messages)) or 'document'
        return Refusal('schema', f'The document does not match its schema: {names}.',
                       fields=dict(messages))
    except unknown_schema_errors:
        return Refusal('schema', 'The field "schema" names an unknown schema version.')
    return None


def _redact_value(value: Any) -> Any:
    if is_sealed_value(value):
        return value
    return {'redacted': True}


def redact_for_quarantine(
    doc: Any, identifying_paths: Iterable[str] | None
) -> Any:
    """Return a copy of a refused document that holds no identifying plaintext.

    Values at identifying paths that are not well-formed sealed values are
    replaced with ``{"redacted": true}``. When the paths are unknown (an
    unknown type, a design document), every field but the safe metadata is
    redacted the same way, since any of them could hold plaintext.

    Args:
        doc: The document as pushed.
        identifying_paths: JSON pointers of the type's identifying fields, or
            None when the type is unknown.
    """
    if not isinstance(doc, dict):
        return {'redacted': True}
    copy = json.loads(json.dumps(doc))
    if identifying_paths is None:
        return {key: (value if key in _SAFE_FIELDS or key in ('_revisions',)
                      else _redact_value(value))
                for key, value in copy.items()}
    for pointer in identifying_paths:
        parts = [part.replace('~1', '/').replace('~0', '~')
                 for part in pointer.lstrip('/').split('/')]
        target = copy
        for part in parts[:-1]:
            target = target.get(part) if isinstance(target, dict) else None
            if target is None:
                break
        if isinstance(target, dict) and parts[-1] in target:
            target[parts[-1]] = _redact_value(target[parts[-1]])
    return copy
