"""Coded answers of the program records (enrollment to sealing; T2, never identifying).

Same rules as ``schemas.codes``: adding a code is a minor change, removing or
renaming one needs a new schema major. Names follow domain-screening.md §6.2
E–J and the HMIS labels where HMIS defines the element.
"""

from __future__ import annotations

__all__ = [
    'AGE_BANDS',
    'EXIT_DESTINATIONS',
    'EXIT_REASONS',
    'HOUSING_STATUSES',
    'MANDATED_REPORT_AGENCIES',
    'REFERRAL_CATEGORIES',
    'REFERRAL_OUTCOMES',
    'REFERRAL_SOURCES',
    'SCHOOL_STATUSES',
    'SEALING_BASES',
    'SERVICE_PLAN_ITEMS',
    'SUD_ENGAGEMENT',
]

#: Age bands of the aggregate view (domain-screening.md §6.5).
AGE_BANDS = ('10-13', '14-15', '16-17', '18+')
REFERRAL_SOURCES = ('outreach', 'le_first_responder_protocol', 'da_diversion', 'probation',
                    'dcfs', 'self', 'school', 'medical', 'cbo', 'other')
SERVICE_PLAN_ITEMS = ('mental_health', 'substance_use', 'education', 'shelter_housing',
                      'medical', 'legal', 'life_skills', 'family')
SUD_ENGAGEMENT = ('yes', 'no', 'not_applicable')
SCHOOL_STATUSES = ('attending_regularly', 'attending_irregularly', 'graduated_or_ged',
                   'suspended', 'expelled', 'not_enrolled', 'data_not_collected')
HOUSING_STATUSES = ('own_or_family_rental', 'staying_with_family', 'staying_with_friends',
                    'foster_care_or_group_home', 'emergency_shelter', 'transitional_housing',
                    'place_not_meant_for_habitation', 'juvenile_detention', 'hospital',
                    'other', 'data_not_collected')
REFERRAL_CATEGORIES = ('mental_health', 'substance_use', 'primary_dental', 'education',
                       'shelter_temp', 'housing_perm', 'legal', 'employment',
                       'medical_exam_72h', 'other')
REFERRAL_OUTCOMES = ('accepted', 'youth_declined', 'provider_declined', 'pending')
EXIT_REASONS = ('completed', 'youth_voluntarily_left_early', 'involuntary_discharge',
                'lost_contact', 'aged_out', 'transferred', 'deceased', 'other')
EXIT_DESTINATIONS = ('family', 'foster_care_or_group_home', 'emergency_shelter',
                     'transitional_housing', 'permanent_housing', 'juvenile_detention',
                     'hospital', 'other', 'unknown')
MANDATED_REPORT_AGENCIES = ('county_cws_hotline', 'law_enforcement')
SEALING_BASES = ('completion', 'retention_expiry', 'youth_request', 'court_order')
