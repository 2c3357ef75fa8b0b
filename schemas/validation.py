"""``validate_document``: the one entry point the HTTP API and the gateway use."""

from __future__ import annotations

import functools
import re
from typing import Any

from marshmallow import ValidationError

from schemas import registry
from schemas import upgrades
from schemas.errors import SchemaValidationError
from schemas.errors import UnknownSchema
from schemas.fields import RKID_PATTERN
from schemas.parts import EnvelopeSchema

__all__ = ['validate_document']

_SCHEMA_TAG = re.compile(r'([a-z][a-z_]{0,31})/([1-9][0-9]{0,3})')
# Message keys that are field names we could have written: anything else in a
# key position came from the client (an unknown key) and is not echoed.
_SAFE_KEY = re.compile(r'[A-Za-z_][A-Za-z0-9_]{0,63}')
_HIDDEN_KEY = '_unrecognized_key'

_MESSAGES = {
    'not_object': 'A document must be a JSON object.',
    'missing': 'Missing data for required field.',
    'bad_tag': 'Must be "<type>/<major>", e.g. "contact/1".',
    'tag_type_mismatch': 'Names a different record type than the type field.',
}


@functools.cache
def _schema_instance(schema_class: type[EnvelopeSchema], sealed: bool) -> EnvelopeSchema:
    # Schemas hold no per-call state (marshmallow 4 has no context), so one
    # instance per class serves every request and thread.
    return (registry.sealed_variant(schema_class) if sealed else schema_class)()


def _safe_messages(messages: Any) -> Any:
    """Return messages with any client-chosen key replaced by a fixed one."""
    if isinstance(messages, list):
        return [_safe_messages(message) for message in messages]
    if not isinstance(messages, dict):
        return messages
    safe: dict[Any, Any] = {}
    for key, value in messages.items():
        known = isinstance(key, int) or (isinstance(key, str) and (
            _SAFE_KEY.fullmatch(key) or RKID_PATTERN.fullmatch(key)))
        safe_key = key if known else _HIDDEN_KEY
        value = _safe_messages(value)
        if safe_key in safe and isinstance(safe[safe_key], list) and isinstance(value, list):
            safe[safe_key] = [*safe[safe_key], *value]
        else:
            safe[safe_key] = value
    return safe


def _load(doc_type: str, major: int, document: dict[str, Any], sealed: bool) -> dict[str, Any]:
    schema = _schema_instance(registry.schema_for(doc_type, major), sealed)
    try:
        return schema.load(document)
    except ValidationError as ex:
        messages = _safe_messages(ex.messages)
    # APPSEC: raised outside the except block, so marshmallow's exception,
    # whose .data holds the raw document, is neither the cause nor the
    # context: no traceback or log can carry it further.
    raise SchemaValidationError(messages)


def _refuse(field: str, key: str) -> SchemaValidationError:
    return SchemaValidationError({field: [_MESSAGES[key]]})


def validate_document(doc: dict[str, Any], *, sealed: bool = True) -> dict[str, Any]:
    """Validate a record document, lifting it to the current schema first.

    Steps: the ``type`` must be known; ``schema`` (``"<type>/<major>"``)
    must name that type and a known major; an older major is validated as
    written, then lifted with ``schemas.upgrades``; the current schema loads
    the result.

    Args:
        doc: The document, CouchDB meta (``_id``, ``_rev``, ``_revisions``)
            included.
        sealed: True (the API and the gateway): every identifying field must
            hold a well-formed fle/1 sealed value or be absent/null, and
            plaintext there is refused. False (desk intake, before sealing):
            identifying fields are validated as their real types.

    Returns:
        The validated document: JSON data equal to the input (no value is
        normalized), or the lifted document when it was written under an
        older major.

    Raises:
        SchemaValidationError: ``messages`` maps fields to lists of messages
            (nested dicts for nested fields and list items, ``_schema`` for
            document rules). No message contains a submitted value.
        UnknownSchema: Unknown record type or schema major.
    """
    if not isinstance(doc, dict):
        raise _refuse('_schema', 'not_object')
    if 'type' not in doc:
        raise _refuse('type', 'missing')
    doc_type = doc['type']
    if not isinstance(doc_type, str) or doc_type not in registry.CURRENT_MAJOR:
        raise UnknownSchema('Unknown record type.')
    if 'schema' not in doc:
        raise _refuse('schema', 'missing')
    tag = _SCHEMA_TAG.fullmatch(doc['schema']) if isinstance(doc['schema'], str) else None
    if tag is None:
        raise _refuse('schema', 'bad_tag')
    if tag.group(1) != doc_type:
        raise _refuse('schema', 'tag_type_mismatch')
    major, current = int(tag.group(2)), registry.CURRENT_MAJOR[doc_type]
    if major > current:
        raise UnknownSchema('Unknown schema version for this record type.')
    if major < current:
        # Validate as written first: upgrade functions may assume valid input,
        # and errors then point at the fields the tablet actually sent.
        _load(doc_type, major, doc, sealed)
        doc = upgrades.upgrade(doc, doc_type, major, current)
    return _load(doc_type, current, doc, sealed)
