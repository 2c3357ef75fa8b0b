"""Cross-field rules: one refusal per rule, each under its own message key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import schemas
from tests.factories import OMIT
from tests.factories import make_record

pytestmark = pytest.mark.unit


def _edit_response(index: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document['responses'][index].update(changes)
    return edit


def _repeat_first_response(document: dict[str, Any]) -> None:
    document['responses'].append(dict(document['responses'][0]))


# (doc_type, message key, overrides, optional edit, locations of the message)
def _edit_history(index: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document['history'][index].update(changes)
    return edit


def _withdraw_keeping_week(document: dict[str, Any]) -> None:
    document['history'].append({'action': 'withdraw', 'from': 'active', 'to': 'withdrawn',
                                'by': 'advocate-1', 'role': 'advocate',
                                'at': '2026-03-02T09:10:00Z'})
    document['state'] = 'withdrawn'


_CONTACT_ID = 'contact:0b7e9c1a-5d2f-4c3b-9a8e-1f2d3c4b5a69'

RULE_CASES: list[tuple[str, str, dict[str, Any], Any, list[tuple[Any, ...]]]] = [
    ('contact', 'safety_action_required', {'immediate_danger': True}, None,
     [('safety_action',)]),
    ('contact', 'engagement_date_required', {'engaged': True}, None, [('engagement_date',)]),
    ('identity', 'guardian_not_safe', {'guardian_safe': False}, None, [('guardian_safe',)]),
    ('identity', 'guardian_flagged_abuser',
     {'known_abuser_flags': [{'relationship': 'grandparent'}]}, None,
     [('guardian', 'relationship')]),
    ('identity', 'age_dob_mismatch', {'age_at_screening': 18}, None, [('age_at_screening',)]),
    ('identity', 'dob_quality_mismatch', {'dob_data_quality': 'data_not_collected'}, None,
     [('dob_data_quality',)]),
    ('identity', 'name_quality_mismatch', {'legal_last_name': OMIT}, None,
     [('name_data_quality',)]),
    ('screening', 'subject_required', {'youth_code': OMIT}, None,
     [('client_id',), ('youth_code',)]),
    ('screening', 'declined_assent_has_responses', {'assent': 'declined'}, None,
     [('responses',), ('response_notes',), ('result',)]),
    ('screening', 'confidentiality_not_explained',
     {'confidentiality_limits_explained': False, 'confidentiality_explained_at': OMIT}, None,
     [('confidentiality_limits_explained',)]),
    ('screening', 'explained_at_required', {'confidentiality_explained_at': OMIT}, None,
     [('confidentiality_explained_at',)]),
    ('screening', 'unknown_instrument', {'instrument': 'CSE_IT_2'}, None, [('instrument',)]),
    ('screening', 'unknown_instrument_version', {'instrument_version': '9.9'}, None,
     [('instrument_version',)]),
    ('screening', 'mode_not_allowed', {'mode': 'information_integration'}, None, [('mode',)]),
    ('screening', 'unknown_item', {}, _edit_response(1, item_code='TVIT_PAY'),
     [('responses', 1, 'item_code')]),
    ('screening', 'answer_not_allowed', {}, _edit_response(2, value='maybe'),
     [('responses', 2, 'value')]),
    ('screening', 'timeframe_not_allowed', {}, _edit_response(0, timeframe='past_3_months'),
     [('responses', 0, 'timeframe')]),
    ('screening', 'duplicate_response', {}, _repeat_first_response, [('responses', 4)]),
    ('screening', 'override_reason_required', {'result': {'positive_screen': False}}, None,
     [('result', 'override_reason')]),
    ('consent', 'release_details_required', {'recipient_org': OMIT, 'purpose': None}, None,
     [('recipient_org',), ('purpose',)]),
    ('consent', 'narrative_needs_cosign', {'data_categories': ['narrative']}, None,
     [('cosigned_by',)]),
    ('consent', 'guardian_relationship_required', {'guardian_relationship': OMIT}, None,
     [('guardian_relationship',)]),
    ('consent', 'signer_flagged_abuser', {'abuser_relationships': ['grandparent']}, None,
     [('guardian_relationship',)]),
    ('consent', 'guardian_signature_required',
     {'signer': 'youth', 'guardian_signer_name': OMIT, 'guardian_signature_image': OMIT}, None,
     [('signer',)]),
    ('consent', 'part2_minor_signs_alone',
     {'consent_type': 'part2_disclosure', 'minor_consent_basis': 'fc_6929_substance_use'}, None,
     [('signer',)]),
    ('consent', 'written_required', {'method': 'oral'}, None, [('method',)]),
    ('consent', 'signature_required', {'guardian_signature_image': OMIT}, None,
     [('guardian_signature_image',)]),
    ('consent', 'expiry_not_after_effective', {'expires_at': '2026-03-02'}, None,
     [('expires_at',)]),
    ('consent', 'expiry_too_far', {'expires_at': '2027-03-04'}, None, [('expires_at',)]),
    ('consent', 'revoked_before_effective', {'revoked_at': '2026-03-01T23:59:59Z'}, None,
     [('revoked_at',)]),
    ('enrollment', 'history_state', {}, _edit_history(2, **{'from': 'contacted'}),
     [('history', 2)]),
    ('enrollment', 'history_actor', {}, _edit_history(4, role='worker'), [('history', 4)]),
    ('enrollment', 'history_time_order', {}, _edit_history(3, at='2026-03-02T08:00:00Z'),
     [('history', 3)]),
    ('enrollment', 'history_after_update', {}, _edit_history(5, at='2026-03-02T11:00:00Z'),
     [('history', 5, 'at')]),
    ('enrollment', 'state_mismatch', {'state': 'on_hold'}, None, [('state',)]),
    ('enrollment', 'required_in_state', {'service_plan': OMIT}, None, [('service_plan',)]),
    ('enrollment', 'week_out_of_range', {'current_week': 11}, None, [('current_week',)]),
    ('enrollment', 'week_outside_active', {}, _withdraw_keeping_week, [('current_week',)]),
    ('enrollment', 'diversion_needs_release', {'referring_agency_release_id': OMIT}, None,
     [('referring_agency_release_id',)]),
    ('weekly_checkin', 'services_required', {'services_received': OMIT}, None,
     [('services_received',)]),
    ('weekly_checkin', 'services_when_missed', {'attended': False}, None,
     [('services_received',)]),
    ('weekly_checkin', 'not_an_enrollment', {'enrollment_id': _CONTACT_ID}, None,
     [('enrollment_id',)]),
    ('referral', 'one_parent', {'contact_id': _CONTACT_ID}, None,
     [('enrollment_id',), ('contact_id',)]),
    ('referral', 'wrong_parent_type', {'enrollment_id': _CONTACT_ID}, None,
     [('enrollment_id',)]),
    ('referral', 'outcome_date_required', {'outcome_at': OMIT}, None, [('outcome_at',)]),
    ('referral', 'outcome_before_referral', {'outcome_at': '2026-03-01'}, None,
     [('outcome_at',)]),
    ('exit', 'exit_before_enrollment', {'exit_at': '2026-01-01'}, None, [('exit_at',)]),
    ('exit', 'notice_needs_release', {'completion_notice_release_id': OMIT}, None,
     [('completion_notice_release_id',)]),
    ('exit', 'notice_only_on_completion', {'exit_reason': 'lost_contact'}, None,
     [('completion_notice_sent',)]),
    ('exit', 'not_an_enrollment', {'enrollment_id': _CONTACT_ID}, None, [('enrollment_id',)]),
    ('mandated_report', 'not_a_reporter', {'made_by_is_mandated_reporter': False}, None,
     [('made_by_is_mandated_reporter',)]),
    ('mandated_report', 'before_report', {'youth_notified_at': '2026-03-02T09:00:00Z'}, None,
     [('youth_notified_at',)]),
    ('case_sealing', 'keys_must_be_destroyed', {'keys_destroyed': False}, None,
     [('keys_destroyed',)]),
    ('case_sealing', 'two_people', {'approved_by': 'admin-1'}, None, [('approved_by',)]),
    ('case_sealing', 'approved_before_proposed', {'sealed_at': '2026-03-02T08:00:00Z'}, None,
     [('sealed_at',)]),
    ('case_sealing', 'court_order_ref_required', {'court_order_ref': OMIT}, None,
     [('court_order_ref',)]),
    ('case_sealing', 'not_an_enrollment', {'enrollment_id': _CONTACT_ID}, None,
     [('enrollment_id',)]),
]

# Envelope rules, refused by validate_document before or around the schema;
# their tests live in test_schemas_envelope.py and test_schemas_sealed.py.
TESTED_ELSEWHERE = {'type_mismatch', 'schema_mismatch', 'id_type_mismatch',
                    'updated_before_created', 'fle_header_required', 'unknown_rk'}


def expected_messages(message: str, locations: list[tuple[Any, ...]]) -> dict[Any, Any]:
    expected: dict[Any, Any] = {}
    for location in locations:
        node = expected
        for token in location[:-1]:
            node = node.setdefault(token, {})
        node[location[-1]] = [message]
    return expected


@pytest.mark.parametrize(('doc_type', 'key', 'overrides', 'edit', 'locations'), RULE_CASES,
                         ids=[f'{row[0]}.{row[1]}' for row in RULE_CASES])
def test_rule_refuses(doc_type, key, overrides, edit, locations):
    document = make_record(doc_type, **overrides)
    if edit is not None:
        edit(document)
    message = schemas.schema_for(doc_type)().error_messages[key]
    with pytest.raises(schemas.SchemaValidationError) as caught:
        schemas.validate_document(document, sealed=False)
    assert caught.value.messages == expected_messages(message, locations)


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
def test_every_rule_has_a_refusal_test(doc_type):
    schema = schemas.schema_for(doc_type)()
    # Marshmallow's own schema messages are not rules of ours.
    rule_keys = set(schema.error_messages) - {'type', 'unknown'}
    tested = {key for row_type, key, *_ in RULE_CASES if row_type == doc_type}
    assert rule_keys - TESTED_ELSEWHERE == tested


ALLOWED_CASES = [
    ('contact', {'immediate_danger': True, 'safety_action': '911_called'}),
    ('contact', {'engaged': True, 'engagement_date': '2026-03-02'}),
    ('identity', {'guardian': OMIT, 'guardian_safe': OMIT}),
    ('identity', {'guardian': None, 'guardian_safe': False}),
    ('identity', {'date_of_birth': '2010-05', 'dob_data_quality': 'approximate_or_partial_dob',
                  'age_at_screening': 16}),
    ('identity', {'date_of_birth': OMIT, 'dob_data_quality': 'client_prefers_not_to_answer'}),
    ('identity', {'legal_first_name': OMIT, 'legal_last_name': OMIT,
                  'name_data_quality': 'partial_street_or_code_name'}),
    ('screening', {'assent': 'declined', 'responses': [], 'response_notes': OMIT,
                   'result': OMIT, 'followup_action': 'none'}),
    ('screening', {'result': {'positive_screen': False, 'override_reason': 'assessor_judgement'}}),
    ('screening', {'youth_code': OMIT, 'client_id': '0b7e9c1a-5d2f-4c3b-9a8e-1f2d3c4b5a69'}),
    ('consent', {'signer': 'youth', 'guardian_signer_name': OMIT,
                 'guardian_signature_image': OMIT,
                 'minor_consent_basis': 'fc_6924_mental_health'}),
    ('consent', {'signer': 'youth', 'youth_is_minor': False, 'guardian_relationship': OMIT,
                 'guardian_signer_name': OMIT, 'guardian_signature_image': OMIT}),
    ('consent', {'consent_type': 'screening_assent', 'method': 'oral', 'recipient_org': OMIT,
                 'purpose': OMIT, 'data_categories': OMIT, 'signer_name': OMIT,
                 'signature_image': OMIT, 'guardian_signer_name': OMIT,
                 'guardian_signature_image': OMIT}),
    ('consent', {'data_categories': ['narrative'], 'cosigned_by': 'supervisor-1'}),
    ('consent', {'method': 'paper_scanned', 'signature_image': OMIT,
                 'guardian_signature_image': OMIT}),
    ('consent', {'expires_at': '2027-03-03', 'revoked_at': '2026-03-02T00:00:00Z'}),
    ('enrollment', {'diversion_case_ref': OMIT, 'referring_agency_release_id': OMIT}),
    ('weekly_checkin', {'attended': False, 'services_received': OMIT}),
    ('referral', {'enrollment_id': OMIT, 'contact_id': _CONTACT_ID, 'outcome': 'pending',
                  'outcome_at': OMIT}),
    ('exit', {'exit_reason': 'lost_contact', 'completion_notice_sent': False}),
    ('mandated_report', {'made_by_is_mandated_reporter': False, 'made_by_is_supervisor': True,
                         'written_followup_at': '2026-03-05T10:00:00Z'}),
    ('case_sealing', {'basis': 'youth_request', 'court_order_ref': OMIT}),
]


@pytest.mark.parametrize(('doc_type', 'overrides'), ALLOWED_CASES,
                         ids=[f'{row[0]}-{index}' for index, row in enumerate(ALLOWED_CASES)])
def test_rule_allows(doc_type, overrides):
    document = make_record(doc_type, **overrides)
    assert schemas.validate_document(document, sealed=False) == document
