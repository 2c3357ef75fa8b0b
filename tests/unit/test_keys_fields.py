"""Sealing and opening record documents (fle/1 fields, header, envelopes)."""

from __future__ import annotations

import base64
import copy
import datetime
import json

import pytest

import keys
from keys import InvalidCiphertext, InvalidKeyMaterial, InvalidManifest, Keyring, OrgKeyPair
from keys._encoding import b64url_decode, b64url_encode
from keys.envelopes import seal_rk
from tests.support.sealed import assert_sealed_shape

pytestmark = pytest.mark.unit

ORG = 'org-acme'
PATHS = ('/full_name', '/phone', '/dob', '/aliases', '/address/street', '/guardian/name')
#: Values no sealed output may contain (canaries).
CANARIES = ('Canary Fullname', '+1-555-0142', '2009-05-17', 'Canary Alias', '742 Canary Street')
ORG_KEY = OrgKeyPair.generate('oek-test-1')
KEYRING = Keyring([ORG_KEY])
MANIFEST = keys.build_manifest(ORG, 1, [ORG_KEY.manifest_entry()])
NOW = datetime.datetime(2026, 3, 2, 10, 15, tzinfo=datetime.timezone.utc)


def make_doc(doc_id: str = 'contact:0190f6a2-5b7e-7c1a-9d1e-4b0c2d7f8a11') -> dict:
    return {
        '_id': doc_id,
        'type': 'contact',
        'region': 'north',
        'full_name': CANARIES[0],
        'phone': CANARIES[1],
        'dob': CANARIES[2],
        'aliases': [CANARIES[3], 'JJ'],
        'address': {'street': CANARIES[4], 'city': 'Los Angeles'},
        'guardian': None,
    }


def seal(doc: dict | None = None, **overrides):
    arguments = {'paths': PATHS, 'org': ORG, 'manifest_body': MANIFEST, 'device': 'dev-042'}
    arguments.update(overrides)
    return keys.seal_document(doc if doc is not None else make_doc(), **arguments)


def open_(sealed: dict, envelopes: list, *, keyring: Keyring = KEYRING, org: str = ORG,
          paths=PATHS) -> dict:
    return keys.open_document(sealed, envelopes=envelopes, keyring=keyring, paths=paths, org=org)


def assert_opaque(error_info: pytest.ExceptionInfo) -> None:
    """The single failure: exact type, fixed message, no chained detail."""
    assert type(error_info.value) is InvalidCiphertext
    assert str(error_info.value) == InvalidCiphertext.MESSAGE
    assert error_info.value.__cause__ is None
    assert error_info.value.__suppress_context__


# -- Round trips --------------------------------------------------------------


def test_open_returns_the_original_document_without_the_header():
    doc = make_doc()
    sealed, envelope = seal(doc)
    assert open_(sealed, [envelope]) == doc


def test_sealing_does_not_modify_the_input():
    doc = make_doc()
    before = copy.deepcopy(doc)
    seal(doc)
    assert doc == before


def test_sealed_output_holds_no_identifying_plaintext():
    sealed, envelope = seal()
    text = json.dumps([sealed, envelope], ensure_ascii=False)
    for canary in CANARIES:
        assert canary not in text


def test_non_identifying_fields_stay_plaintext():
    sealed, _ = seal()
    assert sealed['region'] == 'north'
    assert sealed['address']['city'] == 'Los Angeles'
    assert sealed['aliases'] != [CANARIES[3], 'JJ']  # The whole list is one sealed value.


def test_absent_and_null_identifying_fields_are_left_alone():
    doc = make_doc()
    doc['phone'] = None
    del doc['dob']
    sealed, envelope = seal(doc)
    assert sealed['phone'] is None and 'dob' not in sealed and sealed['guardian'] is None
    assert open_(sealed, [envelope]) == doc


def test_sealed_structure():
    sealed, envelope = seal()
    rkid = envelope['rkid']
    assert sealed['fle']['v'] == 1
    assert list(sealed['fle']['keys']) == [rkid]
    entry = sealed['fle']['keys'][rkid]
    assert set(entry) == {'commit', 'kek', 'dev', 'at'}
    assert entry['kek'] == ORG_KEY.kid and entry['dev'] == 'dev-042'
    assert len(b64url_decode(entry['commit'])) == 32
    for pointer in ('/full_name', '/phone', '/dob', '/aliases'):
        value = sealed[pointer[1:]]
        assert set(value) == {'fle', 'rk', 'n', 'ct'} and value['fle'] == 1 and value['rk'] == rkid
    assert envelope['_id'] == f'rk:{rkid}' and envelope['doc'] == sealed['_id']
    assert envelope['kek'] == ORG_KEY.kid and envelope['suite'] == keys.SUITE
    keys.validate_envelope(envelope)
    assert_sealed_shape(sealed, PATHS)


def test_every_field_has_its_own_nonce_and_every_seal_its_own_rk():
    first, first_envelope = seal()
    second, second_envelope = seal()
    nonces = [first[name]['n'] for name in ('full_name', 'phone', 'dob', 'aliases')]
    assert len(set(nonces)) == len(nonces)
    assert first_envelope['rkid'] != second_envelope['rkid']
    assert first['full_name']['ct'] != second['full_name']['ct']


def test_padding_hides_short_length_differences():
    doc = make_doc()
    doc['full_name'], doc['phone'] = 'Al', 'Bartholomew Example'
    sealed, _ = seal(doc)
    lengths = {len(b64url_decode(sealed[name]['ct'])) for name in ('full_name', 'phone')}
    assert lengths == {32 + 16}


def test_seal_document_at_time_stamps_at():
    sealed, envelope = keys.seal_document_at_time(
        make_doc(), paths=PATHS, org=ORG, manifest_body=MANIFEST, now=NOW)
    assert envelope['at'] == '2026-03-02T10:15:00Z'
    assert sealed['fle']['keys'][envelope['rkid']]['at'] == envelope['at']
    assert 'dev' not in envelope


def test_array_elements_and_escaped_pointers_can_be_sealed():
    doc = {'_id': 'identity:1', 'documents': [{'number': 'X1'}, {'number': 'X2'}],
           'a/b': {'m~n': 'v'}}
    paths = ['/documents/1/number', '/a~1b/m~0n']
    sealed, envelope = seal(doc, paths=paths)
    assert sealed['documents'][0] == {'number': 'X1'}
    assert sealed['documents'][1]['number']['fle'] == 1
    assert open_(sealed, [envelope], paths=paths) == doc


def test_fields_outside_paths_stay_sealed_when_opening():
    sealed, envelope = seal()
    opened = open_(sealed, [envelope], paths=['/full_name'])
    assert opened['full_name'] == CANARIES[0]
    assert opened['phone'] == sealed['phone']


def test_unrelated_and_forged_envelopes_are_skipped():
    sealed, envelope = seal()
    _, other_envelope = seal(make_doc('contact:other'))
    forged = seal_rk(b'\x01' * 32, org=ORG, doc_id=sealed['_id'], rkid=envelope['rkid'],
                     kid=ORG_KEY.kid, public_b64=ORG_KEY.public_b64(), device=None, at=None)
    assert open_(sealed, [other_envelope, forged, envelope]) == make_doc()


def test_keyring_with_several_versions_opens_each_envelope_by_kek():
    next_key = OrgKeyPair.generate('oek-test-2')
    sealed_old, old_envelope = seal()
    newer = keys.build_manifest(ORG, 2, [next_key.manifest_entry(),
                                         ORG_KEY.manifest_entry('decrypt-only')])
    sealed_new, new_envelope = seal(manifest_body=newer)
    assert new_envelope['kek'] == 'oek-test-2'
    both = Keyring([ORG_KEY, next_key])
    assert open_(sealed_old, [old_envelope], keyring=both) == make_doc()
    assert open_(sealed_new, [new_envelope], keyring=both) == make_doc()


# -- Reseal -------------------------------------------------------------------


def test_reseal_adds_a_second_record_key_for_the_edited_fields_only():
    sealed, first = seal()
    updated, second = keys.reseal_fields(
        sealed, {'/phone': '+1-555-0199'}, org=ORG, manifest_body=MANIFEST, device='dev-042')
    assert set(updated['fle']['keys']) == {first['rkid'], second['rkid']}
    assert updated['phone']['rk'] == second['rkid']
    assert updated['full_name'] == sealed['full_name']
    expected = make_doc()
    expected['phone'] = '+1-555-0199'
    assert open_(updated, [first, second]) == expected
    with pytest.raises(InvalidCiphertext):
        open_(updated, [first])


def test_reseal_can_clear_a_field_and_set_a_new_nested_member():
    sealed, first = seal()
    updated, second = keys.reseal_fields_at_time(
        sealed, {'/dob': None, '/address/street': '1 New Street'}, org=ORG,
        manifest_body=MANIFEST, now=NOW)
    opened = open_(updated, [first, second])
    assert opened['dob'] is None and opened['address']['street'] == '1 New Street'


@pytest.mark.parametrize('new_values', [{}, {'/guardian/name': 'x'}, {'/missing/deep': 'x'}])
def test_reseal_refuses_empty_edits_and_missing_parents(new_values):
    sealed, _ = seal()
    with pytest.raises(InvalidKeyMaterial):
        keys.reseal_fields(sealed, new_values, org=ORG, manifest_body=MANIFEST)


def test_reseal_refuses_an_unsealed_document():
    with pytest.raises(InvalidKeyMaterial):
        keys.reseal_fields(make_doc(), {'/phone': 'x'}, org=ORG, manifest_body=MANIFEST)


# -- Refusals when sealing -----------------------------------------------------


@pytest.mark.parametrize(('change', 'arguments'), [
    ('no _id', {}),
    ('reserved _id', {}),
    ('already sealed', {}),
    ('', {'paths': '/full_name'}),
    ('', {'paths': ['full_name']}),
    ('', {'paths': ['/fle/v']}),
    ('', {'paths': ['/_rev']}),
    ('', {'paths': ['/address', '/address/street']}),
    ('', {'paths': ['/phone', '/phone']}),
    ('', {'org': 'org acme'}),
    ('', {'device': 'dev 42'}),
    ('', {'org': 'org-other'}),
    ('NaN value', {}),
    ('set value', {}),
    ('huge value', {}),
])
def test_seal_refuses_malformed_input(change, arguments):
    doc = make_doc()
    if change == 'no _id':
        del doc['_id']
    elif change == 'reserved _id':
        doc['_id'] = '_design/x'
    elif change == 'already sealed':
        doc = seal()[0]
    elif change == 'NaN value':
        doc['full_name'] = float('nan')
    elif change == 'set value':
        doc['full_name'] = {1, 2}
    elif change == 'huge value':
        doc['full_name'] = 'x' * 70000
    with pytest.raises(InvalidKeyMaterial) as caught:
        seal(doc, **arguments)
    assert CANARIES[0] not in str(caught.value)


def test_seal_refuses_a_malformed_manifest():
    with pytest.raises(InvalidManifest):
        seal(manifest_body={'org': ORG, 'seq': 1, 'keys': []})


# -- One negative test per failure mode --------------------------------------


def _flip(text: str, index: int = 0) -> str:
    data = bytearray(b64url_decode(text))
    data[index] ^= 1
    return b64url_encode(bytes(data))


def _wrong_key(sealed, envelopes):
    return sealed, envelopes, Keyring([OrgKeyPair.generate(ORG_KEY.kid)])


def _tampered_ciphertext(sealed, envelopes):
    sealed['full_name']['ct'] = _flip(sealed['full_name']['ct'])
    return sealed, envelopes, KEYRING


def _moved_to_another_field(sealed, envelopes):
    sealed['full_name'], sealed['dob'] = sealed['dob'], sealed['full_name']
    return sealed, envelopes, KEYRING


def _moved_to_another_document(sealed, envelopes):
    other, other_envelope = seal(make_doc('contact:someone-else'))
    sealed['full_name'] = other['full_name']
    sealed['fle']['keys'].update(other['fle']['keys'])
    return sealed, [*envelopes, other_envelope], KEYRING


def _wrong_rkid(sealed, envelopes):
    updated, second = keys.reseal_fields(sealed, {'/phone': 'x'}, org=ORG, manifest_body=MANIFEST)
    updated['full_name']['rk'] = second['rkid']
    return updated, [*envelopes, second], KEYRING


def _commitment_mismatch(sealed, envelopes):
    rkid = envelopes[0]['rkid']
    sealed['fle']['keys'][rkid]['commit'] = b64url_encode(bytes(32))
    return sealed, envelopes, KEYRING


def _substituted_record_key(sealed, envelopes):
    # Anyone holding the org public key (every tablet) can seal a *valid*
    # envelope of another RK under the same rkid; the commitment catches it.
    envelope = envelopes[0]
    forged = seal_rk(b'\x02' * 32, org=ORG, doc_id=sealed['_id'], rkid=envelope['rkid'],
                     kid=ORG_KEY.kid, public_b64=ORG_KEY.public_b64(), device=None, at=None)
    return sealed, [forged], KEYRING


def _unknown_header_version(sealed, envelopes):
    sealed['fle']['v'] = 2
    return sealed, envelopes, KEYRING


def _unknown_value_version(sealed, envelopes):
    sealed['full_name']['fle'] = 2
    return sealed, envelopes, KEYRING


def _unknown_suite(sealed, envelopes):
    envelopes[0]['suite'] = 'hpke:0x0010-0x0001-0x0001'
    return sealed, envelopes, KEYRING


def _truncated_value(sealed, envelopes):
    sealed['full_name']['ct'] = b64url_encode(b64url_decode(sealed['full_name']['ct'])[:-1])
    return sealed, envelopes, KEYRING


def _truncated_envelope(sealed, envelopes):
    envelopes[0]['ct'] = b64url_encode(b64url_decode(envelopes[0]['ct'])[:-1])
    return sealed, envelopes, KEYRING


def _malformed_base64(sealed, envelopes):
    standard = base64.b64encode(b64url_decode(sealed['full_name']['ct'])).decode()
    if '+' not in standard and '/' not in standard:
        # About 13% of 48-byte ciphertexts encode alike in both alphabets.
        standard = '+' + standard[1:]
    sealed['full_name']['ct'] = standard
    return sealed, envelopes, KEYRING


def _enc_off_curve(sealed, envelopes):
    envelopes[0]['enc'] = _flip(envelopes[0]['enc'], 64)
    return sealed, envelopes, KEYRING


def _plaintext_in_identifying_field(sealed, envelopes):
    sealed['full_name'] = 'Jane Plaintext'
    return sealed, envelopes, KEYRING


def _wrong_org(sealed, envelopes):
    return sealed, envelopes, KEYRING  # Opened as another org below.


def _missing_envelope(sealed, envelopes):
    return sealed, [], KEYRING


FAILURE_MODES = {
    'wrong key': _wrong_key,
    'tampered ciphertext': _tampered_ciphertext,
    'value moved to another field': _moved_to_another_field,
    'value moved to another document': _moved_to_another_document,
    'wrong rkid': _wrong_rkid,
    'commitment mismatch': _commitment_mismatch,
    'substituted record key (same rkid)': _substituted_record_key,
    'unknown fle version (header)': _unknown_header_version,
    'unknown fle version (value)': _unknown_value_version,
    'unknown suite': _unknown_suite,
    'truncated value': _truncated_value,
    'truncated envelope': _truncated_envelope,
    'malformed base64': _malformed_base64,
    'enc point not on the curve': _enc_off_curve,
    'plaintext in an identifying field': _plaintext_in_identifying_field,
    'wrong org': _wrong_org,
    'missing envelope': _missing_envelope,
}


@pytest.mark.parametrize('mode', FAILURE_MODES)
def test_every_failure_is_the_same_opaque_error(mode):
    sealed, envelope = seal()
    sealed, envelopes, keyring = FAILURE_MODES[mode](copy.deepcopy(sealed), [dict(envelope)])
    org = 'org-other' if mode == 'wrong org' else ORG
    with pytest.raises(InvalidCiphertext) as caught:
        open_(sealed, envelopes, keyring=keyring, org=org)
    assert_opaque(caught)


def test_open_refuses_a_document_that_is_not_one():
    for candidate in (None, [], {'fle': {}}, {'_id': 'x'}):
        with pytest.raises(InvalidCiphertext):
            open_(candidate, [])


def test_open_refuses_malformed_paths_loudly():
    sealed, envelope = seal()
    with pytest.raises(InvalidKeyMaterial):
        open_(sealed, [envelope], paths=['full_name'])


# -- Structure: what the opener refuses before decrypting --------------------


def test_open_refuses_a_document_with_plaintext_or_an_unknown_rkid_opaquely():
    sealed, envelope = seal()
    plaintext = copy.deepcopy(sealed)
    plaintext['phone'] = CANARIES[1]
    dangling = copy.deepcopy(sealed)
    dangling['phone']['rk'] = 'f' * 32
    headerless = copy.deepcopy(sealed)
    del headerless['fle']
    for candidate in (plaintext, dangling, headerless):
        with pytest.raises(InvalidCiphertext) as caught:
            open_(candidate, [envelope])
        assert str(caught.value) == str(InvalidCiphertext())


@pytest.mark.parametrize('text', [
    '"Maria"', '["M","Mimi"]', '{"a":1}', '12', '-0.5', 'true', ' "x"', '"x" ', '\ufeff"x"',
    '\ufeff', '', '"x""y"', 'NaN', '[Infinity]', '{"a":1}x', '"\\ud83c\\udf35"', '1e308',
])
def test_decode_value_agrees_with_strict_json_loads(text):
    from keys.fields import decode_value

    def refuse(name):
        raise ValueError(name)

    try:
        expected = json.loads(text, parse_constant=refuse)
    except ValueError:
        with pytest.raises(ValueError):
            decode_value(text.encode('utf-8'))
    else:
        assert decode_value(text.encode('utf-8')) == expected


@pytest.mark.parametrize('text', [
    '"\\ud800"', '["\\udc00"]', '{"\\ud800":1}', '"\\ude00\\ud83d"', '1e999', '[-1e999]',
    '{"a":1E400}', '1' + '0' * 309, '-' + '9' * 400,
])
def test_decode_value_refuses_lone_surrogates_and_numbers_no_double_holds(text):
    from keys.fields import decode_value

    json.loads(text)  # What json.loads lets through, fle/1 refuses.
    with pytest.raises(ValueError):
        decode_value(text.encode('utf-8'))


def test_field_aad_is_the_pae_of_the_spec():
    from keys._encoding import pae
    from keys.fields import field_aad
    rkid = '6f6785aa5f4dde7a04c603b047652340'
    assert field_aad('org-acme', 'contact:é-1', '/a~1b', rkid) == pae(
        'fle/1/field', 'org-acme', 'contact:é-1', '/a~1b', bytes.fromhex(rkid))


def test_sealed_and_opened_copies_share_nothing_mutable_with_their_input():
    from keys.fields import open_document as open_doc
    doc = {'_id': 'contact:1', 'full_name': ['A', 'B'], 'meta': {'tags': ['x']},
           'address': {'street': '1 Main', 'city': 'LA'}}
    paths = ['/full_name', '/address/street']
    org_key = keys.OrgKeyPair.generate('oek-1')
    manifest = keys.build_manifest('org-acme', 1, [org_key.manifest_entry()])
    sealed, envelope = keys.seal_document(doc, paths=paths, org='org-acme', manifest_body=manifest)
    assert doc == {'_id': 'contact:1', 'full_name': ['A', 'B'], 'meta': {'tags': ['x']},
                   'address': {'street': '1 Main', 'city': 'LA'}}
    sealed['meta']['tags'].append('y')
    sealed['address']['city'] = 'SF'
    assert doc['meta']['tags'] == ['x'] and doc['address']['city'] == 'LA'
    before = copy.deepcopy(sealed)
    opened = open_doc(sealed, envelopes=[envelope], keyring=keys.Keyring([org_key]), paths=paths,
                      org='org-acme')
    assert opened['full_name'] == ['A', 'B'] and opened['address']['street'] == '1 Main'
    opened['meta']['tags'].append('z')
    opened['address']['city'] = 'NY'
    assert sealed == before


def test_a_value_json_cannot_encode_is_refused_by_name_when_sealing():
    doc = {'_id': 'contact:1', 'full_name': ['ok', '\ud800']}
    with pytest.raises(InvalidKeyMaterial, match="'/full_name' is not valid JSON"):
        keys.seal_document(doc, paths=['/full_name'], org=ORG, manifest_body=MANIFEST)


def test_seal_value_takes_a_twelve_byte_nonce_only():
    from keys import fields
    rkid = '6f6785aa5f4dde7a04c603b047652340'
    arguments = {'rk': bytes(32), 'rkid': rkid, 'org': ORG, 'doc_id': 'contact:1',
                 'pointer': '/full_name'}
    sealed = fields.seal_value('Jane', nonce=bytes(12), **arguments)
    assert sealed['n'] == b64url_encode(bytes(12))
    assert fields.open_value(sealed, rk=bytes(32), org=ORG, doc_id='contact:1',
                             pointer='/full_name') == 'Jane'
    for nonce in (bytes(8), bytes(16)):
        with pytest.raises(ValueError):
            fields.seal_value('Jane', nonce=nonce, **arguments)


def test_a_path_that_is_not_unicode_fails_only_when_a_value_is_there():
    paths = ['/full_name', '/\ud800']
    doc = {'_id': 'contact:1', 'full_name': 'Jane'}
    sealed, envelope = keys.seal_document(doc, paths=paths, org=ORG, manifest_body=MANIFEST)
    assert open_(sealed, [envelope], paths=paths) == doc
    with pytest.raises(UnicodeEncodeError):
        keys.seal_document({**doc, '\ud800': 'x'}, paths=paths, org=ORG, manifest_body=MANIFEST)
    with pytest.raises(UnicodeEncodeError):
        keys.reseal_fields(sealed, {'/\ud800': 'x'}, org=ORG, manifest_body=MANIFEST)
