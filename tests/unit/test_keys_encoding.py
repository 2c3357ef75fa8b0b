"""Encodings under fle/1: base64url, LE64, PAE, canonical JSON, JSON Pointers."""

from __future__ import annotations

import datetime

import pytest

import keys
from keys import _encoding
from keys._encoding import b64url_decode, b64url_encode, canonical_json, pae

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(('data', 'text'), [
    (b'', ''), (b'\xff', '_w'), (b'\xfb\xff', '-_8'), (b'abc', 'YWJj'),
])
def test_base64url_round_trip(data, text):
    assert b64url_encode(data) == text
    assert b64url_decode(text) == data


@pytest.mark.parametrize('text', [
    'YWJj=',   # padding
    'YW+j',    # standard alphabet
    'YW/j',
    'YWJ',     # non-zero trailing bits: 'YWI' is the canonical spelling of b'ab'
    '_x',      # non-zero trailing bits: '_w' is the canonical spelling of b'\xff'
    'Y',       # impossible length
    'YW J',    # whitespace
])
def test_base64url_refuses_non_canonical_text(text):
    with pytest.raises(ValueError):
        b64url_decode(text)


def test_base64url_refuses_non_strings_and_wrong_lengths():
    with pytest.raises(ValueError):
        b64url_decode(b'YWJj')
    with pytest.raises(ValueError):
        b64url_decode('YWJj', length=4)


def test_le64_and_pae_match_the_definition():
    assert _encoding.le64(1) == b'\x01' + bytes(7)
    assert pae() == bytes(8)
    assert pae('ab', b'\x00') == (
        b'\x02' + bytes(7) + b'\x02' + bytes(7) + b'ab' + b'\x01' + bytes(7) + b'\x00')
    assert pae('é') == b'\x01' + bytes(7) + b'\x02' + bytes(7) + 'é'.encode()


def test_pae_removes_concatenation_ambiguity():
    assert pae('ab', 'c') != pae('a', 'bc')
    assert pae('a', '') != pae('a')


def test_canonical_json_sorts_by_utf16_and_has_no_spaces():
    value = {'b': 1, 'a': [2, 'x'], '\U0001f335': 0, '\uffff': 0}
    # U+1F335 is D83C DF35 in UTF-16, which sorts before U+FFFF.
    assert canonical_json(value) == '{"a":[2,"x"],"b":1,"\U0001f335":0,"\uffff":0}'.encode()


def test_canonical_json_escapes_like_json_stringify():
    assert canonical_json('a"\\\n\x01é') == b'"a\\"\\\\\\n\\u0001\xc3\xa9"'


@pytest.mark.parametrize('value', [1.5, True, None, 2**53, {'a': None}, {1: 'x'}, '\ud800', {1}])
def test_canonical_json_refuses_what_it_cannot_sign(value):
    with pytest.raises(ValueError):
        canonical_json(value)


@pytest.mark.parametrize(('pointer', 'tokens'), [
    ('/a', ['a']), ('/a/0/b', ['a', '0', 'b']), ('/a~1b', ['a/b']), ('/m~0n', ['m~n']),
    ('/~01', ['~1']), ('/', ['']),
])
def test_parse_pointer(pointer, tokens):
    assert _encoding.parse_pointer(pointer) == tuple(tokens)


@pytest.mark.parametrize('pointer', ['', 'a', '/a~2', '/a~', 5])
def test_parse_pointer_refuses_malformed(pointer):
    with pytest.raises(ValueError):
        _encoding.parse_pointer(pointer)


def test_locate_finds_present_members_only():
    doc = {'a': {'b': [10, None]}, 'c': None}
    assert _encoding.locate(doc, ['a', 'b', '1']) == (doc['a']['b'], 1)
    assert _encoding.locate(doc, ['c']) == (doc, 'c')
    for tokens in (['x'], ['a', 'x'], ['a', 'b', '2'], ['a', 'b', '01'], ['c', 'd']):
        assert _encoding.locate(doc, tokens) is None


def test_rkid_bytes_wants_lowercase_hex():
    assert _encoding.rkid_bytes('00' * 16) == bytes(16)
    for bad in ('AA' * 16, '0' * 31, 'g' * 32, None):
        with pytest.raises(ValueError):
            _encoding.rkid_bytes(bad)


def test_timestamps_are_utc_whole_seconds():
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    moment = datetime.datetime(2026, 3, 2, 12, 15, 7, 999, tzinfo=plus_two)
    assert _encoding.format_timestamp(moment) == '2026-03-02T10:15:07Z'
    with pytest.raises(ValueError):
        _encoding.format_timestamp(datetime.datetime(2026, 3, 2))


@pytest.mark.parametrize('moment', [
    datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc),
    datetime.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.timezone.utc),
    datetime.datetime(2027, 1, 1, 0, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
    datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc),
    datetime.datetime(1000, 1, 1, tzinfo=datetime.timezone.utc),
])
def test_timestamps_are_what_strftime_writes(moment):
    expected = moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    assert _encoding.format_timestamp(moment) == expected
    assert _encoding.TIMESTAMP.fullmatch(expected)


def test_timestamps_before_year_1000_keep_four_digits():
    moment = datetime.datetime(999, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert _encoding.format_timestamp(moment) == '0999-01-02T03:04:05Z'


def test_pae_items_build_the_pae():
    parts = ('fle/1/rk', 'org-é', b'\x00\x01', '')
    assert _encoding.le64(len(parts)) + b''.join(map(_encoding.pae_item, parts)) == pae(*parts)


@pytest.mark.parametrize(('value', 'expected'), [
    ('contact:1', True),
    ('x' * 512, True),
    ('\U0001f335' * 512, True),      # 512 code points (1024 UTF-16 code units)
    ('x' * 513, False),
    ('', False),
    ('_design/x', False),
    ('contact:\ud800', False),       # a lone surrogate has no UTF-8 form
    (7, False),
])
def test_is_doc_id_counts_code_points_and_refuses_lone_surrogates(value, expected):
    from keys._encoding import is_doc_id

    assert is_doc_id(value) is expected


def test_a_record_id_with_a_lone_surrogate_gets_the_opaque_error():
    # The sealer's refusal is a clear one; the opener's, as for any other
    # malformed record, the one opaque error (never a UnicodeEncodeError).
    doc = {'_id': 'contact:\ud800', 'full_name': 'x'}
    with pytest.raises(keys.InvalidKeyMaterial):
        keys.seal_document(doc, paths=['/full_name'], org='org-acme', manifest_body=_manifest())
    sealed = {'_id': 'contact:\ud800', 'fle': {'v': 1, 'keys': {'0' * 32: {
        'commit': 'A' * 43, 'kek': 'oek-1'}}}}
    with pytest.raises(keys.InvalidCiphertext):
        keys.open_document(sealed, envelopes=[],
                           keyring=keys.Keyring([keys.OrgKeyPair.generate('oek-1')]),
                           paths=['/full_name'], org='org-acme')


def _manifest() -> dict:
    org_key = keys.OrgKeyPair.generate('oek-1')
    return keys.build_manifest('org-acme', 1, [org_key.manifest_entry()])
