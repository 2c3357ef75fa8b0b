"""Pure rules of the gateway: visibility, push checks, quarantine redaction."""

from __future__ import annotations

import pytest

from sync import filtering

pytestmark = pytest.mark.unit

SEALED = {'fle': 1, 'rk': '0' * 32, 'n': 'A' * 16, 'ct': 'A' * 64}
ID = 'contact:0b7e9c1a-5d2f-4c3b-9a8e-1f2d3c4b5a69'
OTHER_ID = 'contact:00000000-0000-4000-8000-000000000009'


class Invalid(Exception):
    def __init__(self, messages):
        super().__init__('invalid')
        self.messages = messages


def _check(doc, *, owner=None, validate=lambda doc: doc, max_bytes=10_000):
    return filtering.check_pushed_record(
        doc, worker='w1', record_types=('contact',), max_doc_bytes=max_bytes,
        validate=validate, current_owner=owner, schema_errors=(Invalid,))


def _contact(**overrides):
    return {'_id': ID, '_rev': '1-a', 'type': 'contact', 'owner': 'w1',
            'full_name': SEALED, **overrides}


def test_visible_record_is_own_worker_only_and_never_envelopes():
    assert filtering.visible_record({'_id': 'contact:1', 'owner': 'w1'}, 'w1')
    assert not filtering.visible_record({'_id': 'contact:1', 'owner': 'w2'}, 'w1')
    assert not filtering.visible_record({'_id': 'rk:1', 'owner': 'w1'}, 'w1')
    assert not filtering.visible_record({'_id': '_design/x', 'owner': 'w1'}, 'w1')
    assert not filtering.visible_record(None, 'w1')


def test_config_visibility_hides_other_devices_control_docs():
    assert filtering.visible_config_id('manifest', 'd1')
    assert filtering.visible_config_id('device-control:d1', 'd1')
    assert not filtering.visible_config_id('device-control:d2', 'd1')
    assert not filtering.visible_config_id('_design/x', 'd1')


@pytest.mark.parametrize('doc, owner, rule', [
    ({'_id': '_design/x'}, None, 'design_document'),
    ({'_id': '_local/x'}, None, 'reserved_id'),
    (_contact(owner='w2'), None, 'owner'),
    (_contact(), 'w2', 'owner'),
    (_contact(type='grant'), None, 'type'),
    (_contact(_id='screening:0b7e9c1a-5d2f-4c3b-9a8e-1f2d3c4b5a69'), None, 'id'),
    (_contact(_id='contact:Jane Canary'), None, 'id'),
    ({'_id': 'contact:1', '_deleted': True}, None, 'id'),
    (_contact(_attachments={'a': {}}), None, 'attachments'),
    (_contact(notes='x' * 20_000), None, 'max_doc_bytes'),
    ({'_id': ID, '_deleted': True}, 'w2', 'owner'),
    ({'_id': ID, '_deleted': True, '_attachments': {}}, None, 'attachments'),
    ('not a doc', None, 'id'),
])
def test_push_refusals_name_the_rule(doc, owner, rule):
    refusal = _check(doc, owner=owner)
    assert refusal is not None and refusal.rule == rule


def test_push_accepts_own_records_and_own_tombstones():
    assert _check(_contact()) is None
    assert _check(_contact(), owner='w1') is None
    assert _check({'_id': ID, '_rev': '2-b', '_deleted': True}, owner='w1') is None
    assert _check({'_id': OTHER_ID, '_rev': '2-b', '_deleted': True}) is None


def test_schema_refusal_names_fields_never_values():
    def validate(doc):
        assert '_rev' not in doc and '_revisions' not in doc
        raise Invalid({'full_name': ['Identifying field must be sealed.']})
    refusal = _check(_contact(full_name='Jane Canary'), validate=validate)
    assert refusal.rule == 'schema' and 'full_name' in refusal.reason
    assert 'Jane' not in refusal.reason and 'Jane' not in str(refusal.fields)


@pytest.mark.parametrize('metadata, new_edits, rule', [
    ({'_rev': '1-abc', '_revisions': {'start': 'x', 'ids': 5}}, False, 'revision'),
    ({'_rev': '2-abc', '_revisions': {'start': 2, 'ids': ['abd', 'abc']}}, False, 'revision'),
    ({'_rev': '2-abc', '_revisions': {'start': 1, 'ids': ['abc']}}, False, 'revision'),
    ({'_rev': '1-abc', '_revisions': {'start': True, 'ids': ['abc']}}, False, 'revision'),
    ({'_rev': {'start': 1}}, True, 'revision'),
    ({}, False, 'revision'),
    ({'_rev': '1-abc', '_deleted': 1}, False, 'revision'),
    ({'_rev': '1-abc', '_attachments': {}}, False, 'attachments'),
    ({'_rev': '1-abc', '_rev_tree': []}, False, 'reserved_member'),
])
def test_metadata_couchdb_would_refuse_is_refused(metadata, new_edits, rule):
    refusal = filtering.check_metadata({'_id': ID, **metadata}, new_edits=new_edits)
    assert refusal is not None and refusal.rule == rule


@pytest.mark.parametrize('metadata, new_edits', [
    ({}, True),
    ({'_rev': '1-abc'}, False),
    ({'_rev': '3-abc', '_revisions': {'start': 3, 'ids': ['abc', 'abb', 'aba']}}, False),
    ({'_rev': '9-abc', '_revisions': {'start': 9, 'ids': ['abc']}, '_deleted': True}, False),
])
def test_sound_metadata_passes(metadata, new_edits):
    assert filtering.check_metadata({'_id': ID, **metadata}, new_edits=new_edits) is None


def test_only_ids_that_passed_the_id_rules_are_recorded():
    assert filtering.safe_id(ID, ('contact',)) == ID
    assert filtering.safe_id('rk:' + 'a' * 32, ('contact',)) == 'rk:' + 'a' * 32
    for bad in ('contact:Jane Canary', 'note:0b7e9c1a-5d2f-4c3b-9a8e-1f2d3c4b5a69',
                'rk:Jane', '_design/x', None, {'a': 1}):
        assert filtering.safe_id(bad, ('contact',)) == filtering.INVALID_ID


def test_a_tombstone_keeps_its_metadata_and_the_owner_only():
    stored = filtering.tombstone(_contact(_deleted=True, notes='Jane Canary', owner='w2'), 'w1')
    assert stored == {'_id': ID, '_rev': '1-a', '_deleted': True, 'owner': 'w1'}


def _redact(doc, **kwargs):
    return filtering.redact_for_quarantine(doc, record_types=('contact',), worker='w1',
                                           device_id='d1', **kwargs)


def test_quarantine_keeps_only_allow_listed_members_and_sealed_values():
    doc = _contact(full_name='Jane Canary', phone=SEALED, guardian={'name': SEALED, 'x': 'Jane'},
                   schema='contact/1', created_at='2026-03-02T10:05:00Z', org='jane',
                   notes='Jane Canary', **{'Jane Canary': SEALED})
    kept, redacted = _redact(doc)
    assert kept == {'_id': ID, '_rev': '1-a', 'type': 'contact', 'owner': 'w1',
                    'phone': SEALED, 'guardian': {'name': SEALED}, 'schema': 'contact/1',
                    'created_at': '2026-03-02T10:05:00Z'}
    assert redacted == 5  # full_name, guardian.x, org, notes, the member named by a value
    assert doc['full_name'] == 'Jane Canary'  # the input is not changed


def test_quarantine_redacts_whatever_the_id_or_type():
    envelope_like = {'_id': 'rk:' + 'ab' * 16, 'type': 'rk', 'client_name': 'Jane Canary',
                     'kek': 'oek-1', 'enc': 'ZW5j', 'ct': 'Y3Q', 'owner': 'w2'}
    kept, _redacted = _redact(envelope_like)
    assert kept == {'_id': 'rk:' + 'ab' * 16, 'type': 'rk', 'kek': 'oek-1', 'enc': 'ZW5j',
                    'ct': 'Y3Q', 'owner': {'redacted': True}}
    withheld, _redacted = _redact(envelope_like, key_material=False)
    assert withheld['enc'] == withheld['ct'] == {'redacted': True}
    kept, _redacted = _redact({'_id': '_design/x', 'type': 'Jane', 'secret': 'Jane',
                               '_attachments': {'a': {'data': 'SmFuZQ'}}})
    assert kept == {'_id': filtering.INVALID_ID, 'type': {'redacted': True}}
    assert _redact(['Jane']) == ({}, 1)


def test_sealed_value_shape():
    assert filtering.is_sealed_value(SEALED)
    assert not filtering.is_sealed_value({**SEALED, 'extra': 1})
    assert not filtering.is_sealed_value({**SEALED, 'fle': 2})
    assert not filtering.is_sealed_value({**SEALED, 'fle': True})
    assert not filtering.is_sealed_value({**SEALED, 'ct': 'A' * 63})
    assert not filtering.is_sealed_value('plain')
