"""Valid, unsealed record documents for tests and benchmarks.

Every ``make_<type>`` returns a fresh document that passes
``schemas.validate_document(doc, sealed=False)``, with every identifying field
of its type filled (obviously fake values), so sealing code has something to
seal.
Keyword overrides replace top-level keys; a value of ``OMIT`` removes the key.

``fake_sealed`` turns such a document into one that passes
``validate_document(doc, sealed=True)``: every identifying value is replaced
by a structurally valid fle/1 value of random bytes. It is not encryption
(nothing can open it); use ``keys/`` for real sealing.
"""

from __future__ import annotations

import base64
import copy
import os
import uuid
from collections.abc import Callable
from typing import Any

import schemas
from schemas.pointers import split

__all__ = [
    'CREATED_AT',
    'OMIT',
    'fake_sealed',
    'fake_sealed_value',
    'make_case_sealing',
    'make_consent',
    'make_contact',
    'make_enrollment',
    'make_exit',
    'make_identity',
    'make_mandated_report',
    'make_record',
    'make_referral',
    'make_screening',
    'make_weekly_checkin',
]

#: Fixed timestamp of every factory document (deterministic ages and dates).
CREATED_AT = '2026-03-02T10:15:00Z'


class _Omit:
    def __repr__(self) -> str:
        return 'OMIT'


#: Pass as an override value to remove that key from the document.
OMIT: Any = _Omit()


def _envelope(doc_type: str, owner: str, org: str) -> dict[str, Any]:
    return {
        '_id': f'{doc_type}:{uuid.uuid4()}',
        'type': doc_type,
        'schema': f'{doc_type}/1',
        'org': org,
        'owner': owner,
        'device': 'dev-test-1',
        'created_at': CREATED_AT,
        'updated_at': CREATED_AT,
    }


def _finish(document: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if value is OMIT:
            document.pop(key, None)
        else:
            document[key] = value
    return document


def make_contact(*, owner: str = 'worker-1', org: str = 'org-test',
                 **overrides: Any) -> dict[str, Any]:
    """Return a valid unsealed ``contact/1`` document."""
    document = {
        **_envelope('contact', owner, org),
        'contact_at': '2026-03-02T10:05:00Z',
        'service_area_code': 'spa-6',
        'precise_location': {'lat': 34.0522, 'lon': -118.2437, 'accuracy_m': 50,
                             'description': 'Test cross streets'},
        'contact_type': 'street',
        'living_situation': 'place_not_meant_for_habitation',
        'youth_code': 'quiet-river-07',
        'engaged': False,
        'services_offered': ['info', 'food'],
        'immediate_danger': False,
        'notes': 'Test note, not a real person.',
    }
    return _finish(document, overrides)


def make_identity(*, owner: str = 'worker-1', org: str = 'org-test',
                  **overrides: Any) -> dict[str, Any]:
    """Return a valid unsealed ``identity/1`` document (every identifying field set)."""
    document = {
        **_envelope('identity', owner, org),
        'client_id': str(uuid.uuid4()),
        'preferred_name': 'Test Preferred',
        'legal_first_name': 'Testfirst',
        'legal_last_name': 'Testlast',
        'name_data_quality': 'full_name_reported',
        'aliases': ['Test Alias'],
        'date_of_birth': '2010-05-17',
        'dob_data_quality': 'full_dob_reported',
        'age_at_screening': 15,
        'phones': ['+15555550100'],
        'email': 'test.youth@example.org',
        'social_handles': [{'platform': 'instagram', 'handle': 'test_handle'}],
        'current_location_or_address': '100 Test Street, Testville',
        'placement_or_shelter': 'Test Shelter',
        'ssn_last4': '0000',
        'id_numbers': [{'type': 'student_id', 'value': 'TEST-0001'}],
        'race_ethnicity': ['data_not_collected'],
        'sex': 'female',
        'gender_identity': 'woman_girl',
        'primary_language': 'en',
        'country_of_birth': 'US',
        'school_name': 'Test High School',
        'guardian': {'name': 'Test Guardian', 'phone': '+15555550101',
                     'relationship': 'grandparent'},
        'guardian_safe': True,
        'known_abuser_flags': [{'relationship': 'stepparent'}],
        'exploiter_identifiers': 'Test exploiter description.',
        'distinguishing_marks': 'Test mark description.',
        'photo': {'media_type': 'image/png', 'data': 'iVBORw0KGgo='},
    }
    return _finish(document, overrides)


def make_screening(*, owner: str = 'worker-1', org: str = 'org-test',
                   **overrides: Any) -> dict[str, Any]:
    """Return a valid unsealed ``screening/1`` document (QYIT, one yes)."""
    document = {
        **_envelope('screening', owner, org),
        'youth_code': 'quiet-river-07',
        'instrument': 'QYIT',
        'instrument_version': '1.0',
        'mode': 'interview',
        'administered_at': '2026-03-02T10:10:00Z',
        'assent': 'given',
        'confidentiality_limits_explained': True,
        'confidentiality_explained_at': '2026-03-02T10:08:00Z',
        'responses': [
            {'item_code': 'QYIT_1', 'value': 'no', 'timeframe': 'ever'},
            {'item_code': 'QYIT_2', 'value': 'no', 'timeframe': 'ever'},
            {'item_code': 'QYIT_3', 'value': 'yes', 'timeframe': 'ever'},
            {'item_code': 'QYIT_4', 'value': 'unsure', 'timeframe': 'ever'},
        ],
        'response_notes': [{'item_code': 'QYIT_3', 'text': 'Test note about the answer.'}],
        'result': {'positive_screen': True},
        'followup_action': 'referred_full_assessment',
    }
    return _finish(document, overrides)


def make_consent(*, owner: str = 'worker-1', org: str = 'org-test',
                 **overrides: Any) -> dict[str, Any]:
    """Return a valid unsealed ``consent/1`` release signed by a minor and a guardian."""
    document = {
        **_envelope('consent', owner, org),
        'client_id': str(uuid.uuid4()),
        'consent_type': 'release_of_information',
        'recipient_org': 'partner-shelter',
        'purpose': 'Coordinate shelter placement.',
        'data_categories': ['attendance', 'referral_status'],
        'signer': 'youth_and_guardian',
        'youth_is_minor': True,
        'guardian_relationship': 'grandparent',
        'abuser_relationships': ['stepparent'],
        'signer_name': 'Test Youth',
        'signature_image': {'media_type': 'image/png', 'data': 'iVBORw0KGgo='},
        'guardian_signer_name': 'Test Guardian',
        'guardian_signature_image': {'media_type': 'image/png', 'data': 'iVBORw0KGgo='},
        'method': 'written_on_device',
        'effective_at': '2026-03-02',
        'expires_at': '2026-05-31',
        'condition_of_service': False,
    }
    return _finish(document, overrides)


#: The actions that take a new case to ``active`` (week 1), with their actors.
ACTIVE_PATH = (('open', 'worker'), ('screen', 'worker'), ('offer', 'worker'),
               ('consent', 'worker'), ('enroll', 'advocate'), ('start', 'advocate'))


def _history(path, owner: str) -> list[dict[str, Any]]:
    """Return the history entries of ``path`` (action, role), one minute apart."""
    from schemas import lifecycle
    targets = {'resume': None}
    entries, state = [], None
    for minute, (action, role) in enumerate(path):
        target = lifecycle.ACTIONS[action].target or targets.get(action) or state
        entries.append({'action': action, 'from': state, 'to': target,
                        'by': owner if role == 'worker' else f'{role}-1', 'role': role,
                        'at': f'2026-03-02T09:{minute:02d}:00Z'})
        state = target
    return entries


def make_enrollment(*, owner: str = 'worker-1', org: str = 'org-test',
                    **overrides: Any) -> dict[str, Any]:
    """Return a valid unsealed ``enrollment/1`` case, active in week 1."""
    document = {
        **_envelope('enrollment', owner, org),
        'client_id': str(uuid.uuid4()),
        'youth_code': 'quiet-river-07',
        'state': 'active',
        'history': _history(ACTIVE_PATH, owner),
        'referral_source': 'da_diversion',
        'service_area_code': 'spa-6',
        'age_band': '14-15',
        'diversion_case_ref': 'TEST-DIV-0001',
        'referring_agency_release_id': str(uuid.uuid4()),
        'consented_at': '2026-03-02T09:03:00Z',
        'enrolled_at': '2026-03-02T09:04:00Z',
        'program_start': '2026-03-02',
        'program_length_weeks': 10,
        'current_week': 1,
        'assigned_advocate_id': 'advocate-1',
        'service_plan': ['mental_health', 'education'],
        'part2_flag': False,
        'le_cooperation_required': False,
    }
    return _finish(document, overrides)


def make_weekly_checkin(*, owner: str = 'worker-1', org: str = 'org-test',
                        **overrides: Any) -> dict[str, Any]:
    """Return a valid unsealed ``weekly_checkin/1`` (week 1, attended)."""
    document = {
        **_envelope('weekly_checkin', owner, org),
        'client_id': str(uuid.uuid4()),
        'enrollment_id': f'enrollment:{uuid.uuid4()}',
        'week_number': 1,
        'checked_in_at': '2026-03-02T10:00:00Z',
        'attended': True,
        'services_received': ['mental_health'],
        'sud_engaged': 'not_applicable',
        'school_status': 'attending_regularly',
        'housing_status': 'staying_with_family',
        'safety_concern': False,
        'advocate_note': 'Test check-in note, not a real person.',
    }
    return _finish(document, overrides)


def make_referral(*, owner: str = 'worker-1', org: str = 'org-test',
                  **overrides: Any) -> dict[str, Any]:
    """Return a valid unsealed ``referral/1`` (accepted, from a case)."""
    document = {
        **_envelope('referral', owner, org),
        'client_id': str(uuid.uuid4()),
        'enrollment_id': f'enrollment:{uuid.uuid4()}',
        'category': 'mental_health',
        'partner_org_code': 'partner-clinic',
        'referred_at': '2026-03-02',
        'outcome': 'accepted',
        'outcome_at': '2026-03-04',
        'note': 'Test referral note.',
    }
    return _finish(document, overrides)


def make_exit(*, owner: str = 'worker-1', org: str = 'org-test',
              **overrides: Any) -> dict[str, Any]:
    """Return a valid unsealed ``exit/1`` (completed, notice under a release)."""
    document = {
        **_envelope('exit', owner, org),
        'client_id': str(uuid.uuid4()),
        'enrollment_id': f'enrollment:{uuid.uuid4()}',
        'enrolled_on': '2026-01-05',
        'exit_at': '2026-03-02',
        'exit_reason': 'completed',
        'destination': 'family',
        'completion_notice_sent': True,
        'completion_notice_release_id': str(uuid.uuid4()),
        'note': 'Test exit note.',
    }
    return _finish(document, overrides)


def make_mandated_report(*, owner: str = 'worker-1', org: str = 'org-test',
                         **overrides: Any) -> dict[str, Any]:
    """Return a valid unsealed ``mandated_report/1``."""
    document = {
        **_envelope('mandated_report', owner, org),
        'client_id': str(uuid.uuid4()),
        'made_by': owner,
        'made_by_is_mandated_reporter': True,
        'made_by_is_supervisor': False,
        'made_at': '2026-03-02T10:00:00Z',
        'agency': 'county_cws_hotline',
        'reference_number': 'TEST-REF-0001',
        'written_followup_at': '2026-03-03T09:00:00Z',
        'youth_notified_at': '2026-03-02T11:00:00Z',
    }
    return _finish(document, overrides)


def make_case_sealing(*, owner: str = 'worker-1', org: str = 'org-test',
                      **overrides: Any) -> dict[str, Any]:
    """Return a valid unsealed ``case_sealing/1`` (by court order, so a reference)."""
    document = {
        **_envelope('case_sealing', owner, org),
        'client_id': str(uuid.uuid4()),
        'enrollment_id': f'enrollment:{uuid.uuid4()}',
        'basis': 'court_order',
        'proposed_by': 'admin-1',
        'proposed_at': '2026-03-02T09:00:00Z',
        'approved_by': 'supervisor-1',
        'sealed_at': '2026-03-02T10:00:00Z',
        'keys_destroyed': True,
        'court_order_ref': 'TEST-COURT-0001',
    }
    return _finish(document, overrides)


_MAKERS: dict[str, Callable[..., dict[str, Any]]] = {
    'contact': make_contact,
    'identity': make_identity,
    'screening': make_screening,
    'consent': make_consent,
    'enrollment': make_enrollment,
    'weekly_checkin': make_weekly_checkin,
    'referral': make_referral,
    'exit': make_exit,
    'mandated_report': make_mandated_report,
    'case_sealing': make_case_sealing,
}


def make_record(doc_type: str, **kwargs: Any) -> dict[str, Any]:
    """Return a valid unsealed document of ``doc_type`` (same keywords as make_<type>)."""
    return _MAKERS[doc_type](**kwargs)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b'=').decode('ascii')


def fake_sealed_value(rkid: str, *, blocks: int = 1) -> dict[str, Any]:
    """Return a well-formed fle/1 sealed value of random bytes (not openable)."""
    return {'fle': 1, 'rk': rkid, 'n': _b64url(os.urandom(12)),
            'ct': _b64url(os.urandom(32 * blocks + 16))}


def fake_sealed(document: dict[str, Any], *, rkid: str | None = None) -> dict[str, Any]:
    """Return a copy with every present identifying value replaced by a fake sealed value.

    Adds the fle/1 header naming ``rkid`` (random when omitted). The input is
    not modified.
    """
    rkid = rkid or os.urandom(16).hex()
    sealed = copy.deepcopy(document)
    for pointer in schemas.identifying_paths(sealed['type']):
        *parents, name = split(pointer)
        node = sealed
        for token in parents:
            node = node.get(token) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(name) is not None:
            node[name] = fake_sealed_value(rkid)
    sealed['fle'] = {'v': 1, 'keys': {rkid: {'commit': _b64url(os.urandom(32)),
                                             'kek': 'oek-test-1', 'dev': 'dev-test-1',
                                             'at': CREATED_AT}}}
    return sealed
