"""Properties of fle/1: opening returns what was sealed; moving ciphertext fails."""

from __future__ import annotations

import base64
import copy

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import keys
from keys import InvalidCiphertext, Keyring, OrgKeyPair
from keys._encoding import MAX_SAFE_INTEGER, canonical_json
from tests.support.sealed import assert_sealed_shape

pytestmark = pytest.mark.unit

ORG = 'org-acme'
ORG_KEY = OrgKeyPair.generate('oek-prop-1')
KEYRING = Keyring([ORG_KEY])
MANIFEST = keys.build_manifest(ORG, 1, [ORG_KEY.manifest_entry()])
FIELDS = ('full_name', 'phone', 'dob', 'notes')
PATHS = tuple(f'/{name}' for name in FIELDS) + ('/address/street',)

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.one_of(
    st.text(),
    st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)
#: Any JSON value an identifying field can hold (null only nested: a null
#: field is left unsealed by design).
field_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(st.one_of(children, st.none()), max_size=4),
        st.dictionaries(st.text(max_size=8), st.one_of(children, st.none()), max_size=4),
    ),
    max_leaves=12,
)
doc_ids = st.from_regex(r'[a-z]{1,12}:[0-9a-f-]{1,36}', fullmatch=True)


def make_doc(doc_id: str, values: list) -> dict:
    doc = {'_id': doc_id, 'type': 'contact', 'region': 'north'}
    doc.update(zip(FIELDS, values))
    doc['address'] = {'street': values[0], 'city': 'Los Angeles'}
    return doc


def open_(sealed: dict, envelopes: list) -> dict:
    return keys.open_document(sealed, envelopes=envelopes, keyring=KEYRING, paths=PATHS, org=ORG)


@SETTINGS
@given(doc_id=doc_ids, values=st.lists(field_values, min_size=len(FIELDS), max_size=len(FIELDS)))
def test_open_returns_what_was_sealed(doc_id, values):
    doc = make_doc(doc_id, values)
    sealed, envelope = keys.seal_document(doc, paths=PATHS, org=ORG, manifest_body=MANIFEST)
    assert_sealed_shape(sealed, PATHS)
    keys.validate_envelope(envelope)
    assert open_(sealed, [envelope]) == doc


@SETTINGS
@given(value=st.text(min_size=6))
def test_sealed_output_never_contains_the_plaintext(value):
    sealed, envelope = keys.seal_document(
        make_doc('contact:1', [value] * len(FIELDS)), paths=PATHS, org=ORG, manifest_body=MANIFEST)
    skeleton = {name: member for name, member in sealed.items() if name not in (*FIELDS, 'address')}
    # Skip values that are part of the fixed, non-identifying text ("contact", "north"...).
    assume(value not in canonical_json([skeleton, envelope, 'Los Angeles']).decode('utf-8'))
    assert value not in canonical_json([sealed, envelope]).decode('utf-8')


@SETTINGS
@given(values=st.lists(field_values, min_size=len(FIELDS), max_size=len(FIELDS)),
       pair=st.lists(st.sampled_from(PATHS), min_size=2, max_size=2, unique=True))
def test_swapping_sealed_values_between_fields_fails(values, pair):
    sealed, envelope = keys.seal_document(
        make_doc('contact:1', values), paths=PATHS, org=ORG, manifest_body=MANIFEST)
    swapped = copy.deepcopy(sealed)
    first, second = (keys._encoding.parse_pointer(pointer) for pointer in pair)
    first_container, first_key = keys._encoding.locate(swapped, first)
    second_container, second_key = keys._encoding.locate(swapped, second)
    first_container[first_key], second_container[second_key] = (
        second_container[second_key], first_container[first_key])
    with pytest.raises(InvalidCiphertext):
        open_(swapped, [envelope])


@SETTINGS
@given(first_values=st.lists(field_values, min_size=len(FIELDS), max_size=len(FIELDS)),
       second_values=st.lists(field_values, min_size=len(FIELDS), max_size=len(FIELDS)),
       pointer=st.sampled_from(PATHS),
       ids=st.lists(doc_ids, min_size=2, max_size=2, unique=True))
def test_moving_a_sealed_value_to_another_document_fails(first_values, second_values, pointer, ids):
    first, first_envelope = keys.seal_document(
        make_doc(ids[0], first_values), paths=PATHS, org=ORG, manifest_body=MANIFEST)
    second, second_envelope = keys.seal_document(
        make_doc(ids[1], second_values), paths=PATHS, org=ORG, manifest_body=MANIFEST)
    # The strongest move: the value plus its header entry plus its envelope,
    # even relabelled to claim the target document.
    tokens = keys._encoding.parse_pointer(pointer)
    container, slot = keys._encoding.locate(first, tokens)
    source, source_slot = keys._encoding.locate(second, tokens)
    container[slot] = source[source_slot]
    first['fle']['keys'].update(second['fle']['keys'])
    relabelled = {**second_envelope, 'doc': first['_id']}
    with pytest.raises(InvalidCiphertext):
        open_(first, [first_envelope, second_envelope, relabelled])


@SETTINGS
@given(values=st.lists(field_values, min_size=len(FIELDS), max_size=len(FIELDS)),
       new_value=field_values)
def test_reseal_then_open_returns_the_edit(values, new_value):
    doc = make_doc('contact:1', values)
    sealed, first = keys.seal_document(doc, paths=PATHS, org=ORG, manifest_body=MANIFEST)
    updated, second = keys.reseal_fields(sealed, {'/phone': new_value}, org=ORG,
                                         manifest_body=MANIFEST)
    assert open_(updated, [first, second]) == {**doc, 'phone': new_value}


@SETTINGS
@given(values=st.lists(field_values, min_size=len(FIELDS), max_size=len(FIELDS)))
def test_rewrap_preserves_every_plaintext(values):
    doc = make_doc('contact:1', values)
    sealed, envelope = keys.seal_document(doc, paths=PATHS, org=ORG, manifest_body=MANIFEST)
    new_key = OrgKeyPair.generate('oek-prop-2')
    rewrapped = keys.rewrap_envelope(
        envelope, keyring=KEYRING, new_key_public_b64=new_key.public_b64(), new_kid=new_key.kid,
        org=ORG)
    assert keys.open_document(sealed, envelopes=[rewrapped], keyring=Keyring([new_key]),
                              paths=PATHS, org=ORG) == doc


#: Base64url letters plus what a careless or hostile writer might mix in:
#: the standard alphabet's ``+/``, padding, whitespace and non-ASCII.
b64_texts = st.text(
    alphabet='ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= \n\u00e9',
    max_size=16)


@SETTINGS
@given(b64_texts)
def test_base64url_decodes_exactly_the_canonical_spellings(text):
    """One byte string, one spelling: decoding succeeds iff re-encoding gives ``text`` back."""
    try:
        canonical = base64.urlsafe_b64encode(
            base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))).rstrip(b'=').decode()
    except (ValueError, TypeError):
        canonical = None
    if canonical == text:
        assert keys._encoding.b64url_encode(keys._encoding.b64url_decode(text)) == text
    else:
        with pytest.raises(ValueError):
            keys._encoding.b64url_decode(text)


@SETTINGS
@given(data=st.binary(max_size=200))
def test_base64url_encoding_is_the_unpadded_urlsafe_alphabet(data):
    assert keys._encoding.b64url_encode(data) == base64.urlsafe_b64encode(data).rstrip(
        b'=').decode()
