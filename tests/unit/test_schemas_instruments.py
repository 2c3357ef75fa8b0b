"""Instrument packs: shipped packs, packs from a deployment directory, scoring."""

from __future__ import annotations

import copy
import json

import pytest

import schemas
from schemas import instruments
from schemas.errors import InvalidPack
from tests.factories import make_screening

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def shipped_packs_afterwards():
    yield
    instruments.load_packs()


def rating_pack(**changes):
    """A licensed-style pack (rated indicators, concern bands), no real item text."""
    pack = {
        'format': 'fieldvault-instrument/1',
        'id': 'LOCAL_CONCERN',
        'version': '2.0',
        'title': 'Local concern rating (test)',
        'licence': {'status': 'licensed', 'holder': 'Test holder', 'source': 'Test source'},
        'modes': ['information_integration'],
        'answer_sets': {
            'rating': {'values': ['0', '1', '2', 'unknown'], 'points': {'0': 0, '1': 1, '2': 2}},
        },
        'items': [
            {'code': f'IND_{number}', 'prompt': f'Indicator {number}', 'answers': 'rating'}
            for number in range(1, 5)
        ],
        'scoring': {
            'default': {'concern_level': 'no_concern'},
            'rules': [
                {'id': 'possible', 'when': [{'measure': 'sum', 'at_least': 2}],
                 'then': {'concern_level': 'possible_concern'}},
                {'id': 'clear', 'when': [{'measure': 'sum', 'at_least': 5}],
                 'then': {'concern_level': 'clear_concern', 'positive_screen': True}},
            ],
        },
    }
    pack.update(changes)
    return pack


def write_pack(directory, name, pack):
    path = directory / name
    path.write_text(json.dumps(pack), encoding='utf-8')
    return path


def responses(*pairs):
    return [{'item_code': code, 'value': value} for code, value in pairs]


def test_shipped_packs_load():
    packs = instruments.load_packs()
    assert set(packs) == {'QYIT', 'TVIT_SHORT', 'HMIS_R15_R16'}
    assert len(packs['QYIT'].items) == 4
    assert len(packs['TVIT_SHORT'].items) == 16
    assert packs['QYIT'].licence['status'] == 'published_check_terms'
    assert packs['TVIT_SHORT'].licence['status'] == 'free_no_permission'
    assert packs['HMIS_R15_R16'].licence['status'] == 'public_domain'
    for pack in packs.values():
        json.dumps(pack.to_dict())


def test_get_pack_and_find_pack():
    assert instruments.get_pack('QYIT').version == '1.0'
    assert instruments.get_pack('QYIT', '1.0').id == 'QYIT'
    assert instruments.find_pack('CSE_IT_2') is None
    with pytest.raises(KeyError):
        instruments.get_pack('CSE_IT_2')
    with pytest.raises(KeyError):
        instruments.get_pack('QYIT', '9.9')


def test_to_dict_is_a_copy():
    pack = instruments.get_pack('QYIT')
    data = pack.to_dict()
    data['items'].clear()
    assert pack.to_dict()['items']


@pytest.mark.parametrize(('answers', 'expected'), [
    ([('QYIT_1', 'no'), ('QYIT_2', 'no'), ('QYIT_3', 'no'), ('QYIT_4', 'no')],
     {'positive_screen': False, 'rules_matched': []}),
    ([('QYIT_1', 'no'), ('QYIT_3', 'yes')],
     {'positive_screen': True, 'rules_matched': ['any_yes']}),
    ([('QYIT_1', 'unsure'), ('QYIT_2', 'declined')],
     {'positive_screen': False, 'rules_matched': []}),
])
def test_score_qyit(answers, expected):
    assert instruments.score(instruments.get_pack('QYIT'), responses(*answers)) == expected


@pytest.mark.parametrize(('answers', 'trafficking_type'), [
    ([('ExchangeForSex', 'yes')], 'sex'),
    ([('CoercedToContinueWork', 'yes')], 'labor'),
    ([('AskedOrForcedToExchangeForSex', 'yes'), ('WorkplacePromiseDifference', 'yes')], 'both'),
])
def test_score_hmis_sets_trafficking_type(answers, trafficking_type):
    result = instruments.score(instruments.get_pack('HMIS_R15_R16'), responses(*answers))
    assert result['positive_screen'] is True
    assert result['trafficking_type'] == trafficking_type


def test_score_tvit_labor_needs_work_and_coercion_indicators():
    pack = instruments.get_pack('TVIT_SHORT')
    assert instruments.score(pack, responses(('TVIT_PAY', 'yes')))['positive_screen'] is False
    result = instruments.score(pack, responses(('TVIT_PAY', 'yes'), ('TVIT_THREATS', 'yes')))
    assert result['trafficking_type'] == 'labor'


def test_score_is_pure_and_counts_each_item_once():
    pack = instruments.get_pack('QYIT')
    given = [{'item_code': 'QYIT_3', 'value': 'yes', 'timeframe': 'ever'},
             {'item_code': 'QYIT_3', 'value': 'yes', 'timeframe': 'past_3_months'},
             {'item_code': 'NOT_AN_ITEM', 'value': 'yes'}]
    original = copy.deepcopy(given)
    first = instruments.score(pack, given)
    assert first == instruments.score(pack, given)
    assert given == original
    assert first['rules_matched'] == ['any_yes']


def test_pack_from_extra_dir_is_installed_and_scores_sums(tmp_path):
    write_pack(tmp_path, 'local.json', rating_pack())
    packs = instruments.load_packs(str(tmp_path))
    assert set(packs) == {'QYIT', 'TVIT_SHORT', 'HMIS_R15_R16', 'LOCAL_CONCERN'}
    pack = instruments.get_pack('LOCAL_CONCERN')
    def concern(*answers):
        return instruments.score(pack, responses(*answers))['concern_level']

    assert concern(('IND_1', '1')) == 'no_concern'
    assert concern(('IND_1', '2')) == 'possible_concern'
    clear = instruments.score(pack, responses(('IND_1', '2'), ('IND_2', '2'), ('IND_3', '1')))
    assert clear == {'concern_level': 'clear_concern', 'positive_screen': True,
                     'rules_matched': ['possible', 'clear']}


def test_screening_validates_against_an_installed_extra_pack(tmp_path):
    screening = make_screening(
        instrument='LOCAL_CONCERN', instrument_version='2.0', mode='information_integration',
        responses=responses(('IND_1', '2'), ('IND_2', '1')), response_notes=None,
        result={'concern_level': 'possible_concern'})
    with pytest.raises(schemas.SchemaValidationError):
        schemas.validate_document(screening, sealed=False)
    write_pack(tmp_path, 'local.json', rating_pack())
    instruments.load_packs(tmp_path)
    assert schemas.validate_document(screening, sealed=False) == screening


def test_several_versions_stay_installed(tmp_path):
    write_pack(tmp_path, 'local-2.json', rating_pack())
    write_pack(tmp_path, 'local-10.json', rating_pack(version='10.0'))
    packs = instruments.load_packs(tmp_path)
    assert packs['LOCAL_CONCERN'].version == '10.0'  # numeric, not text, order
    assert instruments.get_pack('LOCAL_CONCERN', '2.0').version == '2.0'


def test_extra_pack_replaces_a_shipped_pack_of_the_same_version(tmp_path):
    qyit = instruments.get_pack('QYIT').to_dict()
    qyit['title'] = 'QYIT as licensed by this deployment'
    write_pack(tmp_path, 'qyit.json', qyit)
    instruments.load_packs(tmp_path)
    assert instruments.get_pack('QYIT').title == 'QYIT as licensed by this deployment'
    assert instruments.get_pack('QYIT').source.startswith(str(tmp_path))


BAD_PACKS = [
    ('unknown format', rating_pack(format='cse-it/1'),
     {'format': ['Must be fieldvault-instrument/1.']}),
    ('bad id', rating_pack(id='cse it'),
     {'id': ['Must be 2-32 capitals, digits or _, starting with a capital.']}),
    ('missing items', {key: value for key, value in rating_pack().items() if key != 'items'},
     {'items': ['Missing data for required field.']}),
    ('unknown mode', rating_pack(modes=['phone']),
     {'modes': {0: ['Must be one of: interview, self_administered, information_integration.']}}),
    ('unknown field', rating_pack(wording='x'), {'wording': ['Unknown field.']}),
    ('item names a missing answer set',
     rating_pack(items=[{'code': 'IND_1', 'prompt': 'p', 'answers': 'yes_no'}]),
     {'items': {0: {'answers': ['Must name one of answer_sets.']}}}),
    ('duplicate item',
     rating_pack(items=[{'code': 'IND_1', 'prompt': 'p', 'answers': 'rating'}] * 2),
     {'items': {1: {'code': ['Item codes must be unique.']}}}),
    ('rule names a missing item', rating_pack(scoring={
        'default': {}, 'rules': [{'id': 'r', 'when': [
            {'measure': 'sum', 'items': ['IND_9'], 'at_least': 1}], 'then': {
                'positive_screen': True}}]}),
     {'scoring': {'rules': {0: {'when': {0: {'items': [
         'Names an item the pack does not have.']}}}}}}),
    ('rule names a missing answer', rating_pack(scoring={
        'default': {}, 'rules': [{'id': 'r', 'when': [
            {'measure': 'count', 'answers': ['yes'], 'at_least': 1}], 'then': {
                'positive_screen': True}}]}),
     {'scoring': {'rules': {0: {'when': {0: {'answers': [
         'Names an answer none of its items allow.']}}}}}}),
    ('points for an unknown answer', rating_pack(answer_sets={
        'rating': {'values': ['0', '1'], 'points': {'3': 3}}}),
     {'answer_sets': {'rating': {'value': {'points': ['Every key must be one of values.']}}}}),
    ('bad result value', rating_pack(scoring={'default': {'concern_level': 'high'}, 'rules': []}),
     {'scoring': {'default': {'concern_level': [
         'Must be one of: no_concern, possible_concern, clear_concern.']}}}),
]


@pytest.mark.parametrize(('case', 'pack', 'expected'), BAD_PACKS,
                         ids=[row[0] for row in BAD_PACKS])
def test_bad_pack_file_is_refused_clearly(tmp_path, case, pack, expected):
    path = write_pack(tmp_path, 'bad.json', pack)
    with pytest.raises(InvalidPack) as caught:
        instruments.load_packs(tmp_path)
    assert caught.value.path == str(path)
    assert caught.value.messages == expected
    assert str(path) in str(caught.value)


def test_pack_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / 'broken.json'
    path.write_text('{"format": ', encoding='utf-8')
    with pytest.raises(InvalidPack) as caught:
        instruments.load_packs(tmp_path)
    assert caught.value.messages == {'_schema': ['Not valid JSON (line 1, column 12).']}


def test_pack_that_is_not_an_object_is_refused(tmp_path):
    write_pack(tmp_path, 'list.json', [rating_pack()])
    with pytest.raises(InvalidPack, match='A pack is a JSON object'):
        instruments.load_packs(tmp_path)


def test_same_pack_twice_in_one_directory_is_refused(tmp_path):
    write_pack(tmp_path, 'a.json', rating_pack())
    write_pack(tmp_path, 'b.json', rating_pack())
    with pytest.raises(InvalidPack, match='also defined in'):
        instruments.load_packs(tmp_path)


def test_missing_extra_dir_is_refused(tmp_path):
    with pytest.raises(InvalidPack, match='Not a directory'):
        instruments.load_packs(tmp_path / 'absent')


def test_refused_load_keeps_the_installed_packs(tmp_path):
    write_pack(tmp_path, 'bad.json', rating_pack(format='x'))
    with pytest.raises(InvalidPack):
        instruments.load_packs(tmp_path)
    assert instruments.find_pack('QYIT') is not None
