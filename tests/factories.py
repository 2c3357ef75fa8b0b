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
    'make_consent',
    'make_contact',
    'make_identity',
    'make_record',
    'make_screening',
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


_MAKERS: dict[str, Callable[..., dict[str, Any]]] = {
    'contact': make_contact,
    'identity': make_identity,
    'screening': make_screening,
    'consent': make_consent,
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
