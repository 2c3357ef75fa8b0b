"""Coded answers shared by the record schemas (T2 data, never identifying),
and the release purposes an advocate states to open a record (audited).

Codes are lowercase snake_case tokens named after the HMIS response labels
where the HMIS Data Standards define the element (domain-screening.md §2.1,
§6.2). ``HMIS_DATA_QUALITY`` gives the numeric HMIS code of the shared
"doesn't know / prefers not to answer / not collected" answers, for the
comparable-database aggregate export.

Adding a code to a list is a compatible (minor) change. Removing or renaming
one is breaking: it needs a new schema major and an upgrade function (for
``RELEASE_PURPOSES``, which no record holds, it breaks the open API and the
CLI instead).
"""

from __future__ import annotations

__all__ = [
    'ANSWER_TIMEFRAMES',
    'CONCERN_LEVELS',
    'CONSENT_METHODS',
    'CONSENT_SIGNERS',
    'CONSENT_TYPES',
    'CONTACT_TYPES',
    'DATA_CATEGORIES',
    'DOB_DATA_QUALITY',
    'FOLLOWUP_ACTIONS',
    'GENDER_IDENTITIES',
    'HMIS_DATA_QUALITY',
    'ID_NUMBER_TYPES',
    'IMAGE_MEDIA_TYPES',
    'LIVING_SITUATIONS',
    'MINOR_CONSENT_BASES',
    'NAME_DATA_QUALITY',
    'OPEN_FAILURES',
    'OVERRIDE_REASONS',
    'RACE_ETHNICITY',
    'RELATIONSHIPS',
    'RELEASE_PURPOSES',
    'SAFETY_ACTIONS',
    'SCREENING_ASSENT',
    'SEALING_REASONS',
    'SCREENING_MODES',
    'SERVICES_OFFERED',
    'SEX',
    'SOCIAL_PLATFORMS',
    'TRAFFICKING_TYPES',
]

# HMIS "data quality" answers shared by many elements, with their CSV codes.
HMIS_DATA_QUALITY = {
    'client_doesnt_know': 8,
    'client_prefers_not_to_answer': 9,
    'data_not_collected': 99,
}
_NOT_REPORTED = tuple(HMIS_DATA_QUALITY)

# --- contact (HMIS 4.12 analogue) ---
CONTACT_TYPES = ('street', 'drop_in', 'le_first_responder_call', 'hotline', 'school',
                 'hospital', 'other')
LIVING_SITUATIONS = ('place_not_meant_for_habitation', 'emergency_shelter', 'hotel_motel',
                     'staying_with_family', 'staying_with_friends', 'with_exploiter_unsafe',
                     'foster_care_or_group_home', 'juvenile_detention', 'hospital',
                     'own_or_family_rental', 'other', 'unknown')
SERVICES_OFFERED = ('info', 'food', 'hygiene', 'crisis_support', 'shelter_referral',
                    'medical_referral', 'program_offer')
SAFETY_ACTIONS = ('911_called', 'advocate_dispatched', 'youth_declined', 'other')

# --- identity (HMIS 3.01, 3.03, 3.04, FY2026 Sex) ---
NAME_DATA_QUALITY = ('full_name_reported', 'partial_street_or_code_name', *_NOT_REPORTED)
DOB_DATA_QUALITY = ('full_dob_reported', 'approximate_or_partial_dob', *_NOT_REPORTED)
RACE_ETHNICITY = ('american_indian_alaska_native_or_indigenous', 'asian_or_asian_american',
                  'black_african_american_or_african', 'hispanic_latina_e_o',
                  'middle_eastern_or_north_african', 'native_hawaiian_or_pacific_islander',
                  'white', *_NOT_REPORTED)
SEX = ('female', 'male', *_NOT_REPORTED)
GENDER_IDENTITIES = ('woman_girl', 'man_boy', 'transgender', 'non_binary', 'questioning',
                     'different_identity', *_NOT_REPORTED)
SOCIAL_PLATFORMS = ('instagram', 'snapchat', 'tiktok', 'facebook', 'x_twitter', 'whatsapp',
                    'telegram', 'discord', 'kik', 'other')
ID_NUMBER_TYPES = ('state_id', 'drivers_license', 'passport', 'student_id', 'a_number', 'other')
# Relationships to the youth: used for guardian contacts, flagged abusers and
# consent signers, so the "an abuser may not sign" rule compares like codes.
RELATIONSHIPS = ('mother', 'father', 'stepparent', 'grandparent', 'legal_guardian',
                 'foster_parent', 'other_relative', 'partner', 'other')
IMAGE_MEDIA_TYPES = ('image/jpeg', 'image/png', 'image/webp')

# --- screening ---
SCREENING_MODES = ('interview', 'self_administered', 'information_integration')
SCREENING_ASSENT = ('given', 'declined')
ANSWER_TIMEFRAMES = ('ever', 'past_3_months', 'past_12_months', 'current')
CONCERN_LEVELS = ('no_concern', 'possible_concern', 'clear_concern')
TRAFFICKING_TYPES = ('sex', 'labor', 'both', 'none', 'unclear')
# Coded on purpose: a free-text reason could carry identifying detail.
OVERRIDE_REASONS = ('assessor_judgement', 'disclosure_outside_items',
                    'information_from_other_source', 'data_entry_correction')
FOLLOWUP_ACTIONS = ('none', 'offered_program', 'referred_full_assessment',
                    'mandated_report_considered')

# --- releases of identifying details (the audited record open) ---
# Coded on purpose, as OVERRIDE_REASONS: the purpose goes into the audit log,
# and a typed reason ("Maria's court date") would put a name there.
RELEASE_PURPOSES = ('case_management', 'safety_planning', 'crisis_response',
                    'service_referral', 'legal_advocacy', 'court_order', 'mandated_report',
                    'youth_request', 'record_correction', 'supervisor_review')
# Why a released record could not be opened on the advocate's machine (audited
# as a code for the same reason: free text could carry a value).
OPEN_FAILURES = ('no_grant', 'grant_unopenable', 'record_unopenable')
# Why a youth's records are sealed (crypto-shredded); recorded with the sealing.
SEALING_REASONS = ('erasure_request', 'retention_expired', 'legal_order')

# --- consent ---
CONSENT_TYPES = ('screening_assent', 'program_participation', 'data_collection_notice',
                 'release_of_information', 'part2_disclosure')
CONSENT_SIGNERS = ('youth', 'parent_guardian', 'youth_and_guardian')
CONSENT_METHODS = ('written_on_device', 'paper_scanned', 'oral')
DATA_CATEGORIES = ('attendance', 'completion_status', 'referral_status', 'contact_info',
                   'narrative')
# Why a minor may sign alone (domain-screening.md §2.5, §2.6).
MINOR_CONSENT_BASES = ('fc_6924_mental_health', 'fc_6929_substance_use',
                       'fc_6922_self_sufficient', 'fc_6928_sexual_assault', 'agency_policy')
