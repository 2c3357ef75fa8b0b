"""Properties: each seal and open shortcut equals the plain definition.

The references are the plain definitions in ``tests/unit/test_keys_fast_paths.py``;
here they are compared with the shortcuts on generated input, including
input no sealer writes (lone surrogates, non-canonical base64url, str
subclasses, wrong lengths).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keys import _encoding, envelopes, fields
from keys._encoding import b64url_encode, pae
from tests.unit.test_keys_fast_paths import (
    Text,
    outcome,
    reference_encode,
    reference_pad,
    reference_sealed_parts,
    reference_unpad,
)

pytestmark = pytest.mark.unit

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

#: Any code point, lone surrogates included (JSON encodes them, UTF-8 cannot),
#: and often the characters JSON escapes.
any_text = st.text(st.one_of(
    st.characters(exclude_categories=()),
    st.sampled_from(['"', '\\', '\x00', '\x1f', '\u2028', '\ud800', '\udfff', '\U0001f335']),
), max_size=12)
json_values = st.recursive(
    st.one_of(any_text, any_text.map(Text), st.integers(), st.booleans(), st.none(),
              st.floats(allow_nan=True, allow_infinity=True)),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(any_text, max_size=4),
        st.dictionaries(any_text, children, max_size=3),
    ),
    max_leaves=10,
)


def encode_outcome(function, value):
    """The bytes, or only which kind of refusal (messages come from json)."""
    try:
        return ('value', function(value))
    except ValueError:
        return ('error', ValueError)
    except TypeError:
        return ('error', TypeError)


@SETTINGS
@given(json_values)
def test_encode_value_is_json_dumps(value):
    assert encode_outcome(fields.encode_value, value) == encode_outcome(reference_encode, value)


@SETTINGS
@given(st.binary(max_size=80))
def test_pad_is_the_definition(data):
    assert fields.pad(data) == reference_pad(data)
    assert fields.unpad(fields.pad(data)) == data


padded_like = st.one_of(
    st.binary(max_size=96),
    st.builds(lambda data, zeros: data + b'\x80' + bytes(zeros),
              st.binary(max_size=64), st.integers(min_value=0, max_value=70)),
    st.builds(lambda data, zeros: data + bytes(zeros),
              st.binary(max_size=64), st.integers(min_value=0, max_value=70)),
)


@SETTINGS
@given(padded_like)
def test_unpad_is_the_definition(padded):
    assert outcome(fields.unpad, padded) == outcome(reference_unpad, padded)


b64_alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
#: Encoded members as sealers write them, near misses, and other types.
encoded = st.one_of(
    st.binary(min_size=0, max_size=120).map(b64url_encode),
    st.binary(min_size=12, max_size=12).map(b64url_encode),
    st.text(alphabet=b64_alphabet + '+/= \n\u00e9', max_size=120),
    st.text(alphabet=b64_alphabet, min_size=16, max_size=16),
    st.binary(max_size=60).map(b64url_encode).map(Text),
    st.none(), st.integers(), st.binary(max_size=16),
)
rkids = st.one_of(st.just('6f6785aa5f4dde7a04c603b047652340'), st.text(max_size=33),
                  st.integers())
sealed_like = st.one_of(
    st.fixed_dictionaries({'fle': st.sampled_from([1, 1.0, True, 2, '1']), 'rk': rkids,
                           'n': encoded, 'ct': encoded}),
    st.fixed_dictionaries({'fle': st.just(1), 'rk': rkids, 'n': encoded}),
    st.text(max_size=8), st.none(),
)


@SETTINGS
@given(sealed_like, st.sampled_from([None, '/full_name']), st.booleans())
def test_sealed_parts_is_the_definition(value, pointer, with_rkids):
    rkids = {'6f6785aa5f4dde7a04c603b047652340': b''} if with_rkids else None
    assert outcome(fields._sealed_parts, value, pointer=pointer, rkids=rkids) == outcome(
        reference_sealed_parts, value, pointer=pointer, rkids=rkids)


@SETTINGS
@given(st.one_of(st.text(max_size=70), st.text(alphabet='az09.-_', max_size=70).map(Text),
                 st.binary(max_size=8), st.integers(), st.none()))
def test_is_identifier_is_the_pattern(value):
    expected = isinstance(value, str) and _encoding.IDENTIFIER.fullmatch(value) is not None
    assert _encoding.is_identifier(value) is expected


@SETTINGS
@given(st.text(max_size=20), st.text(max_size=20), st.text(max_size=40),
       st.binary(min_size=16, max_size=16))
def test_envelope_info_is_the_pae_of_the_spec(org, kek, doc_id, rkid_raw):
    try:
        spec = pae('fle/1/rk', org, kek, doc_id, rkid_raw)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            envelopes._info(org, kek, doc_id, rkid_raw)
    else:
        assert envelopes._info(org, kek, doc_id, rkid_raw) == spec


hexish = st.text(alphabet='0123456789abcdefABCDEF \t\n\u0660g', min_size=30, max_size=34)


@SETTINGS
@given(st.one_of(hexish, st.text(max_size=34), st.binary(min_size=16, max_size=16).map(bytes.hex)))
def test_rkid_check_is_the_pattern(value):
    expected = _encoding.RKID.fullmatch(value) is not None
    assert _encoding.is_rkid(value) is expected
    assert outcome(_encoding.rkid_bytes, value)[0] == ('value' if expected else 'error')


timestampish = st.builds(
    lambda parts, separators: ''.join(p + s for p, s in zip(parts, separators)),
    st.lists(st.text(alphabet='0123456789\u0660\u00b2\uff17x ', min_size=1, max_size=5),
             min_size=6, max_size=6),
    st.lists(st.sampled_from(['-', 'T', ':', 'Z', ' ', '']), min_size=6, max_size=6),
)


@SETTINGS
@given(st.one_of(timestampish, st.text(max_size=22),
                 st.datetimes().map(lambda moment: moment.strftime('%Y-%m-%dT%H:%M:%SZ'))))
def test_timestamp_check_is_the_pattern(value):
    assert _encoding.is_timestamp(value) is (_encoding.TIMESTAMP.fullmatch(value) is not None)
