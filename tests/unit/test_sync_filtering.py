"""Pure rules of the gateway: visibility, push checks, quarantine redaction."""

from __future__ import annotations

import pytest

from sync import filtering

pytestmark = pytest.mark.unit

SEALED = {'fle': 1, 'rk': 'r1', 'n': 'nonce', 'ct': 'ciphertext'}


class Invalid(Exception):
    def __init__(self, messages):
        super().__init__('invalid')
        self.messages = messages


def _check(doc, *, owner=None, validate=lambda doc: doc, max_bytes=10_000):
    return filtering.check_pushed_record(
        doc, worker='w1', record_types=('contact',), max_doc_bytes=max_bytes,
        validate=validate, current_owner=owner, schema_errors=(Invalid,))


def _contact(**overrides):
    return {'_id': 'contact:1', '_rev': '1-a', 'type': 'contact', 'owner': 'w1',
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
    (_contact(_id='screening:1'), None, 'id'),
    (_contact(_attachments={'a': {}}), None, 'attachments'),
    (_contact(notes='x' * 20_000), None, 'max_doc_bytes'),
    ({'_id': 'contact:1', '_deleted': True}, 'w2', 'owner'),
    ('not a doc', None, 'id'),
])
def test_push_refusals_name_the_rule(doc, owner, rule):
    refusal = _check(doc, owner=owner)
    assert refusal is not None and refusal.rule == rule


def test_push_accepts_own_records_and_own_tombstones():
    assert _check(_contact()) is None
    assert _check(_contact(), owner='w1') is None
    assert _check({'_id': 'contact:1', '_rev': '2-b', '_deleted': True}, owner='w1') is None
    assert _check({'_id': 'contact:9', '_rev': '2-b', '_deleted': True}) is None


def test_schema_refusal_names_fields_never_values():
    def validate(doc):
        assert '_rev' not in doc and '_revisions' not in doc
        raise Invalid({'full_name': ['Identifying field must be sealed.']})
    refusal = _check(_contact(full_name='Jane Canary'), validate=validate)
    assert refusal.rule == 'schema' and 'full_name' in refusal.reason
    assert 'Jane' not in refusal.reason and 'Jane' not in str(refusal.fields)


def test_quarantine_redacts_plaintext_at_identifying_paths_only():
    doc = _contact(full_name='Jane Canary', nested={'dob': '2010-01-01'}, phone=SEALED)
    redacted = filtering.redact_for_quarantine(doc, ['/full_name', '/nested/dob', '/phone'])
    assert redacted['full_name'] == {'redacted': True}
    assert redacted['nested']['dob'] == {'redacted': True}
    assert redacted['phone'] == SEALED
    assert doc['full_name'] == 'Jane Canary'  # the input is not changed


def test_quarantine_redacts_everything_but_metadata_for_unknown_types():
    redacted = filtering.redact_for_quarantine(
        {'_id': '_design/x', 'owner': 'w1', 'secret': 'Jane', 'sealed': SEALED}, None)
    assert redacted == {'_id': '_design/x', 'owner': 'w1', 'secret': {'redacted': True},
                        'sealed': SEALED}


def test_sealed_value_shape():
    assert filtering.is_sealed_value(SEALED)
    assert not filtering.is_sealed_value({**SEALED, 'extra': 1})
    assert not filtering.is_sealed_value({**SEALED, 'fle': 2})
    assert not filtering.is_sealed_value('plain')
