"""Screening instrument packs: versioned data, not code.

A pack is one JSON file: item codes, short prompts, allowed answers, the
modes it may be administered in, scoring rules and its licence status. The
shipped packs live next to this module; a deployment adds packs (for example
a licensed CSE-IT) by dropping JSON files in the directory its configuration
names (``FIELDVAULT_INSTRUMENT_DIR``), which the service passes to
``load_packs``. README.md in this directory gives the format and the licence
status of each shipped pack.

``load_packs`` installs the packs it read as the set that ``get_pack``,
``find_pack`` and screening validation consult. Until it is called, the
shipped packs are installed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import pathlib
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate
from marshmallow import validates_schema

from schemas import codes
from schemas.errors import InvalidPack
from schemas.fields import Code
from schemas.fields import FullMatch
from schemas.fields import NoDuplicates
from schemas.fields import StrictBoolean
from schemas.parts import ITEM_CODE_PATTERN
from schemas.parts import PACK_ID_PATTERN
from schemas.parts import StrictSchema

__all__ = [
    'PACK_FORMAT',
    'VERSION_PATTERN',
    'InstrumentItem',
    'InstrumentPack',
    'PackSchema',
    'find_pack',
    'get_pack',
    'load_packs',
    'read_pack',
    'score',
]

#: Format tag every pack file carries.
PACK_FORMAT = 'fieldvault-instrument/1'
#: Pack versions: one to three dot-separated numbers, compared numerically.
VERSION_PATTERN = r'^[0-9]{1,4}(\.[0-9]{1,4}){0,2}$'

_SHIPPED_DIR = pathlib.Path(__file__).resolve().parent
_NAME_PATTERN = r'^[a-z][a-z0-9_]{0,31}$'
_LICENCE_STATUSES = ('public_domain', 'free_no_permission', 'published_check_terms', 'licensed')


# --- the pack format ---


class _AnswerSetSchema(StrictSchema):
    values = fields.List(fields.String(validate=validate.Length(min=1, max=64)), required=True,
                         validate=[validate.Length(min=1, max=50), NoDuplicates()])
    # Points per answer, for "sum" rules (rating scales such as CSE-IT's).
    points = fields.Dict(keys=fields.String(), values=fields.Integer(strict=True),
                         allow_none=True)

    error_messages = {'points_unknown_answer': 'Every key must be one of values.'}

    @validates_schema
    def _points_name_answers(self, data: dict[str, Any], **kwargs: Any) -> None:
        if set(data.get('points') or ()) - set(data['values']):
            raise self.rule_error('points_unknown_answer', 'points')


class _ItemSchema(StrictSchema):
    code = fields.String(required=True, validate=FullMatch(
        ITEM_CODE_PATTERN, error='Must be an item code.'))
    prompt = fields.String(required=True, validate=validate.Length(min=1, max=300))
    answers = fields.String(required=True, validate=FullMatch(
        _NAME_PATTERN, error='Must name an answer set.'))
    timeframes = fields.List(Code(codes.ANSWER_TIMEFRAMES), allow_none=True,
                             validate=NoDuplicates())
    domain = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))


class _ResultValuesSchema(StrictSchema):
    positive_screen = StrictBoolean()
    concern_level = Code(codes.CONCERN_LEVELS)
    trafficking_type = Code(codes.TRAFFICKING_TYPES)


class _ConditionSchema(StrictSchema):
    # "count": distinct items whose answer is one of ``answers``.
    # "sum": over distinct items, the highest points of their answers.
    measure = Code(('count', 'sum'), required=True)
    items = fields.List(fields.String(), allow_none=True, validate=validate.Length(min=1))
    answers = fields.List(fields.String(), allow_none=True, validate=validate.Length(min=1))
    at_least = fields.Integer(strict=True, required=True, validate=validate.Range(min=0))

    error_messages = {'count_needs_answers': 'Required for a count condition.'}

    @validates_schema
    def _count_names_answers(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data['measure'] == 'count' and not data.get('answers'):
            raise self.rule_error('count_needs_answers', 'answers')


class _RuleSchema(StrictSchema):
    id = fields.String(required=True, validate=FullMatch(_NAME_PATTERN, error='Must be a name.'))
    when = fields.List(fields.Nested(_ConditionSchema), required=True,
                       validate=validate.Length(min=1, max=10))
    then = fields.Nested(_ResultValuesSchema, required=True)


class _ScoringSchema(StrictSchema):
    default = fields.Nested(_ResultValuesSchema, required=True)
    rules = fields.List(fields.Nested(_RuleSchema), required=True,
                        validate=validate.Length(max=50))


class _LicenceSchema(StrictSchema):
    status = Code(_LICENCE_STATUSES, required=True)
    holder = fields.String(required=True, validate=validate.Length(min=1, max=200))
    source = fields.String(required=True, validate=validate.Length(min=1, max=500))
    note = fields.String(allow_none=True, validate=validate.Length(min=1, max=2000))


class PackSchema(StrictSchema):
    """The instrument pack file format, ``fieldvault-instrument/1``."""

    error_messages = {
        'duplicate_item': 'Item codes must be unique.',
        'unknown_answer_set': 'Must name one of answer_sets.',
        'duplicate_rule': 'Rule ids must be unique.',
        'rule_unknown_item': 'Names an item the pack does not have.',
        'rule_unknown_answer': 'Names an answer none of its items allow.',
        'rule_items_without_points': 'A sum needs items whose answer sets give points.',
    }

    format = fields.String(required=True, validate=validate.Equal(
        PACK_FORMAT, error=f'Must be {PACK_FORMAT}.'))
    id = fields.String(required=True, validate=FullMatch(
        PACK_ID_PATTERN, error='Must be 2-32 capitals, digits or _, starting with a capital.'))
    version = fields.String(required=True, validate=FullMatch(
        VERSION_PATTERN, error='Must be a version such as 1.0.'))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    licence = fields.Nested(_LicenceSchema, required=True)
    modes = fields.List(Code(codes.SCREENING_MODES), required=True,
                        validate=[validate.Length(min=1), NoDuplicates()])
    answer_sets = fields.Dict(
        keys=fields.String(validate=FullMatch(_NAME_PATTERN, error='Must be a name.')),
        values=fields.Nested(_AnswerSetSchema), required=True,
        validate=validate.Length(min=1))
    items = fields.List(fields.Nested(_ItemSchema), required=True,
                        validate=validate.Length(min=1, max=200))
    scoring = fields.Nested(_ScoringSchema, required=True)

    @validates_schema
    def _references_resolve(self, data: dict[str, Any], **kwargs: Any) -> None:
        problems: list[tuple[str, Any]] = []
        seen: set[str] = set()
        for index, item in enumerate(data['items']):
            if item['code'] in seen:
                problems.append(('duplicate_item', ('items', index, 'code')))
            seen.add(item['code'])
            if item['answers'] not in data['answer_sets']:
                problems.append(('unknown_answer_set', ('items', index, 'answers')))
        rule_ids: set[str] = set()
        for rule_index, rule in enumerate(data['scoring']['rules']):
            if rule['id'] in rule_ids:
                problems.append(('duplicate_rule', ('scoring', 'rules', rule_index, 'id')))
            rule_ids.add(rule['id'])
            for when_index, condition in enumerate(rule['when']):
                where = ('scoring', 'rules', rule_index, 'when', when_index)
                problems.extend(self._condition_problems(data, condition, where))
        if problems:
            raise self.rule_errors(problems)

    @staticmethod
    def _condition_problems(data: dict[str, Any], condition: dict[str, Any],
                            where: tuple[Any, ...]) -> Iterable[tuple[str, Any]]:
        by_code = {item['code']: item for item in data['items']}
        codes_named = condition.get('items') or list(by_code)
        if any(code not in by_code for code in codes_named):
            yield 'rule_unknown_item', (*where, 'items')
            return
        answer_sets = [data['answer_sets'].get(by_code[code]['answers']) for code in codes_named]
        if None in answer_sets:
            return  # The item's unknown answer set is reported on the item.
        allowed = {value for answer_set in answer_sets for value in answer_set['values']}
        if set(condition.get('answers') or ()) - allowed:
            yield 'rule_unknown_answer', (*where, 'answers')
        if condition['measure'] == 'sum' and not any(
                answer_set.get('points') for answer_set in answer_sets):
            yield 'rule_items_without_points', (*where, 'items')


# --- loaded packs ---


@dataclasses.dataclass(frozen=True)
class InstrumentItem:
    """One item of a pack, with the answers it allows."""

    code: str
    prompt: str
    answers: tuple[str, ...]
    points: Mapping[str, int]
    timeframes: tuple[str, ...]
    domain: str | None


@dataclasses.dataclass(frozen=True)
class InstrumentPack:
    """A validated instrument pack. Treat it as read-only.

    Attributes:
        id: Pack id, e.g. ``QYIT``.
        version: Pack version, e.g. ``1.0``.
        title: Human title.
        modes: Modes it may be administered in.
        items: Item code to item, in pack order.
        rules: Scoring rules, applied in order (a later match wins).
        default_result: Result values before any rule matches.
        licence: Licence status, holder, source and note.
        source: File the pack was read from.
    """

    id: str
    version: str
    title: str
    modes: tuple[str, ...]
    items: Mapping[str, InstrumentItem]
    rules: tuple[Mapping[str, Any], ...]
    default_result: Mapping[str, Any]
    licence: Mapping[str, Any]
    source: str
    document: Mapping[str, Any] = dataclasses.field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the pack as JSON data (a copy), e.g. to publish to tablets."""
        return copy.deepcopy(dict(self.document))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split('.'))


def _build(document: dict[str, Any], source: str) -> InstrumentPack:
    answer_sets = document['answer_sets']
    items = {
        item['code']: InstrumentItem(
            code=item['code'], prompt=item['prompt'],
            answers=tuple(answer_sets[item['answers']]['values']),
            points=dict(answer_sets[item['answers']].get('points') or {}),
            timeframes=tuple(item.get('timeframes') or ()), domain=item.get('domain'))
        for item in document['items']
    }
    return InstrumentPack(
        id=document['id'], version=document['version'], title=document['title'],
        modes=tuple(document['modes']), items=items,
        rules=tuple(document['scoring']['rules']),
        default_result=dict(document['scoring']['default']),
        licence=dict(document['licence']), source=source, document=document)


def read_pack(path: str | os.PathLike[str]) -> InstrumentPack:
    """Read and validate one pack file.

    Raises:
        InvalidPack: The file is unreadable, not JSON, or not a valid pack.
    """
    source = os.fspath(path)
    try:
        text = pathlib.Path(source).read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as ex:
        raise InvalidPack(source, {'_schema': [f'Cannot read the file ({type(ex).__name__}).']}) \
            from ex
    try:
        document = json.loads(text)
    except json.JSONDecodeError as ex:
        raise InvalidPack(source, {'_schema': [
            f'Not valid JSON (line {ex.lineno}, column {ex.colno}).']}) from None
    if not isinstance(document, dict):
        raise InvalidPack(source, {'_schema': ['A pack is a JSON object.']})
    try:
        loaded = PackSchema().load(document)
    except ValidationError as ex:
        raise InvalidPack(source, ex.messages_dict) from None
    return _build(loaded, source)


def _read_directory(directory: pathlib.Path) -> list[InstrumentPack]:
    if not directory.is_dir():
        raise InvalidPack(str(directory), {'_schema': ['Not a directory of pack files.']})
    packs: list[InstrumentPack] = []
    seen: dict[tuple[str, str], str] = {}
    for path in sorted(directory.glob('*.json')):
        pack = read_pack(path)
        key = (pack.id, pack.version)
        if key in seen:
            raise InvalidPack(str(path), {'_schema': [
                f'Pack {pack.id} {pack.version} is also defined in {seen[key]}.']})
        seen[key] = str(path)
        packs.append(pack)
    return packs


def _newest(packs: Mapping[tuple[str, str], InstrumentPack]) -> dict[str, InstrumentPack]:
    newest: dict[str, InstrumentPack] = {}
    for pack in sorted(packs.values(), key=lambda pack: (pack.id, _version_key(pack.version))):
        newest[pack.id] = pack
    return newest


# (id, version) -> pack. Replaced whole by load_packs, never mutated, so a
# reader always sees one consistent set.
_installed: dict[tuple[str, str], InstrumentPack] | None = None


def load_packs(extra_dir: str | os.PathLike[str] | None = None) -> dict[str, InstrumentPack]:
    """Read the shipped packs plus those in ``extra_dir``, and install them.

    A pack in ``extra_dir`` with the id and version of a shipped pack
    replaces it. Several versions of one pack may be installed at once, so
    screenings captured offline under an older version still validate.

    Args:
        extra_dir: Directory of deployment pack files (``*.json``), or None.

    Returns:
        Pack id to the newest installed version of that pack.

    Raises:
        InvalidPack: A pack file is malformed, defined twice in one
            directory, or ``extra_dir`` is not a directory.
    """
    global _installed
    packs = {(pack.id, pack.version): pack for pack in _read_directory(_SHIPPED_DIR)}
    if extra_dir is not None:
        for pack in _read_directory(pathlib.Path(extra_dir)):
            packs[(pack.id, pack.version)] = pack
    _installed = packs
    return _newest(packs)


def _installed_packs() -> dict[tuple[str, str], InstrumentPack]:
    if _installed is None:
        load_packs()
    assert _installed is not None
    return _installed


def find_pack(pack_id: str, version: str | None = None) -> InstrumentPack | None:
    """Return an installed pack (newest version unless one is named), or None."""
    packs = _installed_packs()
    if version is not None:
        return packs.get((pack_id, version))
    return _newest(packs).get(pack_id)


def get_pack(pack_id: str, version: str | None = None) -> InstrumentPack:
    """Return an installed pack (newest version unless one is named).

    Raises:
        KeyError: No such pack or version is installed.
    """
    pack = find_pack(pack_id, version)
    if pack is None:
        raise KeyError(pack_id if version is None else f'{pack_id} {version}')
    return pack


def _measure(pack: InstrumentPack, condition: Mapping[str, Any],
             answers_by_item: Mapping[str, set[str]]) -> int:
    item_codes = condition.get('items') or pack.items
    if condition['measure'] == 'count':
        wanted = set(condition['answers'])
        return sum(1 for code in item_codes if answers_by_item.get(code, set()) & wanted)
    return sum(max((pack.items[code].points.get(value, 0)
                    for value in answers_by_item.get(code, ())), default=0)
               for code in item_codes)


def score(pack: InstrumentPack, responses: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Apply a pack's scoring rules to coded responses.

    Pure: the same pack and responses always give the same result. Each
    item counts once however many timeframes it was answered for. Responses
    to items the pack does not have are ignored (validation refuses them).

    Args:
        pack: The instrument pack the responses answer.
        responses: ``{"item_code", "value", ...}`` mappings.

    Returns:
        The result values (``positive_screen``, ``concern_level``,
        ``trafficking_type``, as far as the pack defines them) and
        ``rules_matched``, the ids of the rules that matched, in order.
    """
    answers_by_item: dict[str, set[str]] = {}
    for response in responses:
        if response['item_code'] in pack.items:
            answers_by_item.setdefault(response['item_code'], set()).add(response['value'])
    result: dict[str, Any] = dict(pack.default_result)
    matched: list[str] = []
    for rule in pack.rules:
        if all(_measure(pack, condition, answers_by_item) >= condition['at_least']
               for condition in rule['when']):
            result.update(rule['then'])
            matched.append(rule['id'])
    result['rules_matched'] = matched
    return result
