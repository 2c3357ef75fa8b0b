"""Upgrade registry: pure lifting of old majors, with a throwaway contact/2."""

from __future__ import annotations

import copy

import pytest
from marshmallow import fields
from marshmallow import validate

import schemas
from schemas import registry
from schemas import upgrades
from schemas.errors import SchemasError
from schemas.v1.contact import ContactSchema
from tests.factories import fake_sealed
from tests.factories import make_contact

pytestmark = pytest.mark.unit


class _ThrowawayContactV2(ContactSchema):
    """contact/2 for these tests only: ``living_situation`` renamed ``housing``."""

    MAJOR = 2

    housing = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))

    class Meta(ContactSchema.Meta):
        exclude = ('living_situation',)


def _lift_contact_1(document):
    # Deliberately mutating its argument: upgrade() must hand it a copy.
    document['housing'] = document.pop('living_situation', None)
    return document


@pytest.fixture
def contact_v2(monkeypatch):
    monkeypatch.setitem(registry.SCHEMAS, ('contact', 2), _ThrowawayContactV2)
    monkeypatch.setitem(registry.CURRENT_MAJOR, 'contact', 2)
    monkeypatch.setitem(upgrades.UPGRADES, ('contact', 1), _lift_contact_1)


def test_no_real_upgrades_are_registered_yet():
    assert upgrades.UPGRADES == {}


def test_upgrade_lifts_and_retags_without_mutating_input(contact_v2):
    document = make_contact()
    original = copy.deepcopy(document)
    lifted = upgrades.upgrade(document, 'contact', 1, 2)
    assert document == original
    assert lifted['schema'] == 'contact/2'
    assert lifted['housing'] == original['living_situation']
    assert 'living_situation' not in lifted


def test_upgrade_to_the_same_major_is_a_copy():
    document = make_contact()
    lifted = upgrades.upgrade(document, 'contact', 1, 1)
    assert lifted == document and lifted is not document


def test_validate_document_lifts_an_old_major(contact_v2):
    document = make_contact()
    original = copy.deepcopy(document)
    validated = schemas.validate_document(document, sealed=False)
    assert document == original
    assert validated['schema'] == 'contact/2'
    assert validated['housing'] == 'place_not_meant_for_habitation'
    assert schemas.validate_document(validated, sealed=False) == validated


def test_validate_document_lifts_sealed_documents(contact_v2):
    document = fake_sealed(make_contact())
    validated = schemas.validate_document(document, sealed=True)
    assert validated['schema'] == 'contact/2'
    assert validated['notes'] == document['notes']


def test_old_major_is_validated_as_written_before_lifting(contact_v2):
    # contact/1 does not know `housing`: the error names what the tablet sent.
    document = make_contact(housing='x')
    with pytest.raises(schemas.SchemaValidationError) as caught:
        schemas.validate_document(document, sealed=False)
    assert caught.value.messages == {'housing': ['Unknown field.']}


def test_missing_upgrade_step_is_an_unknown_schema(monkeypatch):
    monkeypatch.setitem(registry.SCHEMAS, ('contact', 2), _ThrowawayContactV2)
    monkeypatch.setitem(registry.CURRENT_MAJOR, 'contact', 2)
    with pytest.raises(schemas.UnknownSchema):
        schemas.validate_document(make_contact(), sealed=False)


def test_register_upgrade_refuses_a_second_registration(monkeypatch):
    monkeypatch.setattr(upgrades, 'UPGRADES', {})

    @upgrades.register_upgrade('contact', 1)
    def first(document):
        return document

    assert upgrades.UPGRADES == {('contact', 1): first}
    with pytest.raises(SchemasError):
        upgrades.register_upgrade('contact', 1)(first)
