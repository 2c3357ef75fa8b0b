"""Custom marshmallow fields and validators for fieldvault records.

Two rules shape every field here:

* A field returns the JSON value it was given, unchanged. Validation never
  normalizes a document (no ``"Z"`` to ``"+00:00"``, no ``5`` to ``5.0``, no
  ``"yes"`` to ``True``): the gateway stores replicated documents under the
  revision the tablet gave them, so the stored bytes must be the tablet's.
* Messages are data (``default_error_messages``) and never interpolate the
  input. They name the rule broken, so they are safe to return and to log.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Iterable
from typing import Any
from typing import ClassVar

from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate

import fle
from fle import FLE_VERSION
from fle import RKID as RKID_PATTERN
from fle import base64url
from fle.shapes import SEALED_VALUE_KEYS
from fle.shapes import decode_ciphertext
from fle.shapes import decode_nonce

__all__ = [
    'FLE_VERSION',
    'RKID_PATTERN',
    'Base64Data',
    'Base64UrlBytes',
    'CalendarDate',
    'Code',
    'DocumentId',
    'ExactInteger',
    'FullMatch',
    'NoDuplicates',
    'Number',
    'PartialDate',
    'PatternString',
    'Phone',
    'SealedValue',
    'StrictBoolean',
    'Timestamp',
    'FleIdentifier',
    'FleTimestamp',
    'Token',
    'UUID4',
    'parse_partial_date',
    'parse_timestamp',
    'valid_partial_date',
    'valid_timestamp',
]

_UUID4 = r'[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'
# [0-9], not \d: \d also matches non-ASCII digits.
_TIMESTAMP_PATTERN = re.compile(
    r'[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?'
    r'(?:Z|[+-][0-9]{2}:[0-9]{2})')
_PARTIAL_DATE_PATTERN = re.compile(r'([0-9]{4})-([0-9]{2})(?:-([0-9]{2}))?')


def parse_timestamp(text: Any) -> dt.datetime | None:
    """Return the aware datetime an ISO 8601 timestamp names, or None."""
    if not isinstance(text, str) or not _TIMESTAMP_PATTERN.fullmatch(text):
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def parse_partial_date(text: Any) -> tuple[dt.date, dt.date] | None:
    """Return the first and last day a ``YYYY-MM[-DD]`` date can mean, or None."""
    if not isinstance(text, str):
        return None
    match = _PARTIAL_DATE_PATTERN.fullmatch(text)
    if match is None:
        return None
    year, month, day = match.groups()
    try:
        if day is not None:
            exact = dt.date(int(year), int(month), int(day))
            return exact, exact
        first = dt.date(int(year), int(month), 1)
    except ValueError:
        return None
    next_month = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first, next_month - dt.timedelta(days=1)


def valid_timestamp(text: str) -> dt.datetime:
    """Return the datetime of a timestamp its field has already validated.

    For schema rules, which run only on fields that passed.

    Raises:
        ValueError: It is not a timestamp after all.
    """
    parsed = parse_timestamp(text)
    if parsed is None:
        raise ValueError('not a validated timestamp')
    return parsed


def valid_partial_date(text: str) -> tuple[dt.date, dt.date]:
    """Return the day range of a partial date its field has already validated.

    Raises:
        ValueError: It is not a partial date after all.
    """
    parsed = parse_partial_date(text)
    if parsed is None:
        raise ValueError('not a validated partial date')
    return parsed


class FullMatch(validate.Regexp):
    """Regexp validator that must match the whole string.

    Patterns are written ``^...$`` so the JSON Schema export, whose
    ``pattern`` is unanchored ECMA-262, means the same thing. The message is
    used as given, never formatted, so it cannot interpolate ``{input}``.
    """

    regex: re.Pattern[str]

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self.error)
        return value


class NoDuplicates(validate.Validator):
    """Validator refusing a list in which an item repeats."""

    #: Default error message.
    error = 'Items must not repeat.'

    def __call__(self, value: Iterable[Any]) -> Iterable[Any]:
        items = list(value)
        if len({repr(item) for item in items}) != len(items):
            raise ValidationError(self.error)
        return value


class Code(fields.String):
    """A coded answer: one string out of a fixed list.

    The choices land in the JSON Schema as ``enum`` (apispec reads OneOf).

    Args:
        choices: The allowed codes.
    """

    #: Default error messages.
    default_error_messages = {'not_a_code': 'Must be one of: {choices}.'}

    def __init__(self, choices: Iterable[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = tuple(choices)
        self.validators.insert(
            0, validate.OneOf(self.choices, error=str(self.error_messages['not_a_code'])))


class PatternString(fields.String):
    """A string that must match ``PATTERN`` as a whole.

    Subclasses set ``PATTERN`` and a ``mismatch`` message; the pattern is
    exported to JSON Schema.
    """

    #: Whole-string pattern, written ``^...$``.
    PATTERN: ClassVar[str] = ''

    #: Default error messages.
    default_error_messages = {'mismatch': 'Does not have the expected form.'}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.insert(
            0, FullMatch(self.PATTERN, error=str(self.error_messages['mismatch'])))


class Token(PatternString):
    """An opaque identifier chosen by the system (org, user, device, key id)."""

    PATTERN = r'^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$'

    #: Default error messages.
    default_error_messages = {
        'mismatch': 'Must be 1-128 letters, digits or . _ : @ -, starting with a letter or digit.',
    }


class FleIdentifier(PatternString):
    """An fle/1 identifier: an org, key version or device id bound into AAD and info.

    Narrower than :class:`Token`: openers refuse anything else, so intake must too.
    """

    PATTERN = f'^{fle.IDENTIFIER.pattern}$'

    #: Default error messages.
    default_error_messages = {
        'mismatch': 'Must be 1-64 letters, digits or . _ -, starting with a letter or digit.',
    }


class FleTimestamp(PatternString):
    """An fle/1 ``at`` time: UTC, whole seconds, ``YYYY-MM-DDTHH:MM:SSZ``."""

    PATTERN = f'^{fle.TIMESTAMP.pattern}$'

    #: Default error messages.
    default_error_messages = {
        'mismatch': 'Must be a UTC time in whole seconds, e.g. 2026-03-02T10:15:00Z.',
    }


class UUID4(PatternString):
    """A random (version 4) UUID in canonical lowercase text form."""

    PATTERN = rf'^{_UUID4}$'

    #: Default error messages.
    default_error_messages = {'mismatch': 'Must be a lowercase version 4 UUID.'}


class DocumentId(PatternString):
    """A record ``_id``: ``"<type>:<uuid4>"``.

    The envelope checks that the type part names the document's own type.
    """

    PATTERN = rf'^[a-z][a-z_]*:{_UUID4}$'

    #: Default error messages.
    default_error_messages = {
        'mismatch': 'Must be "<type>:<uuid4>", e.g. '
                    '"contact:0b7e9c1a-5d2f-4c3b-9a8e-1f2d3c4b5a69".',
    }


class Phone(PatternString):
    """A telephone number in E.164 form (``+`` optional), as HTCDS writes it."""

    PATTERN = r'^\+?[1-9][0-9]{1,14}$'

    #: Default error messages.
    default_error_messages = {
        'mismatch': 'Must be an E.164 phone number: optional +, then 2-15 digits.',
    }


class Timestamp(fields.String):
    """An ISO 8601 date-time with a time zone, kept as the string given."""

    #: Default error messages.
    default_error_messages = {
        'invalid_timestamp': 'Must be an ISO 8601 date-time with a time zone, e.g. '
                             '2026-03-02T10:15:00Z.',
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if parse_timestamp(text) is None:
            raise self.make_error('invalid_timestamp')
        return text


class CalendarDate(PatternString):
    """A calendar date ``YYYY-MM-DD``, kept as the string given."""

    PATTERN = r'^[0-9]{4}-[0-9]{2}-[0-9]{2}$'

    #: Default error messages.
    default_error_messages = {'mismatch': 'Must be a date YYYY-MM-DD.'}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        bounds = parse_partial_date(text)
        if bounds is None or bounds[0] != bounds[1]:
            raise self.make_error('mismatch')
        return text


class PartialDate(PatternString):
    """A date that may lack its day: ``YYYY-MM`` or ``YYYY-MM-DD``."""

    PATTERN = r'^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$'

    #: Default error messages.
    default_error_messages = {'mismatch': 'Must be a date YYYY-MM-DD or YYYY-MM.'}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if parse_partial_date(text) is None:
            raise self.make_error('mismatch')
        return text


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false``; marshmallow's ``"yes"``/``1`` are refused."""

    #: Default error messages.
    default_error_messages = {'invalid': 'Must be true or false.'}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error('invalid')


class Number(fields.Float):
    """A finite JSON number, returned as given (an int stays an int)."""

    #: Default error messages.
    default_error_messages = {'invalid': 'Must be a number.'}

    def _format_num(self, value: Any) -> float:
        # Number._validated has already refused booleans.
        if isinstance(value, (int, float)):
            return value
        raise TypeError('not a JSON number')


class ExactInteger(fields.Field):
    """A format version: the JSON integer ``expected`` and nothing else.

    Args:
        expected: The one supported value.
    """

    #: Default error messages.
    default_error_messages = {'unsupported': 'Unsupported version; must be {expected}.'}

    def __init__(self, expected: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.expected = expected

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        # type() rather than isinstance(): True == 1 must not pass as version 1.
        if type(value) is not int or value != self.expected:
            raise self.make_error('unsupported', expected=self.expected)
        return value

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return value


class Base64Data(fields.String):
    """Binary content as standard base64 with padding, bounded in size.

    Args:
        max_bytes: Largest decoded size accepted.
    """

    #: Default error messages.
    default_error_messages = {
        'invalid_base64': 'Must be standard base64 with padding.',
        'too_large': 'Must decode to at most {max_bytes} bytes.',
    }

    def __init__(self, *, max_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_bytes = max_bytes

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > -(-self.max_bytes // 3) * 4:
            raise self.make_error('too_large', max_bytes=self.max_bytes)
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise self.make_error('invalid_base64') from None
        if len(raw) > self.max_bytes:
            raise self.make_error('too_large', max_bytes=self.max_bytes)
        return text


class Base64UrlBytes(fields.String):
    """Exactly ``size`` bytes as base64url without padding (e.g. a key commitment).

    Args:
        size: Number of bytes the text must decode to.
    """

    #: Default error messages.
    default_error_messages = {
        'invalid_base64url': 'Must be base64url without padding of {size} bytes.',
    }

    def __init__(self, *, size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = size

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            base64url.decode(text, length=self.size)
        except ValueError:
            raise self.make_error('invalid_base64url', size=self.size) from None
        return text


class SealedValue(fields.Field):
    """An identifying value sealed with fle/1, checked for shape only.

    The shape is exactly ``{"fle": 1, "rk": <rkid>, "n": <nonce>, "ct":
    <ciphertext>}`` with ``n`` and ``ct`` in base64url without padding. No
    cryptography happens here: the server cannot open sealed values. Whether
    ``rk`` names a key of the document's ``fle.keys`` is a cross-field rule of
    the envelope.

    Args:
        pointer: JSON Pointer of the field, named in the plaintext message.
    """

    #: Default error messages.
    default_error_messages = {
        'plaintext': 'Identifying field {pointer} must hold a sealed fle/1 value; '
                     'plaintext is refused.',
        'unsupported_version': 'Unsupported sealed value version; fle must be 1.',
        'invalid_shape': 'A sealed value has exactly the keys fle, rk, n and ct.',
        'invalid_rk': 'Must be a record key id: 32 lowercase hex characters.',
        'invalid_nonce': 'Must be base64url without padding of a 12-byte nonce.',
        'invalid_ciphertext': 'Must be base64url without padding of 16 + 32k bytes (k >= 1).',
        'ciphertext_too_long': 'Must decode to at most 65536 bytes.',
    }

    def __init__(self, *, pointer: str = '', **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pointer = pointer

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return value

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or 'fle' not in value:
            raise self.make_error('plaintext', pointer=self.pointer or f'/{self.name}')
        if not fle.is_written_version(value['fle']):
            raise self.make_error('unsupported_version')
        if value.keys() != SEALED_VALUE_KEYS:
            raise self.make_error('invalid_shape')
        errors: dict[str, list[str]] = {}
        if not fle.is_rkid(value['rk']):
            errors['rk'] = [str(self.error_messages['invalid_rk'])]
        try:
            decode_nonce(value['n'])
        except fle.FormatError:
            errors['n'] = [str(self.error_messages['invalid_nonce'])]
        try:
            decode_ciphertext(value['ct'])
        except fle.FormatError as error:
            too_long = error.problem == 'too_long'
            errors['ct'] = [str(self.error_messages[
                'ciphertext_too_long' if too_long else 'invalid_ciphertext'])]
        if errors:
            raise ValidationError(errors)
        return dict(value)
