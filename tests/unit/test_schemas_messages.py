"""No validation message ever contains a submitted value (canary scan).

Every field of every record schema, plain and sealed, top level, nested and
inside list items, receives values carrying a canary; whatever is refused,
the canary must not appear in the messages, the exception text, or anything
the exception keeps a reference to.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from marshmallow import fields

import schemas
from schemas.registry import sealed_variant
from tests.factories import fake_sealed
from tests.factories import make_record

pytestmark = pytest.mark.unit

CANARY = 'CANARY-Maria-Lopez-5550100'
CANARY_NUMBER = 987654321
CANARIES = (CANARY, str(CANARY_NUMBER), 'Maria', '5550100')

PAYLOADS: list[Any] = [
    CANARY,
    CANARY * 40,
    f'{CANARY}@example.org',
    '+1' + '5550100' * 3,
    [CANARY],
    [CANARY, CANARY],
    {CANARY: CANARY},
    {'fle': 1, 'rk': CANARY, 'n': CANARY, 'ct': CANARY},
    {'fle': CANARY, 'rk': CANARY},
    CANARY_NUMBER,
    -CANARY_NUMBER - 0.5,
    True,
]


def assert_no_canary(error: Exception) -> None:
    texts = [str(error), repr(error), str(error.args)]
    messages = getattr(error, 'messages', None)
    if messages is not None:
        texts += [str(messages), json.dumps(messages)]
    for text in texts:
        for canary in CANARIES:
            assert canary not in text
    # Nothing holding the raw document rides along.
    assert error.__cause__ is None
    assert error.__context__ is None


def refusals(document: dict[str, Any], *, sealed: bool) -> int:
    try:
        schemas.validate_document(document, sealed=sealed)
    except schemas.SchemasError as error:
        assert_no_canary(error)
        return 1
    return 0


def planted_documents(schema: Any, base: dict[str, Any]):
    """Yield copies of ``base`` with a canary payload in each field and subfield."""
    for name, field in schema.fields.items():
        for payload in PAYLOADS:
            document = copy.deepcopy(base)
            document[name] = payload
            yield document
        nested = field.inner if isinstance(field, fields.List) else field
        if not isinstance(nested, fields.Nested):
            continue
        existing = base.get(name)
        if isinstance(existing, list):
            existing = existing[0] if existing else None
        for sub_name in nested.schema.fields:
            for payload in PAYLOADS:
                item = {**(existing if isinstance(existing, dict) else {}), sub_name: payload}
                document = copy.deepcopy(base)
                document[name] = [item] if isinstance(field, fields.List) else item
                yield document


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
def test_no_value_is_echoed_unsealed(doc_type):
    base = make_record(doc_type)
    schema = schemas.schema_for(doc_type)()
    refused = sum(refusals(document, sealed=False)
                  for document in planted_documents(schema, base))
    assert refused > len(schema.fields) * 3


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
def test_no_value_is_echoed_sealed(doc_type):
    base = fake_sealed(make_record(doc_type))
    schema = sealed_variant(schemas.schema_for(doc_type))()
    refused = sum(refusals(document, sealed=True)
                  for document in planted_documents(schema, base))
    assert refused > len(schema.fields) * 3


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
def test_canary_in_unknown_keys_is_not_echoed(doc_type):
    document = make_record(doc_type)
    document[CANARY] = 'x'
    document['Maria Lopez 555-0100'] = 'x'
    document['fle'] = {'v': 1, 'keys': {CANARY: {'commit': 'x', 'kek': 'x'}}}
    with pytest.raises(schemas.SchemaValidationError) as caught:
        schemas.validate_document(document, sealed=False)
    assert_no_canary(caught.value)
    assert caught.value.messages['_unrecognized_key'] == ['Unknown field.', 'Unknown field.']


@pytest.mark.parametrize('field', ['type', 'schema', '_id'])
def test_canary_in_envelope_routing_fields_is_not_echoed(field):
    document = make_record('contact', **{field: CANARY})
    with pytest.raises(schemas.SchemasError) as caught:
        schemas.validate_document(document, sealed=False)
    assert_no_canary(caught.value)


def test_canary_in_a_nested_unknown_key_is_not_echoed():
    document = make_record('identity')
    document['guardian'][f'{CANARY} phone'] = CANARY
    with pytest.raises(schemas.SchemaValidationError) as caught:
        schemas.validate_document(document, sealed=False)
    assert_no_canary(caught.value)
    assert caught.value.messages == {'guardian': {'_unrecognized_key': ['Unknown field.']}}


def test_non_object_document_is_not_echoed():
    with pytest.raises(schemas.SchemaValidationError) as caught:
        schemas.validate_document([CANARY], sealed=True)
    assert_no_canary(caught.value)
