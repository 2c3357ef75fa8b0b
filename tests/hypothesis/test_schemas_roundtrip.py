"""Property tests: every valid document survives load, dump and validation unchanged."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import schemas
from schemas import codes
from schemas import instruments
from schemas import lifecycle
from schemas import program_codes
from schemas.fields import Phone
from schemas.fields import FleIdentifier
from schemas.fields import Token
from schemas.fields import parse_timestamp
from schemas.pointers import split
from schemas.registry import sealed_variant
from schemas.v1.contact import SERVICE_AREA_PATTERN
from schemas.v1.contact import YOUTH_CODE_PATTERN

pytestmark = pytest.mark.unit

SETTINGS = settings(deadline=None, max_examples=60,
                    suppress_health_check=[HealthCheck.too_slow])
ZONES = [dt.timezone.utc, dt.timezone(dt.timedelta(hours=2)),
         dt.timezone(dt.timedelta(hours=-8)), dt.timezone(dt.timedelta(hours=5, minutes=30))]

uuid4s = st.uuids(version=4).map(str)
tokens = st.from_regex(Token.PATTERN, fullmatch=True)
fle_ids = st.from_regex(FleIdentifier.PATTERN, fullmatch=True)
phones = st.from_regex(Phone.PATTERN, fullmatch=True)
booleans = st.booleans()
b64 = st.binary(min_size=1, max_size=64).map(lambda raw: base64.b64encode(raw).decode('ascii'))
images = st.fixed_dictionaries({'media_type': st.sampled_from(codes.IMAGE_MEDIA_TYPES),
                                'data': b64})


def texts(max_size: int) -> st.SearchStrategy[str]:
    return st.text(min_size=1, max_size=max_size)


def instants(min_year: int = 2020, max_year: int = 2030) -> st.SearchStrategy[dt.datetime]:
    return st.datetimes(min_value=dt.datetime(min_year, 1, 1),
                        max_value=dt.datetime(max_year, 12, 31),
                        timezones=st.sampled_from(ZONES))


def iso(moment: dt.datetime, zulu: bool) -> str:
    text = moment.isoformat()
    return text.replace('+00:00', 'Z') if zulu else text


timestamps = st.builds(iso, instants(), booleans)


def maybe(draw, document: dict[str, Any], name: str, strategy) -> None:
    """Set ``name`` to a drawn value, to null, or leave it out."""
    choice = draw(st.sampled_from(('value', 'null', 'absent')))
    if choice == 'value':
        document[name] = draw(strategy)
    elif choice == 'null':
        document[name] = None


def envelope(draw, doc_type: str) -> dict[str, Any]:
    created = draw(instants())
    updated = created + draw(st.timedeltas(min_value=dt.timedelta(0),
                                           max_value=dt.timedelta(days=90)))
    document = {
        '_id': f'{doc_type}:{draw(uuid4s)}',
        'type': doc_type,
        'schema': f'{doc_type}/1',
        'org': draw(fle_ids),
        'owner': draw(tokens),
        'created_at': iso(created, draw(booleans)),
        'updated_at': iso(updated, draw(booleans)),
    }
    maybe(draw, document, 'device', tokens)
    if draw(booleans):
        start = draw(st.integers(min_value=1, max_value=50))
        hashes = st.from_regex(r'^[0-9a-f]{32}$', fullmatch=True)
        document['_rev'] = f'{start}-{draw(hashes)}'
        document['_revisions'] = {'start': start,
                                  'ids': draw(st.lists(hashes, min_size=1, max_size=5))}
    return document


@st.composite
def contacts(draw) -> dict[str, Any]:
    document = envelope(draw, 'contact')
    document.update(
        contact_at=draw(timestamps),
        service_area_code=draw(st.from_regex(SERVICE_AREA_PATTERN, fullmatch=True)),
        contact_type=draw(st.sampled_from(codes.CONTACT_TYPES)),
        engaged=draw(booleans),
        immediate_danger=draw(booleans),
    )
    maybe(draw, document, 'precise_location', st.fixed_dictionaries(
        {'lat': st.one_of(st.integers(-90, 90), st.floats(-90, 90)),
         'lon': st.floats(-180, 180)},
        optional={'accuracy_m': st.floats(0, 10_000), 'description': texts(200)}))
    maybe(draw, document, 'living_situation', st.sampled_from(codes.LIVING_SITUATIONS))
    maybe(draw, document, 'youth_code', st.from_regex(YOUTH_CODE_PATTERN, fullmatch=True))
    maybe(draw, document, 'client_id', uuid4s)
    maybe(draw, document, 'services_offered',
          st.lists(st.sampled_from(codes.SERVICES_OFFERED), unique=True))
    maybe(draw, document, 'notes', texts(1000))
    if document['engaged']:
        document['engagement_date'] = draw(st.dates()).isoformat()
    if document['immediate_danger']:
        document['safety_action'] = draw(st.sampled_from(codes.SAFETY_ACTIONS))
    return document


def _birth_date(draw, recorded_on: dt.date, age: int) -> dt.date:
    birthday = recorded_on.replace(year=recorded_on.year - age, day=min(recorded_on.day, 28))
    return birthday - dt.timedelta(days=draw(st.integers(min_value=1, max_value=360)))


@st.composite
def identities(draw) -> dict[str, Any]:
    document = envelope(draw, 'identity')
    age = draw(st.integers(min_value=9, max_value=24))
    document.update(client_id=draw(uuid4s), age_at_screening=age)
    name_quality = draw(st.sampled_from(codes.NAME_DATA_QUALITY))
    document['name_data_quality'] = name_quality
    if name_quality == 'full_name_reported':
        document['legal_first_name'] = draw(texts(80))
        document['legal_last_name'] = draw(texts(80))
    elif name_quality == 'partial_street_or_code_name':
        maybe(draw, document, 'legal_first_name', texts(80))
    maybe(draw, document, 'preferred_name', texts(80))
    maybe(draw, document, 'aliases', st.lists(texts(80), max_size=10, unique=True))
    if draw(booleans):
        recorded_on = parse_timestamp(document['created_at']).date()
        birth = _birth_date(draw, recorded_on, age).isoformat()
        if draw(booleans):
            document['date_of_birth'] = birth
            document['dob_data_quality'] = draw(st.sampled_from(
                ('full_dob_reported', 'approximate_or_partial_dob')))
        else:
            document['date_of_birth'] = birth[:7]
            document['dob_data_quality'] = 'approximate_or_partial_dob'
    else:
        document['dob_data_quality'] = draw(st.sampled_from(tuple(codes.HMIS_DATA_QUALITY)))
    maybe(draw, document, 'phones', st.lists(phones, max_size=5, unique=True))
    maybe(draw, document, 'email', st.just('youth.test@example.org'))
    maybe(draw, document, 'social_handles', st.lists(st.fixed_dictionaries(
        {'platform': st.sampled_from(codes.SOCIAL_PLATFORMS), 'handle': texts(100)}),
        max_size=10))
    maybe(draw, document, 'current_location_or_address', texts(500))
    maybe(draw, document, 'placement_or_shelter', texts(500))
    maybe(draw, document, 'ssn_last4', st.from_regex(r'^[0-9]{4}$', fullmatch=True))
    maybe(draw, document, 'id_numbers', st.lists(st.fixed_dictionaries(
        {'type': st.sampled_from(codes.ID_NUMBER_TYPES), 'value': texts(64)}), max_size=5))
    maybe(draw, document, 'race_ethnicity',
          st.lists(st.sampled_from(codes.RACE_ETHNICITY), min_size=1, max_size=8, unique=True))
    maybe(draw, document, 'sex', st.sampled_from(codes.SEX))
    maybe(draw, document, 'gender_identity', st.sampled_from(codes.GENDER_IDENTITIES))
    maybe(draw, document, 'primary_language', st.from_regex(r'^[a-z]{2,3}$', fullmatch=True))
    maybe(draw, document, 'country_of_birth', st.from_regex(r'^[A-Z]{2}$', fullmatch=True))
    maybe(draw, document, 'school_name', texts(200))
    maybe(draw, document, 'exploiter_identifiers', texts(2000))
    maybe(draw, document, 'distinguishing_marks', texts(1000))
    maybe(draw, document, 'photo', images)
    flagged = draw(st.lists(st.sampled_from(codes.RELATIONSHIPS), max_size=4, unique=True))
    maybe(draw, document, 'known_abuser_flags',
          st.just([{'relationship': relationship} for relationship in flagged]))
    safe_relationships = [code for code in codes.RELATIONSHIPS if code not in flagged]
    if safe_relationships and draw(booleans):
        guardian = {'relationship': draw(st.sampled_from(safe_relationships))}
        maybe(draw, guardian, 'name', texts(160))
        maybe(draw, guardian, 'phone', phones)
        document['guardian'] = guardian
        document['guardian_safe'] = True
    else:
        maybe(draw, document, 'guardian_safe', booleans)
    return document


@st.composite
def screenings(draw) -> dict[str, Any]:
    document = envelope(draw, 'screening')
    pack = instruments.get_pack(draw(st.sampled_from(('QYIT', 'TVIT_SHORT', 'HMIS_R15_R16'))))
    document.update(
        instrument=pack.id, instrument_version=pack.version,
        mode=draw(st.sampled_from(pack.modes)), administered_at=draw(timestamps),
        assent=draw(st.sampled_from(codes.SCREENING_ASSENT)),
        confidentiality_limits_explained=draw(booleans),
        followup_action=draw(st.sampled_from(codes.FOLLOWUP_ACTIONS)),
    )
    subject = draw(st.sampled_from(('client_id', 'youth_code', 'both')))
    if subject in ('client_id', 'both'):
        document['client_id'] = draw(uuid4s)
    if subject in ('youth_code', 'both'):
        document['youth_code'] = draw(st.from_regex(YOUTH_CODE_PATTERN, fullmatch=True))
    if document['assent'] == 'given':
        document['confidentiality_limits_explained'] = True
        item_codes = draw(st.lists(st.sampled_from(list(pack.items)), unique=True))
        responses = []
        for code in item_codes:
            item = pack.items[code]
            response = {'item_code': code, 'value': draw(st.sampled_from(item.answers))}
            if item.timeframes:
                maybe(draw, response, 'timeframe', st.sampled_from(item.timeframes))
            responses.append(response)
        document['responses'] = responses
        if responses and draw(booleans):
            scored = instruments.score(pack, responses)
            result = {key: scored[key] for key in ('positive_screen', 'concern_level',
                                                  'trafficking_type') if key in scored}
            if draw(booleans):
                result['positive_screen'] = not result['positive_screen']
                result['override_reason'] = draw(st.sampled_from(codes.OVERRIDE_REASONS))
            document['result'] = result
        maybe(draw, document, 'response_notes', st.lists(st.fixed_dictionaries(
            {'item_code': st.sampled_from(list(pack.items)), 'text': texts(1000)}), max_size=5))
    if document['confidentiality_limits_explained']:
        document['confidentiality_explained_at'] = draw(timestamps)
    return document


_RELEASES = ('release_of_information', 'part2_disclosure')
_WRITTEN_ONLY = (*_RELEASES, 'program_participation')


@st.composite
def consents(draw) -> dict[str, Any]:
    document = envelope(draw, 'consent')
    consent_type = draw(st.sampled_from(codes.CONSENT_TYPES))
    methods = [method for method in codes.CONSENT_METHODS
               if method != 'oral' or consent_type not in _WRITTEN_ONLY]
    method = draw(st.sampled_from(methods))
    minor = draw(booleans)
    signer = draw(st.sampled_from(codes.CONSENT_SIGNERS))
    document.update(client_id=draw(uuid4s), consent_type=consent_type, method=method,
                    youth_is_minor=minor, signer=signer, condition_of_service=False)
    bases = list(codes.MINOR_CONSENT_BASES)
    if consent_type == 'part2_disclosure' and signer != 'youth':
        bases.remove('fc_6929_substance_use')
    if minor and signer == 'youth' and consent_type in _WRITTEN_ONLY:
        document['minor_consent_basis'] = draw(st.sampled_from(bases))
    else:
        maybe(draw, document, 'minor_consent_basis', st.sampled_from(bases))
    flagged = draw(st.lists(st.sampled_from(codes.RELATIONSHIPS), max_size=3, unique=True))
    maybe(draw, document, 'abuser_relationships', st.just(flagged))
    if signer != 'youth':
        document['guardian_relationship'] = draw(st.sampled_from(
            [code for code in codes.RELATIONSHIPS if code not in flagged]))
    if consent_type in _RELEASES:
        document['recipient_org'] = draw(st.from_regex(r'^[a-z0-9][a-z0-9_-]{0,63}$',
                                                       fullmatch=True))
        document['purpose'] = draw(texts(500))
        document['data_categories'] = draw(st.lists(st.sampled_from(codes.DATA_CATEGORIES),
                                                    min_size=1, unique=True))
    if 'narrative' in document.get('data_categories', ()):
        document['cosigned_by'] = draw(texts(128))
    if method != 'oral':
        document['signer_name'] = draw(texts(160))
        if signer == 'youth_and_guardian':
            document['guardian_signer_name'] = draw(texts(160))
    if method == 'written_on_device':
        document['signature_image'] = draw(images)
        if signer == 'youth_and_guardian':
            document['guardian_signature_image'] = draw(images)
    effective = draw(st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2030, 12, 31)))
    longest = 366 if consent_type in _RELEASES else 1000
    expires = effective + dt.timedelta(days=draw(st.integers(min_value=1, max_value=longest)))
    document['effective_at'], document['expires_at'] = effective.isoformat(), expires.isoformat()
    if draw(booleans):
        revoked = dt.datetime.combine(effective, dt.time(12), dt.timezone.utc)
        revoked += draw(st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=30)))
        document['revoked_at'] = iso(revoked, draw(booleans))
    return document


def _after(draw, moment: dt.datetime, max_days: int = 30) -> dt.datetime:
    return moment + draw(st.timedeltas(min_value=dt.timedelta(0),
                                       max_value=dt.timedelta(days=max_days)))


@st.composite
def enrollments(draw) -> dict[str, Any]:
    """A case after a random legal walk of the lifecycle, its fields as its states need."""
    document = envelope(draw, 'enrollment')
    moment = parse_timestamp(document['created_at'])
    state, held_from, history = '', 'active', []
    length = draw(st.integers(min_value=1, max_value=52))
    week = None
    for _ in range(draw(st.integers(min_value=1, max_value=14))):
        legal = [action for action in lifecycle.ACTIONS.values()
                 if state in action.sources
                 and not (action.name == 'next_week' and (week or 0) >= length)]
        if not legal:
            break
        action = draw(st.sampled_from(legal))
        target = (held_from if action.name == 'resume'
                  else action.target or state)
        moment = _after(draw, moment, 20)
        entry = {'action': action.name, 'from': state or None, 'to': target,
                 'by': draw(tokens), 'role': draw(st.sampled_from(action.actors)),
                 'at': iso(moment, draw(booleans))}
        if action.name == 'hold':
            held_from = state
            entry['hold_reason'] = draw(st.sampled_from(lifecycle.HOLD_REASONS))
        if action.name == 'start':
            week = 1
        elif action.name == 'next_week':
            week += 1
        if action.name == 'extend':
            length = min(52, max(length, week or 1))
            entry['program_length_weeks'] = length
        history.append(entry)
        state = target
    if state in ('active', 'on_hold', 'completion_proposed') and week is None:
        week = 1
    reached = {entry['to'] for entry in history}
    updated = max(parse_timestamp(document['updated_at']), moment)
    document['updated_at'] = iso(updated, True)
    document.update(
        client_id=draw(uuid4s), state=state, history=history,
        referral_source=draw(st.sampled_from(program_codes.REFERRAL_SOURCES)),
        service_area_code=draw(st.from_regex(SERVICE_AREA_PATTERN, fullmatch=True)),
        age_band=draw(st.sampled_from(program_codes.AGE_BANDS)),
        program_length_weeks=length, part2_flag=draw(booleans),
        le_cooperation_required=False)
    maybe(draw, document, 'youth_code', st.from_regex(YOUTH_CODE_PATTERN, fullmatch=True))
    if draw(booleans):
        document['diversion_case_ref'] = draw(texts(64))
        document['referring_agency_release_id'] = draw(uuid4s)
    if 'consented' in reached:
        document['consented_at'] = draw(timestamps)
    if reached & {'enrolled', 'active', 'on_hold', 'completion_proposed', 'completed'}:
        document.update(
            enrolled_at=draw(timestamps), program_start=draw(st.dates()).isoformat(),
            assigned_advocate_id=draw(tokens),
            service_plan=draw(st.lists(st.sampled_from(program_codes.SERVICE_PLAN_ITEMS),
                                       min_size=1, unique=True)))
    if state in ('active', 'on_hold', 'completion_proposed'):
        document['current_week'] = min(week, length)
    return document


@st.composite
def weekly_checkins(draw) -> dict[str, Any]:
    document = envelope(draw, 'weekly_checkin')
    attended = draw(booleans)
    document.update(client_id=draw(uuid4s), enrollment_id=f'enrollment:{draw(uuid4s)}',
                    week_number=draw(st.integers(min_value=1, max_value=52)),
                    checked_in_at=draw(timestamps), attended=attended)
    if attended:
        document['services_received'] = draw(st.lists(
            st.sampled_from(program_codes.SERVICE_PLAN_ITEMS), min_size=1, unique=True))
    maybe(draw, document, 'sud_engaged', st.sampled_from(program_codes.SUD_ENGAGEMENT))
    maybe(draw, document, 'school_status', st.sampled_from(program_codes.SCHOOL_STATUSES))
    maybe(draw, document, 'housing_status', st.sampled_from(program_codes.HOUSING_STATUSES))
    maybe(draw, document, 'safety_concern', booleans)
    maybe(draw, document, 'advocate_note', texts(2000))
    return document


@st.composite
def referrals(draw) -> dict[str, Any]:
    document = envelope(draw, 'referral')
    parent = draw(st.sampled_from(('enrollment', 'contact')))
    referred = draw(st.dates())
    outcome = draw(st.sampled_from(program_codes.REFERRAL_OUTCOMES))
    document.update({f'{parent}_id': f'{parent}:{draw(uuid4s)}'},
                    category=draw(st.sampled_from(program_codes.REFERRAL_CATEGORIES)),
                    partner_org_code=draw(st.from_regex(r'^[a-z0-9][a-z0-9_-]{0,63}$',
                                                        fullmatch=True)),
                    referred_at=referred.isoformat(), outcome=outcome)
    if outcome != 'pending' or draw(booleans):
        document['outcome_at'] = (referred + dt.timedelta(
            days=draw(st.integers(min_value=0, max_value=60)))).isoformat()
    maybe(draw, document, 'client_id', uuid4s)
    maybe(draw, document, 'note', texts(1000))
    return document


@st.composite
def exits(draw) -> dict[str, Any]:
    document = envelope(draw, 'exit')
    enrolled = draw(st.dates(max_value=dt.date(9000, 1, 1)))
    reason = draw(st.sampled_from(program_codes.EXIT_REASONS))
    notice = reason == 'completed' and draw(booleans)
    document.update(client_id=draw(uuid4s), enrollment_id=f'enrollment:{draw(uuid4s)}',
                    enrolled_on=enrolled.isoformat(),
                    exit_at=(enrolled + dt.timedelta(days=draw(st.integers(0, 400)))).isoformat(),
                    exit_reason=reason, completion_notice_sent=notice)
    if notice:
        document['completion_notice_release_id'] = draw(uuid4s)
    maybe(draw, document, 'destination', st.sampled_from(program_codes.EXIT_DESTINATIONS))
    maybe(draw, document, 'note', texts(1000))
    return document


@st.composite
def mandated_reports(draw) -> dict[str, Any]:
    document = envelope(draw, 'mandated_report')
    made = draw(instants())
    reporter = draw(booleans)
    document.update(client_id=draw(uuid4s), made_by=draw(tokens),
                    made_by_is_mandated_reporter=reporter,
                    made_by_is_supervisor=not reporter or draw(booleans),
                    made_at=iso(made, draw(booleans)),
                    agency=draw(st.sampled_from(program_codes.MANDATED_REPORT_AGENCIES)))
    maybe(draw, document, 'reference_number', texts(64))
    maybe(draw, document, 'written_followup_at', st.builds(
        iso, st.just(made).map(lambda m: m + dt.timedelta(hours=40)), booleans))
    maybe(draw, document, 'youth_notified_at', st.builds(iso, st.just(made), booleans))
    return document


@st.composite
def case_sealings(draw) -> dict[str, Any]:
    document = envelope(draw, 'case_sealing')
    proposed = draw(instants())
    basis = draw(st.sampled_from(program_codes.SEALING_BASES))
    proposer = draw(tokens)
    document.update(client_id=draw(uuid4s), basis=basis, proposed_by=proposer,
                    proposed_at=iso(proposed, draw(booleans)),
                    approved_by=draw(tokens.filter(lambda name: name != proposer)),
                    sealed_at=iso(_after(draw, proposed), draw(booleans)),
                    keys_destroyed=True)
    maybe(draw, document, 'enrollment_id', st.builds('enrollment:{}'.format, uuid4s))
    if basis == 'court_order':
        document['court_order_ref'] = draw(texts(64))
    else:
        maybe(draw, document, 'court_order_ref', texts(64))
    return document


DOCUMENTS = {'contact': contacts(), 'identity': identities(), 'screening': screenings(),
             'consent': consents(), 'enrollment': enrollments(),
             'weekly_checkin': weekly_checkins(), 'referral': referrals(), 'exit': exits(),
             'mandated_report': mandated_reports(), 'case_sealing': case_sealings()}
any_document = st.one_of(*DOCUMENTS.values())


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b'=').decode('ascii')


@st.composite
def sealed_documents(draw) -> dict[str, Any]:
    """A valid document with every present identifying value sealed (random bytes)."""
    document = draw(any_document)
    rkids = draw(st.lists(st.binary(min_size=16, max_size=16).map(bytes.hex), min_size=1,
                          max_size=3, unique=True))
    sealed_any = False
    for pointer in schemas.identifying_paths(document['type']):
        *parents, name = split(pointer)
        node = document
        for token in parents:
            node = node.get(token) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(name) is not None:
            node[name] = {
                'fle': 1, 'rk': draw(st.sampled_from(rkids)),
                'n': b64url(draw(st.binary(min_size=12, max_size=12))),
                'ct': b64url(draw(st.binary(min_size=16, max_size=16))
                             + bytes(32 * draw(st.integers(min_value=1, max_value=8)))),
            }
            sealed_any = True
    if sealed_any or draw(booleans):
        document['fle'] = {'v': 1, 'keys': {
            rkid: {'commit': b64url(draw(st.binary(min_size=32, max_size=32))),
                   'kek': draw(fle_ids)} for rkid in rkids}}
    return document


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
@SETTINGS
@given(data=st.data())
def test_valid_documents_validate_unchanged_and_idempotent(doc_type, data):
    document = data.draw(DOCUMENTS[doc_type])
    original = copy.deepcopy(document)
    validated = schemas.validate_document(document, sealed=False)
    assert validated == original
    assert document == original
    assert schemas.validate_document(validated, sealed=False) == validated


@pytest.mark.parametrize('doc_type', schemas.RECORD_TYPES)
@SETTINGS
@given(data=st.data())
def test_load_dump_round_trip(doc_type, data):
    document = data.draw(DOCUMENTS[doc_type])
    schema = schemas.schema_for(doc_type)()
    loaded = schema.load(document)
    assert schema.dump(loaded) == document
    assert schema.load(schema.dump(loaded)) == loaded


@SETTINGS
@given(document=any_document)
def test_json_round_trip_validates_the_same(document):
    wire = json.loads(json.dumps(document))
    assert schemas.validate_document(wire, sealed=False) == document


@SETTINGS
@given(document=sealed_documents())
def test_sealed_documents_round_trip(document):
    validated = schemas.validate_document(document, sealed=True)
    assert validated == document
    assert schemas.validate_document(validated, sealed=True) == validated
    schema = sealed_variant(schemas.schema_for(document['type']))()
    assert schema.load(schema.dump(validated)) == validated
