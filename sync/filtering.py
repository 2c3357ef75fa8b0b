"""Pure rules of the gateway: what a device may pull, what it may push, and
how a refused document is made safe to keep in quarantine.

Nothing here does I/O; ``sync.gateway`` feeds these functions the documents
it read and the validators it was given, so every rule has unit tests.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import fle

__all__ = [
    'ENVELOPE_PREFIX',
    'INVALID_ID',
    'META_FIELDS',
    'Refusal',
    'TOMBSTONE_FIELDS',
    'check_metadata',
    'check_pushed_record',
    'doc_size',
    'is_sealed_value',
    'redact_for_quarantine',
    'safe_id',
    'tombstone',
    'visible_config_id',
    'visible_record',
]

#: Record-key envelopes; they live in keyvault only and are never pulled.
ENVELOPE_PREFIX = fle.ENVELOPE_PREFIX

#: CouchDB metadata a replicator adds; the record schemas do not know them.
META_FIELDS = frozenset({'_rev', '_revisions', '_deleted', '_conflicts', '_attachments'})

#: Members a stored tombstone keeps (the gateway then stamps ``owner``).
TOMBSTONE_FIELDS = ('_id', '_rev', '_revisions', '_deleted')

#: Stands in for an ``_id`` that failed the id rules wherever one is recorded.
INVALID_ID = 'invalid-id'

#: The special members CouchDB accepts in a written document; any other
#: ``_`` member is refused by CouchDB, and the gateway refuses it first.
_COUCHDB_MEMBERS = frozenset({'_id', '_rev', '_revisions', '_deleted', '_attachments',
                              '_conflicts', '_deleted_conflicts', '_local_seq', '_revs_info'})

# The record schemas' own patterns (schemas.parts, schemas.fields), so the
# gateway accepts exactly the revisions and ids the schemas do.
_REV = re.compile(r'([1-9][0-9]{0,9})-([0-9a-f]{1,64})')
_REV_HASH = re.compile(r'[0-9a-f]{1,64}')
_MAX_REVISION_IDS = 1000
_UUID4 = r'[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'
_RECORD_ID = re.compile(rf'([a-z][a-z_]*):{_UUID4}')


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
    """Return True when ``value`` has the shape of an fle/1 sealed value (``fle.sealed_parts``)."""
    try:
        fle.sealed_parts(value)
    except fle.FormatError:
        return False
    return True


def is_envelope_id(doc_id: Any) -> bool:
    """Return True when ``doc_id`` is an envelope id, ``rk:<rkid>``."""
    return (isinstance(doc_id, str) and doc_id.startswith(ENVELOPE_PREFIX)
            and fle.is_rkid(doc_id[len(ENVELOPE_PREFIX):]))


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


def _revision_problem(doc: dict[str, Any], new_edits: bool) -> str | None:
    """Name the revision member CouchDB would refuse, or None when all are sound."""
    rev = doc.get('_rev')
    matched = None
    if '_rev' in doc:
        matched = _REV.fullmatch(rev) if isinstance(rev, str) else None
        if matched is None:
            return '_rev'
    elif not new_edits:
        return '_rev'  # a replicated revision is written under the id it was given
    if '_deleted' in doc and not isinstance(doc['_deleted'], bool):
        return '_deleted'
    if '_revisions' not in doc:
        return None
    revisions = doc['_revisions']
    if not isinstance(revisions, dict) or set(revisions) != {'start', 'ids'}:
        return '_revisions'
    start, ids = revisions['start'], revisions['ids']
    if type(start) is not int or not isinstance(ids, list) or not ids:
        return '_revisions'
    if len(ids) > min(start, _MAX_REVISION_IDS) or not all(
            isinstance(item, str) and _REV_HASH.fullmatch(item) for item in ids):
        return '_revisions'
    if matched is None or int(matched.group(1)) != start or ids[0] != matched.group(2):
        return '_revisions'  # they must name the same revision
    return None


def check_metadata(doc: Any, *, new_edits: bool) -> Refusal | None:
    """Refuse CouchDB metadata CouchDB itself would refuse, and attachments.

    Every pushed document passes this first, envelopes included, so no
    malformed revision ever reaches the database (a ``_revisions`` with a
    non-integer ``start`` is stored by pouchdb-server and then crashes every
    read of the revision tree).

    Args:
        doc: The document as pushed.
        new_edits: False for replication (``new_edits:false``): every
            document must then carry its ``_rev``.

    Returns:
        None when the metadata is sound (or ``doc`` is no object, which the
        id rule refuses), else the refusal.
    """
    if not isinstance(doc, dict):
        return None
    if any(isinstance(key, str) and key.startswith('_') and key not in _COUCHDB_MEMBERS
           for key in doc):
        return Refusal('reserved_member',
                       'The document has a member starting with "_" that CouchDB does not accept.')
    if '_attachments' in doc:
        return Refusal('attachments', 'Documents may not carry attachments.')
    problem = _revision_problem(doc, new_edits)
    if problem is not None:
        return Refusal('revision', f'The revision metadata is malformed: {problem}.')
    return None


def record_id_type(doc_id: Any) -> str | None:
    """Return the type part of a well-formed record id (``<type>:<uuid4>``), else None."""
    matched = _RECORD_ID.fullmatch(doc_id) if isinstance(doc_id, str) else None
    return matched.group(1) if matched else None


def safe_id(doc_id: Any, record_types: Iterable[str]) -> str:
    """Return ``doc_id`` when it passed the id rules, else ``INVALID_ID``.

    Only a record id of a known type (``<type>:<uuid4>``) or an envelope id
    (``rk:<rkid>``) is ever recorded (quarantine, audit): any other id was
    chosen freely by a device and may hold a name.
    """
    if is_envelope_id(doc_id) or record_id_type(doc_id) in set(record_types):
        return str(doc_id)
    return INVALID_ID


def tombstone(doc: dict[str, Any], owner: str) -> dict[str, Any]:
    """Return what is stored of an accepted tombstone: its metadata and ``owner``.

    A deletion as PouchDB sends it after ``db.put({...doc, _deleted: true})``
    still carries the record's members; none of them is kept, so no value
    ever lives on in a tombstone (nor reaches the worker's other tablets).
    """
    kept = {key: doc[key] for key in TOMBSTONE_FIELDS if key in doc}
    kept['owner'] = owner
    return kept


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
    if record_id_type(doc_id) not in set(record_types):
        return Refusal('id', 'The _id must be "<type>:<uuid4>" of a record type.')
    if doc_size(doc) > max_doc_bytes:
        return Refusal('max_doc_bytes', f'The document is larger than {max_doc_bytes} bytes.')
    if current_owner is not None and current_owner != worker:
        return Refusal('owner', 'The stored document belongs to another worker.')
    if '_attachments' in doc:
        return Refusal('attachments', 'Documents may not carry attachments.')
    if doc.get('_deleted') is True:
        # A tombstone of the worker's own document (or of one created and
        # deleted offline, never stored here): only its metadata is stored
        # (see ``tombstone``), so there is no data to check.
        return None
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


_TIMESTAMP = re.compile(
    r'[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?'
    r'(?:Z|[+-][0-9]{2}:[0-9]{2})')
_B64URL = re.compile(r'[A-Za-z0-9_-]{1,8192}')
_SUITE = re.compile(r'hpke:0x[0-9a-f]{4}-0x[0-9a-f]{4}-0x[0-9a-f]{4}')
_SCHEMA_TAG = re.compile(r'([a-z][a-z_]*)/[0-9]{1,4}')
#: Member names a sealed value may sit under in a quarantined copy.
_SAFE_NAME = re.compile(r'[a-z][a-z0-9_]{0,63}')
_REDACTED = {'redacted': True}


def _fle_header(value: Any, device_id: str) -> Any:
    """Keep of an fle/1 header only record key ids and well-formed key entries."""
    if not isinstance(value, dict) or not fle.is_version(value.get('v')) or not isinstance(
            value.get('keys'), dict):
        return _REDACTED
    keys = {}
    for rkid, entry in value['keys'].items():
        if not (fle.is_rkid(rkid) and isinstance(entry, dict)):
            continue
        checks: dict[str, Callable[[Any], bool]] = {
            'commit': _is_commit, 'kek': fle.is_identifier, 'at': fle.is_timestamp,
            'dev': lambda dev: bool(dev == device_id)}
        keys[rkid] = {name: item for name, item in entry.items()
                      if name in checks and checks[name](item)}
    return {'v': fle.FLE_VERSION, 'keys': keys}


def _is_commit(value: Any) -> bool:
    try:
        fle.base64url.decode(value, length=32)
    except ValueError:
        return False
    return True


def redact_for_quarantine(
    doc: Any, *, record_types: Iterable[str], worker: str, device_id: str,
    key_material: bool = True,
) -> tuple[Any, int]:
    """Return the copy of a refused document quarantine may keep, by allow-list.

    Whatever its id or type, only members known to hold no identifying
    value are kept: the id when it passed the id rules (else ``INVALID_ID``),
    sound revision metadata, a known ``type`` and ``schema``, ``owner`` and
    ``device`` when they are the pushing device's own, timestamps, the fle/1
    header's key ids, envelope members of their exact shapes (record id,
    rkid, key id, suite, base64url ``enc``/``ct``), and well-formed sealed
    values under lowercase member names (one level of nesting, where
    identifying fields sit). An allow-listed member of the wrong shape is
    kept as ``{"redacted": true}``; every other member is dropped, name
    included (a name can be a value too), and so are attachments.

    Args:
        doc: The document as pushed.
        record_types: Known record types.
        worker: The pushing device's worker.
        device_id: The pushing device.
        key_material: False to withhold an envelope's ``enc`` and ``ct``
            (a shredded record key must not survive in quarantine).

    Returns:
        ``(copy, count of members dropped or redacted)``.
    """
    if not isinstance(doc, dict):
        return {}, 1
    types = set(record_types)
    revisions_sound = _revision_problem(doc, new_edits=True) is None
    schema_tag = _SCHEMA_TAG.fullmatch(doc['schema']) if isinstance(doc.get('schema'),
                                                                     str) else None
    shapes: dict[str, Callable[[Any], bool]] = {
        '_rev': lambda value: revisions_sound,
        '_revisions': lambda value: revisions_sound,
        '_deleted': lambda value: isinstance(value, bool),
        'type': lambda value: isinstance(value, str) and (value in types or value == 'rk'),
        'schema': lambda value: schema_tag is not None and schema_tag.group(1) in types,
        'owner': lambda value: value == worker,
        'device': lambda value: value == device_id,
        'dev': lambda value: value == device_id,
        'doc': lambda value: safe_id(value, types) == value,
        'rkid': fle.is_rkid,
        'kek': fle.is_identifier,
        'suite': lambda value: isinstance(value, str) and bool(_SUITE.fullmatch(value)),
        'enc': lambda value: key_material and isinstance(value, str) and bool(
            _B64URL.fullmatch(value)),
        'ct': lambda value: key_material and isinstance(value, str) and bool(
            _B64URL.fullmatch(value)),
    }
    for name in ('created_at', 'updated_at', 'at'):
        shapes[name] = lambda value: isinstance(value, str) and bool(_TIMESTAMP.fullmatch(value))
    kept: dict[str, Any] = {}
    dropped = 0
    for name, value in doc.items():
        if name == '_id':
            kept[name] = safe_id(value, types)
            dropped += kept[name] != value
        elif name == 'fle':
            kept[name] = _fle_header(value, device_id)
            dropped += kept[name] != value
        elif name in shapes:
            ok = shapes[name](value)
            kept[name] = value if ok else _REDACTED
            dropped += not ok
        elif isinstance(name, str) and _SAFE_NAME.fullmatch(name) and is_sealed_value(value):
            kept[name] = value
        elif isinstance(name, str) and _SAFE_NAME.fullmatch(name) and isinstance(value, dict):
            inner = {key: item for key, item in value.items()
                     if isinstance(key, str) and _SAFE_NAME.fullmatch(key)
                     and is_sealed_value(item)}
            if inner:
                kept[name] = inner
            dropped += len(inner) != len(value)
        else:
            dropped += 1
    return kept, dropped
