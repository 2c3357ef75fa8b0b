"""sealed=True: identifying fields hold fle/1 sealed values, checked for shape."""

from __future__ import annotations

import base64
import copy

import pytest

import schemas
from schemas.pointers import split
from tests.factories import OMIT
from tests.factories import fake_sealed
from tests.factories import fake_sealed_value
from tests.factories import make_identity
from tests.factories import make_record

pytestmark = pytest.mark.unit

RKID = '9b2f' * 8
OTHER_RKID = 'a1' * 16
SEALED_CASES = [(doc_type, pointer) for doc_type in schemas.RECORD_TYPES
                for pointer in schemas.identifying_paths(doc_type)]


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b'=').decode('ascii')


def set_at(document, pointer, value):
    *parents, name = split(pointer)
    node = document
    for token in parents:
        node = node[token]
    node[name] = value


def sealed_messages(document):
    with pytest.raises(schemas.SchemaValidationError) as caught:
        schemas.validate_document(document, sealed=True)
    return caught.value.messages


def sealed_record(doc_type='identity'):
    return fake_sealed(make_record(doc_type), rkid=RKID)


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
def test_sealed_documents_validate_unchanged(doc_type):
    document = sealed_record(doc_type)
    original = copy.deepcopy(document)
    assert schemas.validate_document(document, sealed=True) == original
    assert schemas.validate_document(document) == original  # sealed is the default


@pytest.mark.parametrize(('doc_type', 'pointer'), SEALED_CASES,
                         ids=[f'{doc_type}{pointer}' for doc_type, pointer in SEALED_CASES])
def test_plaintext_in_an_identifying_field_is_refused(doc_type, pointer):
    plain = make_record(doc_type)
    plaintext = copy.deepcopy(schemas.validate_document(plain, sealed=False))
    for token in split(pointer):
        plaintext = plaintext[token]
    document = sealed_record(doc_type)
    set_at(document, pointer, plaintext)
    messages = sealed_messages(document)
    node = messages
    for token in split(pointer):
        node = node[token]
    assert node == [f'Identifying field {pointer} must hold a sealed fle/1 value; '
                    'plaintext is refused.']
    assert repr(plaintext) not in str(messages)
    if isinstance(plaintext, str):
        assert plaintext not in str(messages)


@pytest.mark.parametrize(('doc_type', 'pointer'), SEALED_CASES,
                         ids=[f'{doc_type}{pointer}' for doc_type, pointer in SEALED_CASES])
def test_identifying_field_may_be_null(doc_type, pointer):
    document = sealed_record(doc_type)
    set_at(document, pointer, None)
    # Nulling a field some rule needs present is that rule's business; make
    # the document satisfy them with the field absent.
    relaxed = {
        '/legal_first_name': {'name_data_quality': 'partial_street_or_code_name'},
        '/legal_last_name': {'name_data_quality': 'partial_street_or_code_name'},
        '/date_of_birth': {'dob_data_quality': 'data_not_collected'},
        '/signer_name': {'method': 'oral', 'consent_type': 'data_collection_notice'},
        '/signature_image': {'method': 'paper_scanned'},
        '/guardian_signer_name': {'signer': 'youth', 'minor_consent_basis': 'agency_policy'},
        '/guardian_signature_image': {'method': 'paper_scanned'},
        '/court_order_ref': {'basis': 'youth_request'},
    }.get(pointer, {})
    document.update(relaxed)
    assert schemas.validate_document(document, sealed=True) == document


def test_fle_header_is_required_when_a_field_is_sealed():
    document = sealed_record()
    del document['fle']
    assert sealed_messages(document) == {
        'fle': ['Required when any identifying field holds a sealed value.']}


def test_fle_header_is_optional_without_sealed_values():
    document = make_record('contact', precise_location=OMIT, notes=OMIT)
    assert schemas.validate_document(document, sealed=True) == document


def test_sealed_value_naming_an_unknown_record_key():
    document = sealed_record()
    document['email'] = fake_sealed_value(OTHER_RKID)
    document['guardian']['phone'] = fake_sealed_value(OTHER_RKID)
    assert sealed_messages(document) == {
        'email': {'rk': ['Names a record key missing from fle.keys.']},
        'guardian': {'phone': {'rk': ['Names a record key missing from fle.keys.']}},
    }


def test_several_record_keys_may_be_used():
    document = sealed_record()
    document['fle']['keys'][OTHER_RKID] = {'commit': b64url(b'\x01' * 32), 'kek': 'oek-2'}
    document['email'] = fake_sealed_value(OTHER_RKID)
    assert schemas.validate_document(document) == document


NONCE = b64url(bytes(12))
CIPHERTEXT = b64url(bytes(48))
SHAPE = 'A sealed value has exactly the keys fle, rk, n and ct.'
VERSION = 'Unsupported sealed value version; fle must be 1.'
BAD_RK = 'Must be a record key id: 32 lowercase hex characters.'
BAD_NONCE = 'Must be base64url without padding of a 12-byte nonce.'
BAD_CT = 'Must be base64url without padding of 16 + 32k bytes (k >= 1).'
LONG_CT = 'Must decode to at most 65536 bytes.'

STRUCTURAL_FAILURES = [
    ('unknown fle version', {'fle': 2, 'rk': RKID, 'n': NONCE, 'ct': CIPHERTEXT}, [VERSION]),
    ('fle true is not 1', {'fle': True, 'rk': RKID, 'n': NONCE, 'ct': CIPHERTEXT}, [VERSION]),
    ('fle as string', {'fle': '1', 'rk': RKID, 'n': NONCE, 'ct': CIPHERTEXT}, [VERSION]),
    ('missing ct', {'fle': 1, 'rk': RKID, 'n': NONCE}, [SHAPE]),
    ('extra key', {'fle': 1, 'rk': RKID, 'n': NONCE, 'ct': CIPHERTEXT, 'aad': 'x'}, [SHAPE]),
    ('rk uppercase', {'fle': 1, 'rk': RKID.upper(), 'n': NONCE, 'ct': CIPHERTEXT},
     {'rk': [BAD_RK]}),
    ('rk too short', {'fle': 1, 'rk': RKID[:30], 'n': NONCE, 'ct': CIPHERTEXT}, {'rk': [BAD_RK]}),
    ('rk not a string', {'fle': 1, 'rk': 7, 'n': NONCE, 'ct': CIPHERTEXT}, {'rk': [BAD_RK]}),
    ('nonce bad base64', {'fle': 1, 'rk': RKID, 'n': 'AAAA!AAAAAAAAAAA', 'ct': CIPHERTEXT},
     {'n': [BAD_NONCE]}),
    ('nonce padded', {'fle': 1, 'rk': RKID, 'n': NONCE + '==', 'ct': CIPHERTEXT},
     {'n': [BAD_NONCE]}),
    ('nonce standard alphabet', {'fle': 1, 'rk': RKID, 'n': '+/+/+/+/+/+/+/+/', 'ct': CIPHERTEXT},
     {'n': [BAD_NONCE]}),
    ('nonce 16 bytes', {'fle': 1, 'rk': RKID, 'n': b64url(bytes(16)), 'ct': CIPHERTEXT},
     {'n': [BAD_NONCE]}),
    ('nonce 11 bytes', {'fle': 1, 'rk': RKID, 'n': b64url(bytes(11)), 'ct': CIPHERTEXT},
     {'n': [BAD_NONCE]}),
    ('ct bad base64', {'fle': 1, 'rk': RKID, 'n': NONCE, 'ct': CIPHERTEXT[:-1] + '*'},
     {'ct': [BAD_CT]}),
    ('ct non-canonical', {'fle': 1, 'rk': RKID, 'n': NONCE, 'ct': b64url(bytes(49))[:-1] + 'B'},
     {'ct': [BAD_CT]}),
    ('ct tag only', {'fle': 1, 'rk': RKID, 'n': NONCE, 'ct': b64url(bytes(16))},
     {'ct': [BAD_CT]}),
    ('ct 47 bytes', {'fle': 1, 'rk': RKID, 'n': NONCE, 'ct': b64url(bytes(47))},
     {'ct': [BAD_CT]}),
    ('ct not block aligned', {'fle': 1, 'rk': RKID, 'n': NONCE, 'ct': b64url(bytes(64))},
     {'ct': [BAD_CT]}),
    ('ct over 64 KiB', {'fle': 1, 'rk': RKID, 'n': NONCE, 'ct': b64url(bytes(16 + 32 * 2048))},
     {'ct': [LONG_CT]}),
    ('ct huge', {'fle': 1, 'rk': RKID, 'n': NONCE, 'ct': 'A' * 200_000}, {'ct': [LONG_CT]}),
    ('ct not a string', {'fle': 1, 'rk': RKID, 'n': NONCE, 'ct': 48}, {'ct': [BAD_CT]}),
    ('all parts bad', {'fle': 1, 'rk': 'x', 'n': 'x', 'ct': 'x'},
     {'rk': [BAD_RK], 'n': [BAD_NONCE], 'ct': [BAD_CT]}),
]


@pytest.mark.parametrize(('case', 'value', 'expected'), STRUCTURAL_FAILURES,
                         ids=[row[0] for row in STRUCTURAL_FAILURES])
def test_sealed_value_structural_failure(case, value, expected):
    document = sealed_record()
    document['email'] = value
    assert sealed_messages(document) == {'email': expected}


def test_largest_ciphertext_is_accepted():
    document = sealed_record()
    document['exploiter_identifiers'] = {'fle': 1, 'rk': RKID, 'n': NONCE,
                                         'ct': b64url(bytes(16 + 32 * 2047))}
    assert schemas.validate_document(document) == document


HEADER_FAILURES = [
    ('header not an object', 'sealed', {'_schema': ['Invalid input type.']}),
    ('unknown header version', {'v': 2, 'keys': {RKID: {'commit': b64url(bytes(32)),
                                                        'kek': 'oek-1'}}},
     {'v': ['Unsupported version; must be 1.']}),
    ('keys not an object', {'v': 1, 'keys': [RKID]},
     {'keys': ['Must be an object mapping record key ids to key entries.']}),
    ('key id not hex', {'v': 1, 'keys': {'Maria Canary': {'commit': b64url(bytes(32)),
                                                          'kek': 'oek-1'}}},
     {'keys': ['Every key must be a record key id: 32 lowercase hex characters.']}),
    ('commit 31 bytes', {'v': 1, 'keys': {RKID: {'commit': b64url(bytes(31)), 'kek': 'oek-1'}}},
     {'keys': {RKID: {'value': {
         'commit': ['Must be base64url without padding of 32 bytes.']}}}}),
    ('kek missing', {'v': 1, 'keys': {RKID: {'commit': b64url(bytes(32))}}},
     {'keys': {RKID: {'value': {'kek': ['Missing data for required field.']}}}}),
    ('unknown entry key', {'v': 1, 'keys': {RKID: {'commit': b64url(bytes(32)), 'kek': 'k',
                                                   'rk': 'x'}}},
     {'keys': {RKID: {'value': {'rk': ['Unknown field.']}}}}),
]


@pytest.mark.parametrize(('case', 'header', 'expected'), HEADER_FAILURES,
                         ids=[row[0] for row in HEADER_FAILURES])
def test_fle_header_failure(case, header, expected):
    document = sealed_record()
    document['fle'] = header
    messages = sealed_messages(document)
    assert messages == {'fle': expected}
    assert 'Maria' not in str(messages)


def test_sealed_false_refuses_sealed_values_in_typed_fields():
    document = sealed_record()
    with pytest.raises(schemas.SchemaValidationError) as caught:
        schemas.validate_document(document, sealed=False)
    assert caught.value.messages['legal_first_name'] == ['Not a valid string.']
    assert caught.value.messages['guardian']['phone'] == ['Not a valid string.']


def test_rules_reading_identifying_content_stand_down_when_sealed():
    # Unsealed, the age disagrees with the date of birth; sealed, the date of
    # birth is ciphertext, so that rule cannot and does not run.
    plain = make_identity(age_at_screening=20)
    with pytest.raises(schemas.SchemaValidationError):
        schemas.validate_document(plain, sealed=False)
    sealed = fake_sealed(plain, rkid=RKID)
    assert schemas.validate_document(sealed, sealed=True) == sealed


def test_presence_rules_still_apply_when_sealed():
    document = sealed_record()
    document['legal_last_name'] = None
    assert sealed_messages(document) == {
        'name_data_quality': ['Does not match which names are recorded.']}
