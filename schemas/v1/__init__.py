"""Record schemas, major version 1 (frozen).

FROZEN: a breaking change to any schema here (a field removed, renamed,
retyped or newly required, a code dropped, a rule tightened) is not made in
place. It goes into a new ``schemas/v2/`` module, registered in
``schemas/registry.py``, together with a pure upgrade function in
``schemas/upgrades.py`` that lifts ``<type>/1`` documents to ``<type>/2``.
Tablets offline for weeks still push ``/1`` documents, and they must load.
"""

from schemas.v1.case_sealing import CaseSealingSchema
from schemas.v1.consent import ConsentSchema
from schemas.v1.contact import ContactSchema
from schemas.v1.enrollment import EnrollmentSchema
from schemas.v1.exit import ExitSchema
from schemas.v1.identity import IdentitySchema
from schemas.v1.mandated_report import MandatedReportSchema
from schemas.v1.referral import ReferralSchema
from schemas.v1.screening import ScreeningSchema
from schemas.v1.weekly_checkin import WeeklyCheckinSchema

__all__ = ['CaseSealingSchema', 'ConsentSchema', 'ContactSchema', 'EnrollmentSchema',
           'ExitSchema', 'IdentitySchema', 'MandatedReportSchema', 'ReferralSchema',
           'ScreeningSchema', 'WeeklyCheckinSchema']
