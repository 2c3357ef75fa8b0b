"""validate_document: envelope, versions, unknown fields and each field type's failure."""

from __future__ import annotations

import copy
import json

import pytest

import schemas
from tests.factories import OMIT
from tests.factories import make_contact
from tests.factories import make_identity
from tests.factories import make_record
from tests.factories import make_screening

pytestmark = pytest.mark.unit


def messages_of(document, *, sealed=False):
    with pytest.raises(schemas.SchemaValidationError) as caught:
        schemas.validate_document(document, sealed=sealed)
    return caught.value.messages


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
def test_factory_documents_validate_unchanged(doc_type):
    document = make_record(doc_type, owner='worker-7', org='org-acme')
    original = copy.deepcopy(document)
    validated = schemas.validate_document(document, sealed=False)
    assert validated == original
    assert document == original
    assert validated['owner'] == 'worker-7' and validated['org'] == 'org-acme'
    json.dumps(validated)


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
def test_validation_is_idempotent(doc_type):
    once = schemas.validate_document(make_record(doc_type), sealed=False)
    assert schemas.validate_document(once, sealed=False) == once


def test_values_are_not_normalized():
    document = make_contact(created_at='2026-03-02T10:15:00.5+01:00',
                            updated_at='2026-03-02T10:15:00.5+01:00',
                            precise_location={'lat': 34, 'lon': -118.5})
    validated = schemas.validate_document(document, sealed=False)
    assert validated['created_at'] == '2026-03-02T10:15:00.5+01:00'
    assert type(validated['precise_location']['lat']) is int


def test_couchdb_meta_is_kept():
    document = make_contact(
        _rev='3-917fa2381192822767f010b95b45325b',
        _revisions={'start': 3, 'ids': ['917fa2381192822767f010b95b45325b',
                                        '6b6f6c2b1c2f4e1d9f0a3b2c1d0e9f8a',
                                        '1a2b3c4d5e6f708192a3b4c5d6e7f809']})
    validated = schemas.validate_document(document, sealed=False)
    assert validated['_rev'] == document['_rev']
    assert validated['_revisions'] == document['_revisions']


def test_optional_fields_may_be_absent_or_null():
    minimal = make_contact(precise_location=OMIT, living_situation=None, youth_code=None,
                           services_offered=OMIT, notes=None, device=OMIT)
    assert schemas.validate_document(minimal, sealed=False) == minimal


def test_unknown_top_level_field_is_refused():
    assert messages_of(make_contact(nickname='x')) == {'nickname': ['Unknown field.']}


def test_unknown_nested_field_is_refused():
    document = make_identity(guardian={'relationship': 'grandparent', 'email': 'x'})
    assert messages_of(document) == {'guardian': {'email': ['Unknown field.']}}


def test_unknown_field_in_list_item_is_refused():
    document = make_screening()
    document['responses'][0]['comment'] = 'x'
    assert messages_of(document) == {'responses': {0: {'comment': ['Unknown field.']}}}


def test_document_must_be_an_object():
    assert messages_of(['not', 'a', 'dict']) == {'_schema': ['A document must be a JSON object.']}


def test_missing_type():
    assert messages_of(make_contact(type=OMIT)) == {'type': ['Missing data for required field.']}


@pytest.mark.parametrize('doc_type', ['casefile', 'rk', '', 7, None])
def test_unknown_type(doc_type):
    with pytest.raises(schemas.UnknownSchema):
        schemas.validate_document(make_contact(type=doc_type), sealed=False)


def test_missing_schema_tag():
    assert messages_of(make_contact(schema=OMIT)) == {
        'schema': ['Missing data for required field.']}


@pytest.mark.parametrize('tag', ['contact', 'contact/', 'contact/0', 'contact/v1', 'Contact/1',
                                 'contact/1 ', 1, None])
def test_malformed_schema_tag(tag):
    assert messages_of(make_contact(schema=tag)) == {
        'schema': ['Must be "<type>/<major>", e.g. "contact/1".']}


def test_schema_tag_naming_another_type():
    assert messages_of(make_contact(schema='identity/1')) == {
        'schema': ['Names a different record type than the type field.']}


@pytest.mark.parametrize('tag', ['contact/2', 'contact/9999'])
def test_unknown_major(tag):
    with pytest.raises(schemas.UnknownSchema):
        schemas.validate_document(make_contact(schema=tag), sealed=False)


def test_schema_refuses_a_document_of_another_type():
    # Loading straight through schema_for still checks the envelope.
    schema = schemas.schema_for('identity')()
    document = make_contact()
    errors = schema.validate(document)
    assert errors['type'] == [schema.error_messages['type_mismatch']]
    assert errors['schema'] == [schema.error_messages['schema_mismatch']]


def test_id_must_name_the_document_type():
    document = make_contact(_id='identity:0b7e9c1a-5d2f-4c3b-9a8e-1f2d3c4b5a69')
    assert messages_of(document) == {'_id': ['The part before ":" must be the record type.']}


@pytest.mark.parametrize('doc_id', [
    'contact:0b7e9c1a-5d2f-1c3b-9a8e-1f2d3c4b5a69',  # version 1, not 4
    'contact:0B7E9C1A-5D2F-4C3B-9A8E-1F2D3C4B5A69',  # not lowercase
    '0b7e9c1a-5d2f-4c3b-9a8e-1f2d3c4b5a69',
    '_design/contact',
])
def test_id_must_be_type_and_uuid4(doc_id):
    assert messages_of(make_contact(_id=doc_id)) == {'_id': [
        'Must be "<type>:<uuid4>", e.g. "contact:0b7e9c1a-5d2f-4c3b-9a8e-1f2d3c4b5a69".']}


def test_updated_before_created_is_refused():
    document = make_contact(updated_at='2026-03-02T10:14:59Z')
    assert messages_of(document) == {'updated_at': ['Must not be earlier than created_at.']}


def test_updated_at_compares_instants_not_text():
    # 11:00+02:00 is 09:00Z, before created_at 10:15Z.
    document = make_contact(updated_at='2026-03-02T11:00:00+02:00')
    assert messages_of(document) == {'updated_at': ['Must not be earlier than created_at.']}


TIMESTAMP = 'Must be an ISO 8601 date-time with a time zone, e.g. 2026-03-02T10:15:00Z.'
REQUIRED = 'Missing data for required field.'
NULL = 'Field may not be null.'
NOT_STRING = 'Not a valid string.'
NOT_LIST = 'Not a valid list.'
NOT_INTEGER = 'Not a valid integer.'
NOT_NUMBER = 'Must be a number.'
NOT_BOOLEAN = 'Must be true or false.'
NOT_OBJECT = 'Invalid input type.'
NO_REPEATS = 'Items must not repeat.'
UUID4_MESSAGE = 'Must be a lowercase version 4 UUID.'
TOKEN = 'Must be 1-128 letters, digits or . _ : @ -, starting with a letter or digit.'
FLE_ID = 'Must be 1-64 letters, digits or . _ -, starting with a letter or digit.'
CONTACT_TYPE_CODES = ('Must be one of: street, drop_in, le_first_responder_call, hotline, '
                      'school, hospital, other.')

FIELD_FAILURES = [
    # (doc_type, field, bad value, expected messages at that field)
    ('contact', 'created_at', '2026-03-02T10:15:00', [TIMESTAMP]),  # no time zone
    ('contact', 'created_at', '2026-03-02', [TIMESTAMP]),
    ('contact', 'created_at', '2026-02-30T10:15:00Z', [TIMESTAMP]),
    ('contact', 'contact_at', 1772446500, [NOT_STRING]),
    ('contact', 'contact_at', OMIT, [REQUIRED]),
    ('contact', 'contact_at', None, [NULL]),
    ('contact', 'engagement_date', '2026-3-2', ['Must be a date YYYY-MM-DD.']),
    ('contact', 'engagement_date', '2026-02-30', ['Must be a date YYYY-MM-DD.']),
    ('contact', 'contact_type', 'alley', [CONTACT_TYPE_CODES]),
    ('contact', 'engaged', 'yes', [NOT_BOOLEAN]),
    ('contact', 'engaged', 1, [NOT_BOOLEAN]),
    ('contact', 'services_offered', 'food', [NOT_LIST]),
    ('contact', 'services_offered', ['food', 'food'], [NO_REPEATS]),
    ('contact', 'youth_code', 'Jane-Doe-07', ['Must be a generated code such as quiet-river-07.']),
    ('contact', 'service_area_code', 'SPA 6', ['Must be a configured service area code.']),
    ('contact', 'client_id', 'not-a-uuid', [UUID4_MESSAGE]),
    ('contact', 'owner', 'worker 1', [TOKEN]),
    ('contact', 'org', '', [FLE_ID]),
    # Wider than an fle/1 identifier: every opener refuses it, so intake does.
    ('contact', 'org', 'org:42', [FLE_ID]),
    ('contact', 'org', 'o' * 65, [FLE_ID]),
    ('contact', 'notes', 'x' * 1001, ['Length must be between 1 and 1000.']),
    ('contact', 'notes', '', ['Length must be between 1 and 1000.']),
    ('contact', 'precise_location', 'Main and 5th', {'_schema': [NOT_OBJECT]}),
    ('contact', 'precise_location', {'lat': True, 'lon': 1}, {'lat': [NOT_NUMBER]}),
    ('contact', 'precise_location', {'lat': '34', 'lon': 1}, {'lat': [NOT_NUMBER]}),
    ('contact', 'precise_location', {'lat': 91, 'lon': 1},
     {'lat': ['Must be greater than or equal to -90 and less than or equal to 90.']}),
    ('contact', '_rev', 'abc', ['Must be a CouchDB revision.']),
    ('contact', '_revisions', {'start': 0, 'ids': []},
     {'start': ['Must be greater than or equal to 1.'],
      'ids': ['Length must be between 1 and 1000.']}),
    ('identity', 'age_at_screening', '15', [NOT_INTEGER]),
    ('identity', 'age_at_screening', 15.0, [NOT_INTEGER]),
    ('identity', 'age_at_screening', True, [NOT_INTEGER]),
    ('identity', 'age_at_screening', 30,
     ['Must be greater than or equal to 8 and less than or equal to 25.']),
    ('identity', 'date_of_birth', '17/05/2010', ['Must be a date YYYY-MM-DD or YYYY-MM.']),
    ('identity', 'date_of_birth', '2010-13', ['Must be a date YYYY-MM-DD or YYYY-MM.']),
    ('identity', 'email', 'not-an-email', ['Not a valid email address.']),
    ('identity', 'phones', ['555-0100'],
     {0: ['Must be an E.164 phone number: optional +, then 2-15 digits.']}),
    ('identity', 'aliases', [f'alias {number}' for number in range(11)],
     ['Longer than maximum length 10.']),
    ('identity', 'aliases', ['same', 'same'], [NO_REPEATS]),
    ('identity', 'ssn_last4', '123-45-6789', ['Must be the last four digits only.']),
    ('identity', 'primary_language', 'English', ['Must be an ISO 639 language code.']),
    ('identity', 'country_of_birth', 'usa', ['Must be an ISO 3166-1 alpha-2 country code.']),
    ('identity', 'race_ethnicity', [], ['Length must be between 1 and 8.']),
    ('identity', 'social_handles', [{'platform': 'myspace', 'handle': 'x'}],
     {0: {'platform': ['Must be one of: instagram, snapchat, tiktok, facebook, x_twitter, '
                       'whatsapp, telegram, discord, kik, other.']}}),
    ('identity', 'id_numbers', [{'type': 'passport'}], {0: {'value': [REQUIRED]}}),
    ('identity', 'photo', {'media_type': 'image/png', 'data': 'not base64!'},
     {'data': ['Must be standard base64 with padding.']}),
    ('identity', 'photo', {'media_type': 'image/png', 'data': 'A' * 44000},
     {'data': ['Must decode to at most 32768 bytes.']}),
    ('screening', 'responses', [{'item_code': 'QYIT 1', 'value': 'yes'}],
     {0: {'item_code': ['Must be an item code.']}}),
    ('screening', 'instrument', 'qyit', ['Must be an instrument pack id such as QYIT.']),
    ('screening', 'instrument_version', 'v1', ['Must be a pack version such as 1.0.']),
    ('consent', 'condition_of_service', True,
     ['Must be false: a release is never a condition of service.']),
    ('consent', 'recipient_org', 'Partner Shelter Inc', ['Must be a configured partner code.']),
    ('consent', 'expires_at', '2026-05-31T00:00:00Z', ['Must be a date YYYY-MM-DD.']),
    ('consent', 'fle', {'v': 2, 'keys': {}},
     {'v': ['Unsupported version; must be 1.'], 'keys': ['Must name at least one record key.']}),
    ('consent', 'fle', {'v': True, 'keys': {'0' * 32: {'commit': 'AA', 'kek': 'k'}}},
     {'v': ['Unsupported version; must be 1.'],
      'keys': {'0' * 32: {'value': {
          'commit': ['Must be base64url without padding of 32 bytes.']}}}}),
]


@pytest.mark.parametrize(('doc_type', 'field', 'value', 'expected'), FIELD_FAILURES,
                         ids=[f'{row[0]}.{row[1]}-{index}'
                              for index, row in enumerate(FIELD_FAILURES)])
def test_field_type_failure(doc_type, field, value, expected):
    document = make_record(doc_type, **{field: value})
    assert messages_of(document) == {field: expected}
