"""The crypto-free fle/1 format rules: identifiers, base64url, pointers, sealed values, header."""

from __future__ import annotations

import ast
import pathlib

import pytest

import fle
from fle import base64url, pointer, shapes
from tests.unit.test_keys_boundary import imported_modules

pytestmark = pytest.mark.unit

ROOT = pathlib.Path(__file__).resolve().parents[2]
RKID = '6f6785aa5f4dde7a04c603b047652340'
NONCE = base64url.encode(bytes(12))
CIPHERTEXT = base64url.encode(bytes(16 + 32))
COMMIT = base64url.encode(bytes(32))


def sealed(**changes):
    value = {'fle': 1, 'rk': RKID, 'n': NONCE, 'ct': CIPHERTEXT}
    value.update(changes)
    return value


def header(**entry_changes):
    entry = {'commit': COMMIT, 'kek': 'oek-1', 'dev': 'dev-042', 'at': '2026-03-02T10:15:00Z'}
    entry.update(entry_changes)
    return {'v': 1, 'keys': {RKID: {name: value for name, value in entry.items()
                                    if value is not None}}}


# -- Sealed values ---------------------------------------------------------------


def test_a_well_formed_sealed_value_gives_its_nonce_and_ciphertext():
    assert fle.sealed_parts(sealed()) == (bytes(12), bytes(48))
    assert fle.sealed_parts(sealed(), rkids={RKID}) == (bytes(12), bytes(48))


@pytest.mark.parametrize(('value', 'member'), [
    ('Secret Name', 'value'),
    ({'fle': 1, 'rk': RKID, 'n': NONCE}, 'value'),
    (sealed(extra='Secret'), 'value'),
    (sealed(fle=2), 'fle'),
    (sealed(fle=True), 'fle'),
    (sealed(fle='1'), 'fle'),
    (sealed(rk='Secret'), 'rk'),
    (sealed(rk=RKID.upper()), 'rk'),
    (sealed(rk=7), 'rk'),
    (sealed(n='A' * 15), 'n'),
    (sealed(n=NONCE + '=='), 'n'),
    (sealed(n=base64url.encode(bytes(16))), 'n'),
    (sealed(ct='Secret='), 'ct'),
    (sealed(ct='A' * 20), 'ct'),
    (sealed(ct=base64url.encode(bytes(16 + 31))), 'ct'),
    (sealed(ct=base64url.encode(bytes(16))), 'ct'),
    (sealed(ct=CIPHERTEXT[:-1] + '*'), 'ct'),
])
def test_a_malformed_sealed_value_is_refused_by_member_never_by_value(value, member):
    with pytest.raises(fle.FormatError) as caught:
        fle.sealed_parts(value)
    assert caught.value.member == member
    assert 'Secret' not in str(caught.value)


def test_readers_take_either_spelling_of_the_version_and_writers_write_the_integer():
    assert fle.sealed_parts(sealed(fle=1.0)) == (bytes(12), bytes(48))
    assert fle.check_header({**header(), 'v': 1.0}) == {RKID: bytes(32)}
    assert [fle.is_written_version(value) for value in (1, 1.0, True, '1')] == [
        True, False, False, False]
    assert [fle.is_version(value) for value in (1, 1.0, True, '1', 2)] == [
        True, True, False, False, False]


def test_a_sealed_value_must_name_a_record_key_of_the_header():
    with pytest.raises(fle.FormatError) as caught:
        fle.sealed_parts(sealed(), rkids={'f' * 32})
    assert (caught.value.member, caught.value.problem) == ('rk', 'unknown')


def test_a_ciphertext_longer_than_any_fle1_ciphertext_is_too_long():
    # The tag, then as many whole 32-byte blocks as fit in 64 KiB.
    largest = bytes(16 + (shapes.MAX_CIPHERTEXT_LENGTH - 16) // 32 * 32)
    assert shapes.decode_ciphertext(base64url.encode(largest)) == largest
    for text in (base64url.encode(largest + bytes(32)), 'A' * 100_000, '!' * 100_000):
        with pytest.raises(fle.FormatError) as caught:
            shapes.decode_ciphertext(text)
        assert caught.value.problem == 'too_long'


# -- The header --------------------------------------------------------------------


def test_a_well_formed_header_gives_the_commitments():
    assert fle.check_header(header()) == {RKID: bytes(32)}
    assert fle.check_header(header(dev=None, at=None)) == {RKID: bytes(32)}


@pytest.mark.parametrize('value', [
    None, 'Secret', {'v': 1}, {'v': 2, 'keys': header()['keys']},
    {'v': True, 'keys': header()['keys']}, {'v': 1, 'keys': {}}, {'v': 1, 'keys': []},
    {'v': 1, 'keys': {RKID.upper(): header()['keys'][RKID]}}, {'v': 1, 'keys': {RKID: 'x'}},
    header(commit=None), header(commit=base64url.encode(bytes(31))), header(kek='-Secret'),
    header(dev='Secret Name'), header(at='2026-03-02T10:15:00'),
    header(at='\u0662026-03-02T10:15:00Z'), header(extra='Secret'),
])
def test_a_malformed_header_is_refused_without_its_values(value):
    with pytest.raises(fle.FormatError) as caught:
        fle.check_header(value)
    assert 'Secret' not in str(caught.value)


# -- Identifiers, envelope ids, base64url, pointers ----------------------------------


def test_rkids_are_32_lowercase_hex_digits():
    assert fle.rkid_bytes(RKID) == bytes.fromhex(RKID)
    for value in (RKID.upper(), RKID[:-1], RKID + '0', ' ' + RKID[1:], RKID[:-1] + '\n',
                  RKID[:-1] + '\u0660', None, RKID.encode()):
        assert not fle.is_rkid(value)
        with pytest.raises(ValueError):
            fle.rkid_bytes(value)


def test_envelope_ids_are_the_prefix_and_the_rkid():
    assert fle.envelope_id(RKID) == 'rk:' + RKID
    assert fle.envelope_id(RKID).startswith(fle.ENVELOPE_PREFIX)


@pytest.mark.parametrize('text', ['YWJj=', 'YW+j', 'YWJ', '_x', 'Y', 'YW J', 'YWJ\u00e9'])
def test_base64url_has_one_spelling_per_byte_string(text):
    with pytest.raises(ValueError):
        base64url.decode(text)


@pytest.mark.parametrize('name', ['plain', 'a/b', 'a~b', '~1', '/~0/', ''])
def test_an_escaped_token_parses_back_to_itself(name):
    assert pointer.parse('/' + pointer.escape(name)) == (name,)
    assert pointer.resolve({name: 'x'}, '/' + pointer.escape(name)) == 'x'


def test_resolve_is_none_for_any_missing_step():
    assert pointer.resolve({'a': None}, '/a/b') is None
    assert pointer.resolve({'a': {'b': 1}}, '/a/c') is None
    with pytest.raises(ValueError):
        pointer.resolve({'a~2': 1}, '/a~2')


# -- Boundary ----------------------------------------------------------------------


@pytest.mark.parametrize('path', sorted((ROOT / 'fle').rglob('*.py')), ids=lambda path: path.name)
def test_the_format_package_imports_only_the_standard_library_and_itself(path):
    imported = {name.split('.')[0] for name in imported_modules(ast.parse(path.read_text()))}
    foreign = imported - {'fle', '__future__', 'base64', 'binascii', 're', 'collections', 'typing'}
    assert not foreign, f'{path.name} imports {sorted(foreign)}'
