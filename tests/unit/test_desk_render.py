"""Rendering an opened record with labels and answer texts, in English and Spanish."""

from __future__ import annotations

import pytest

from fieldvault_client.desk.render import code_text, render_record
from tests import factories

pytestmark = pytest.mark.unit


def _rows(view, section=0):
    return {row['label']: row for row in view['sections'][section]['rows']}


def test_contact_fields_have_labels_and_answer_texts():
    view = render_record(factories.make_contact(notes='A note'), 'en')
    rows = _rows(view)
    assert view['title'] == 'Contact'
    assert rows['Type of contact']['text'] == 'Street outreach'
    assert rows['Living situation']['text'] == 'Place not meant for habitation'
    assert rows['In immediate danger']['text'] == 'No'
    assert rows['Youth code']['text'] == 'quiet-river-07'
    assert rows['Notes']['text'] == 'A note'
    assert rows['Notes']['editable'] and rows['Notes']['value'] == 'A note'
    assert not rows['Type of contact']['editable'] and rows['Type of contact']['value'] is None
    # Envelope metadata is not shown as answers.
    assert not {'Owner', 'Org', 'Fle', '_id'} & set(rows)


def test_screening_answers_use_the_pack_prompts_in_either_language():
    document = factories.make_screening()
    english = render_record(document, 'en')
    answers = _rows(english, 1)
    prompt = 'Ever received anything (a place to stay, gifts, food, money) in exchange for sex?'
    assert answers[prompt]['text'] == 'Yes (Ever) — Notes: Test note about the answer.'
    assert 'QYIT' in english['sections'][1]['title']
    spanish = render_record(document, 'es')
    answers = _rows(spanish, 1)
    assert answers['¿Alguna vez trabajaste para alguien que te pidió mentir sobre el '
                   'trabajo?']['text'] == 'No está seguro (Alguna vez)'
    assert _rows(spanish)['Instrumento de evaluación']['text'] == 'QYIT'
    assert spanish['title'] == 'Evaluación' and spanish['lang'] == 'es'


def test_an_unknown_pack_shows_item_codes_and_an_unknown_language_falls_back():
    document = factories.make_screening(instrument='LOCAL_PACK', instrument_version='9.0')
    view = render_record(document, 'fr')
    assert view['lang'] == 'en'
    assert 'QYIT_1' in _rows(view, 1)


def test_unlisted_codes_are_spelled_out():
    assert code_text('foster_care_or_group_home', 'en') == 'Foster care or group home'
    assert code_text('yes', 'es') == 'Sí'
