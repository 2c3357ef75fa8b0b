"""The cheaper seal and open paths give exactly what the plain code gave.

Sealing and opening skip work the plain definitions do (one JSON encoder per
call, one base64 call per member, one PAE call per element, re-formatted
reasons...). Each test here compares a shortcut with the plain definition it
replaces, which is written out below as the reference: same bytes, same
values, same exceptions and the same reasons. ``tests/hypothesis/
test_keys_fast_paths.py`` runs the same comparisons on generated input.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

import keys
from keys import InvalidKeyMaterial, OrgKeyPair
from keys import _encoding, _primitives, envelopes, fields
from keys._encoding import b64url_decode, b64url_encode, pae, rkid_bytes

pytestmark = pytest.mark.unit

ORG = 'org-acme'
RKID = '6f6785aa5f4dde7a04c603b047652340'
ORG_KEY = OrgKeyPair.generate('oek-fast-1')
MANIFEST = keys.build_manifest(ORG, 1, [ORG_KEY.manifest_entry()])


# -- Reference definitions (the plain code the shortcuts replace) -------------


def reference_encode(value: Any) -> bytes:
    """The fle/1 JSON of a field value, by its definition."""
    return json.dumps(value, ensure_ascii=False, separators=(',', ':'),
                      allow_nan=False).encode('utf-8')


def reference_pad(data: bytes) -> bytes:
    padded = data + b'\x80'
    return padded + bytes(-len(padded) % fields.PAD_BLOCK)


def reference_unpad(padded: bytes) -> bytes:
    if not padded or len(padded) % fields.PAD_BLOCK:
        raise ValueError('bad padding')
    stripped = padded.rstrip(b'\x00')
    if not stripped or stripped[-1] != 0x80 or len(padded) - len(stripped) >= fields.PAD_BLOCK:
        raise ValueError('bad padding')
    return stripped[:-1]


def reference_sealed_parts(value: Any, *, pointer: str | None = None,
                           rkids: dict | None = None) -> tuple[bytes, bytes]:
    """``_sealed_parts`` with one b64url_decode per member, as it was written."""
    where = f" at '{pointer}'" if pointer is not None else ''
    if not isinstance(value, dict) or value.keys() != {'fle', 'rk', 'n', 'ct'}:
        raise InvalidKeyMaterial(f'sealed value{where} must be an object with fle, rk, n and ct')
    version = value['fle']
    if isinstance(version, bool) or version != 1:
        raise InvalidKeyMaterial(f"sealed value{where} has an unsupported 'fle' version")
    rkid = value['rk']
    if rkids is not None:
        if not isinstance(rkid, str) or rkid not in rkids:
            raise InvalidKeyMaterial(f"sealed value{where} names an rkid missing from 'fle.keys'")
    else:
        try:
            rkid_bytes(rkid)
        except ValueError:
            raise InvalidKeyMaterial(
                f"sealed value{where} has an 'rk' that is not an rkid") from None
    try:
        nonce = b64url_decode(value['n'], length=12)
    except ValueError:
        raise InvalidKeyMaterial(
            f"sealed value{where} has an 'n' that is not a 12-byte nonce") from None
    try:
        ciphertext = b64url_decode(value['ct'])
    except ValueError:
        raise InvalidKeyMaterial(f"sealed value{where} has a 'ct' that is not base64url") from None
    body = len(ciphertext) - 16
    if body < 32 or body % 32 or len(ciphertext) > fields.MAX_CIPHERTEXT_LENGTH:
        raise InvalidKeyMaterial(f"sealed value{where} has a 'ct' of impossible length")
    return nonce, ciphertext


def outcome(function, *args, **kwargs) -> tuple[str, Any]:
    """What a call gives: ``('value', result)`` or ``('error', type, message)``."""
    try:
        return ('value', function(*args, **kwargs))
    except Exception as error:  # noqa: BLE001 - comparing any outcome at all.
        return ('error', type(error), str(error))


def assert_same_refusal(function, reference, value) -> None:
    """Both refuse ``value``: the fast path with a ValueError exactly when the
    reference raises one, and a TypeError exactly when it does."""
    with pytest.raises((ValueError, TypeError)) as fast:
        function(value)
    with pytest.raises((ValueError, TypeError)) as slow:
        reference(value)
    assert isinstance(fast.value, ValueError) == isinstance(slow.value, ValueError)


# -- encode_value: str and list-of-str shortcuts ------------------------------


class Text(str):
    """A str subclass: never takes the shortcut, encodes all the same."""


@pytest.mark.parametrize('value', [
    'Maria', '', 'say "hi"\\now', 'tab\tnew\nline\x00\x1f\x7f', 'é ü 漢字 \U0001f335',
    '\u2028\u2029', ['+15555550123'], [], ['M', 'Mimi'], ['', '"', '\\'], ['a', 1],
    ['a', None], ['a', ['b']], [Text('x')], Text('subclass'), 12, -0.5, 1e300, True, None,
    {'a': ['b', 2]}, [{'k': 'v'}], ('a', 'b'),
])
def test_encode_value_writes_what_json_dumps_writes(value):
    assert fields.encode_value(value) == reference_encode(value)


@pytest.mark.parametrize('value', [
    '\ud800', ['ok', '\udfff'], math.nan, [math.inf], object(), ['a', object()], {1j: 'x'},
])
def test_encode_value_refuses_what_json_dumps_refuses(value):
    assert_same_refusal(fields.encode_value, reference_encode, value)


def test_a_value_json_cannot_encode_is_still_refused_by_name_when_sealing():
    doc = {'_id': 'contact:1', 'full_name': ['ok', '\ud800']}
    with pytest.raises(InvalidKeyMaterial, match="'/full_name' is not valid JSON"):
        keys.seal_document(doc, paths=['/full_name'], org=ORG, manifest_body=MANIFEST)


# -- pad and unpad --------------------------------------------------------------


@pytest.mark.parametrize('length', range(0, 100))
def test_pad_appends_what_the_definition_appends(length):
    data = bytes(range(length % 256))[:length] + b'\x01' * (length - min(length, 256))
    assert fields.pad(data) == reference_pad(data)
    assert fields.unpad(fields.pad(data)) == data


@pytest.mark.parametrize('padded', [
    b'', bytes(32), bytes(64), b'\x80' + bytes(31), b'x' * 31 + b'\x80', b'x' * 32,
    b'\x80' + bytes(63), b'x' + b'\x80' + bytes(62), b'x' * 30 + b'\x80\x00', b'\x80' * 32,
    b'x' * 31, b'x' * 33 + b'\x80' + bytes(30), b'x\x80\x01' + bytes(29),
])
def test_unpad_accepts_and_refuses_exactly_what_the_definition_does(padded):
    assert outcome(fields.unpad, padded) == outcome(reference_unpad, padded)


# -- _sealed_parts: one decode for the nonce and the ciphertext ---------------


def sealed_value(**changes: Any) -> dict:
    sealed, _ = keys.seal_document({'_id': 'contact:1', 'full_name': 'Jane'},
                                   paths=['/full_name'], org=ORG, manifest_body=MANIFEST)
    value = dict(sealed['full_name'])
    value.update(changes)
    return value


@pytest.mark.parametrize('changes', [
    {}, {'n': 'A' * 15}, {'n': 'A' * 17}, {'n': 'A' * 15 + '='}, {'n': 'A' * 15 + '+'},
    {'n': 'A' * 15 + 'é'}, {'n': None}, {'n': b'A' * 16}, {'n': Text('A' * 16)},
    {'ct': ''}, {'ct': 'A' * 20}, {'ct': 'A' * 64}, {'ct': 'A' * 63 + '='}, {'ct': 'A' * 107},
    {'ct': 'A' * 106 + 'B'}, {'ct': 'A' * 105}, {'ct': 'A' * 64 + ' '}, {'ct': 12},
    {'ct': Text('A' * 64)}, {'n': 'A' * 15, 'ct': 'A' * 65}, {'n': '!' * 16, 'ct': '!'},
    {'ct': 'A' * 87380}, {'ct': 'A' * 87383}, {'fle': 2}, {'fle': True}, {'fle': 1.0},
    {'rk': 'F' * 32}, {'rk': 7},
])
@pytest.mark.parametrize('pointer', [None, '/full_name'])
def test_sealed_parts_gives_the_same_parts_and_reasons(changes, pointer):
    value = sealed_value(**changes)
    assert outcome(fields._sealed_parts, value, pointer=pointer) == outcome(
        reference_sealed_parts, value, pointer=pointer)
    rkids = {value['rk']: b''} if isinstance(value['rk'], str) else {}
    assert outcome(fields._sealed_parts, value, pointer=pointer, rkids=rkids) == outcome(
        reference_sealed_parts, value, pointer=pointer, rkids=rkids)


def test_sealed_parts_refuses_values_that_are_not_sealed_values_alike():
    for value in ('Jane', None, [], {'fle': 1}, {**sealed_value(), 'extra': 1}):
        assert outcome(fields._sealed_parts, value) == outcome(reference_sealed_parts, value)


# -- The one-join PAEs -----------------------------------------------------------


@pytest.mark.parametrize(('org', 'kek', 'doc_id'), [
    (ORG, 'oek-1', 'contact:1'), ('o', 'k', 'contact:é-\U0001f335'), (ORG, 'oek-1', 'x' * 300),
])
def test_envelope_info_of_checked_strings_is_the_pae_of_the_spec(org, kek, doc_id):
    spec = pae('fle/1/rk', org, kek, doc_id, bytes.fromhex(RKID))
    assert envelopes._info(org, kek, doc_id, bytes.fromhex(RKID)) == spec
    assert envelopes.envelope_info(org, kek, doc_id, RKID) == spec


def test_seal_rk_with_the_drawn_rkid_bytes_writes_the_same_envelope():
    info = envelopes.envelope_info(ORG, ORG_KEY.kid, 'contact:1', RKID)
    for rkid_raw in (None, bytes.fromhex(RKID)):
        envelope = envelopes.seal_rk(
            b'\x07' * 32, org=ORG, doc_id='contact:1', rkid=RKID, kid=ORG_KEY.kid,
            public_b64=ORG_KEY.public_b64(), device=None, at=None, rkid_raw=rkid_raw)
        enc, ct, _ = envelopes._envelope_parts(envelope)
        assert ORG_KEY._hpke_open(enc, ct, info) == b'\x07' * 32
    with pytest.raises(ValueError):
        envelopes.seal_rk(b'\x07' * 32, org=ORG, doc_id='contact:1', rkid='F' * 32,
                          kid=ORG_KEY.kid, public_b64=ORG_KEY.public_b64(), device=None, at=None)


# -- Parsed paths carry each pointer's member name and PAE item ---------------


def test_parsed_paths_carry_names_and_aad_items():
    parsed = fields._parse_paths(['/full_name', '/address/street', '/a~1b'])
    assert parsed.fields == (
        ('/full_name', 'full_name', ('full_name',), _encoding.pae_item('/full_name')),
        ('/address/street', None, ('address', 'street'), _encoding.pae_item('/address/street')),
        ('/a~1b', 'a/b', ('a/b',), _encoding.pae_item('/a~1b')),
    )
    assert list(parsed) == [(pointer, tokens) for pointer, _, tokens, _ in parsed.fields]


def test_a_pointer_that_is_not_unicode_fails_as_before_only_when_used():
    paths = ['/full_name', '/\ud800']
    assert fields._parse_paths(paths).fields[1][3] is None
    doc = {'_id': 'contact:1', 'full_name': 'Jane'}
    sealed, envelope = keys.seal_document(doc, paths=paths, org=ORG, manifest_body=MANIFEST)
    keys.validate_sealed_document(sealed, paths=paths)
    keyring = keys.Keyring([ORG_KEY])
    assert keys.open_document(sealed, envelopes=[envelope], keyring=keyring, paths=paths,
                              org=ORG) == doc
    with pytest.raises(UnicodeEncodeError):
        keys.seal_document({**doc, '\ud800': 'x'}, paths=paths, org=ORG, manifest_body=MANIFEST)
    with pytest.raises(UnicodeEncodeError):
        keys.reseal_fields(sealed, {'/\ud800': 'x'}, org=ORG, manifest_body=MANIFEST)


# -- Randomness, HKDF, identifiers, manifest reasons --------------------------


def test_randomness_is_drawn_in_the_documented_order():
    calls = []

    def rng(length: int) -> bytes:
        calls.append(length)
        return bytes([len(calls)]) * length

    rk, rkid_raw, nonces = fields._Randomness(rng).draw(3)
    assert calls == [32, 16, 12, 12, 12]
    assert (rk, rkid_raw, nonces) == (b'\x01' * 32, b'\x02' * 16,
                                      [b'\x03' * 12, b'\x04' * 12, b'\x05' * 12])
    rk, rkid_raw, nonces = fields._Randomness(None).draw(8)
    assert (len(rk), len(rkid_raw), [len(nonce) for nonce in nonces]) == (32, 16, [12] * 8)
    assert len({rk[:12], rkid_raw[:12], *nonces}) == 10
    with pytest.raises(ValueError):
        fields._Randomness(lambda length: b'short').draw(1)


def test_hkdf_many_of_no_info_is_nothing():
    assert _primitives.hkdf_sha256_many(b'ikm', salt=b'salt', infos=()) == ()


@pytest.mark.parametrize('value', [
    'org-acme', 'a', 'a' * 64, 'a' * 65, '-a', 'a b', 'é', '', None, 5, b'org', Text('org-acme'),
    Text('-x'), ['org'],
])
def test_is_identifier_answers_the_same_cached_or_not(value):
    expected = isinstance(value, str) and _encoding.IDENTIFIER.fullmatch(value) is not None
    assert _encoding.is_identifier(value) is expected
    assert _encoding.is_identifier(value) is expected  # From the cache, for a str.


def test_seal_value_takes_a_twelve_byte_nonce_only():
    arguments = {'rk': bytes(32), 'rkid': RKID, 'org': ORG, 'doc_id': 'contact:1',
                 'pointer': '/full_name'}
    sealed = fields.seal_value('Jane', nonce=bytes(12), **arguments)
    assert sealed['n'] == b64url_encode(bytes(12))
    assert fields.open_value(sealed, rk=bytes(32), org=ORG, doc_id='contact:1',
                             pointer='/full_name') == 'Jane'
    for nonce in (bytes(8), bytes(16)):
        with pytest.raises(ValueError):
            fields.seal_value('Jane', nonce=nonce, **arguments)


@pytest.mark.parametrize(('entry', 'reason'), [
    ('not an object', "manifest 'keys[0]' is not an object"),
    ({'kid': 'k1'}, "manifest 'keys[0]' has missing or unknown members"),
    ({'kid': '-k', 'suite': keys.SUITE, 'status': 'active'},
     "manifest 'keys[0].kid' is not a valid key identifier"),
    ({'kid': 'k1', 'suite': 'x', 'status': 'active'},
     "manifest 'keys[0].suite' is not an allowed suite"),
    ({'kid': 'k1', 'suite': keys.SUITE, 'status': 'x'},
     "manifest 'keys[0].status' is not a known status"),
    ({'kid': 'k1', 'suite': keys.SUITE, 'status': 'active', 'pub': 'AAAA'},
     "'keys[0].pub' is not a P-256 public key"),
    ({'kid': 'k1', 'suite': keys.SUITE, 'status': 'active'},
     "manifest 'keys[0].pub' is required for the active key"),
    ({**ORG_KEY.manifest_entry(), 'accept_until': '2026-04-30'},
     "manifest 'keys[0].accept_until' is allowed on decrypt-only keys only"),
    ({**ORG_KEY.manifest_entry('decrypt-only'), 'accept_until': '30/04/2026'},
     "manifest 'keys[0].accept_until' is not a YYYY-MM-DD date"),
])
def test_manifest_entry_reasons_are_worded_as_before(entry, reason):
    with pytest.raises(InvalidKeyMaterial) as caught:
        keys.manifest._check_entry(0, entry)
    assert str(caught.value) == reason
    assert caught.value.__cause__ is None


def test_header_names_that_are_not_rkids_are_refused_by_name():
    sealed, _ = keys.seal_document({'_id': 'contact:1', 'full_name': 'Jane'},
                                   paths=['/full_name'], org=ORG, manifest_body=MANIFEST)
    entry = next(iter(sealed['fle']['keys'].values()))
    for name in ('F' * 32, 'f' * 31, 'g' * 32, ' ' + 'f' * 31, 'f' * 32 + '\n'):
        sealed['fle']['keys'] = {name: entry}
        with pytest.raises(InvalidKeyMaterial) as caught:
            keys.validate_sealed_document(sealed, paths=['/full_name'])
        assert str(caught.value) == "document 'fle.keys' has a name that is not an rkid"


def test_timestamps_of_utc_datetimes_skip_nothing_but_the_conversion():
    import datetime
    utc = datetime.timezone.utc
    moment = datetime.datetime(2026, 3, 2, 10, 15, 7, 999999, tzinfo=utc)
    for same in (moment, moment.astimezone(datetime.timezone(datetime.timedelta(hours=2))),
                 moment.replace(tzinfo=datetime.timezone(datetime.timedelta(0)))):
        assert _encoding.format_timestamp(same) == '2026-03-02T10:15:07Z'
    assert _encoding.format_timestamp(moment.replace(year=999)) == '0999-03-02T10:15:07Z'
    with pytest.raises(ValueError):
        _encoding.format_timestamp(moment.replace(tzinfo=None))


# -- rkid and timestamp checks without the regex engine -----------------------


@pytest.mark.parametrize('value', [
    RKID, RKID.upper(), RKID[:-1], RKID + '0', ' ' + RKID[1:], RKID[:-1] + ' ', RKID[:30] + ' 0',
    RKID[:-1] + '\n', RKID[:-1] + 'g', RKID[:-1] + '\u0660', RKID[:-1] + 'é', '', None, 5,
    RKID.encode(), Text(RKID), '\t' * 32, '0x' + RKID[2:],
])
def test_rkid_check_is_the_rkid_pattern(value):
    expected = isinstance(value, str) and _encoding.RKID.fullmatch(value) is not None
    assert _encoding.is_rkid(value) is expected
    if expected:
        assert _encoding.rkid_bytes(value) == bytes.fromhex(value)
    else:
        with pytest.raises(ValueError):
            _encoding.rkid_bytes(value)


@pytest.mark.parametrize('value', [
    '2026-03-02T10:15:07Z', '0999-01-02T03:04:05Z', '\u0662\u0660\u0662\u0666-03-02T10:15:07Z',
    '2026-03-02T10:15:0\uff17Z', '\u00b2026-03-02T10:15:07Z', '2026-03-02T10:15:07Z\n',
    '2026-03-02 10:15:07Z', '2026-3-02T10:15:07Z', '2026-03-02T10:15:07', '2026-03-02T10:15:07z',
    '2026-03-02T10-15-07Z', '2026/03/02T10:15:07Z', '+026-03-02T10:15:07Z', ' 026-03-02T10:15:07Z',
    '', None, 20260302, Text('2026-03-02T10:15:07Z'), b'2026-03-02T10:15:07Z',
])
def test_timestamp_check_is_the_timestamp_pattern(value):
    expected = isinstance(value, str) and _encoding.TIMESTAMP.fullmatch(value) is not None
    assert _encoding.is_timestamp(value) is expected
