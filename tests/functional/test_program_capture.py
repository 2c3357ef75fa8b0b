"""Who may capture which program record, by sync push and by desk intake.

A worker's device may push a case opened in the field (field actions only,
taken by its worker, each passing the guards the case API checks against the
youth's other records); later actions, check-ins, exits and sealing tallies
are refused, and a refused document is quarantined, never dropped.
"""

from __future__ import annotations

import pytest

from tests import factories
from tests.functional.test_sync_gateway import ORG, _enroll, _push, _with_rev

pytestmark = pytest.mark.functional


@pytest.fixture
def admin(users):
    return users.bearer(users.token('admin-capture', ['admin']))


def _field_case(owner: str, **overrides):
    overrides = {'state': 'consented',
                 'history': factories._history(factories.ACTIVE_PATH[:4], owner), **overrides}
    return factories.make_enrollment(
        owner=owner, org=ORG,
        diversion_case_ref=factories.OMIT, referring_agency_release_id=factories.OMIT,
        enrolled_at=factories.OMIT, program_start=factories.OMIT, current_week=factories.OMIT,
        assigned_advocate_id=factories.OMIT, service_plan=factories.OMIT, **overrides)


def _supporting(case, *, assent='given', consent=True):
    """The screening (and signed participation consent) a consented case needs."""
    screening = factories.make_screening(owner=case['owner'], org=ORG,
                                         client_id=case['client_id'], assent=assent)
    if assent != 'given':
        screening.update(responses=[], result=None, followup_action='none')
        del screening['response_notes']
    docs = [factories.fake_sealed(screening)]
    if consent:
        docs.append(factories.fake_sealed(factories.make_consent(
            owner=case['owner'], org=ORG, client_id=case['client_id'],
            consent_type='program_participation', recipient_org=None, purpose=None,
            data_categories=None)))
    return [_with_rev(doc) for doc in docs]


def _quarantined_ids(services):
    return {row['doc'].get('doc_id') for row in services.couch.all_docs(
        services.db('quarantine'), include_docs=True)}


def test_a_device_pushes_a_case_opened_in_the_field(client, users, admin, services):
    creds = _enroll(client, users, admin, 'w-cap-1')
    case = _field_case('w-cap-1')
    answer = _push(client, creds, [*_supporting(case), _with_rev(case)])
    assert answer.status_code == 201, answer.text
    assert answer.json == []
    assert services.couch.get(services.db('records'), case['_id'])['state'] == 'consented'


@pytest.mark.parametrize(('name', 'rule'), [
    ('enrolled_by_the_device', 'field_actions_only'),
    ('action_by_someone_else', 'actor'),
    ('weekly_checkin', 'capture'),
    ('exit', 'capture'),
    ('case_sealing', 'capture'),
])
def test_a_device_may_not_push_what_its_worker_may_not_capture(client, users, admin, services,
                                                               name, rule):
    creds = _enroll(client, users, admin, 'w-cap-2')
    if name == 'enrolled_by_the_device':
        doc = factories.make_enrollment(owner='w-cap-2', org=ORG,
                                        history=factories._history(
                                            [(action, 'worker')
                                             for action, _ in factories.ACTIVE_PATH], 'w-cap-2'),
                                        diversion_case_ref=factories.OMIT,
                                        referring_agency_release_id=factories.OMIT)
        doc['history'][4]['role'] = 'advocate'
        doc['history'][5]['role'] = 'advocate'
    elif name == 'action_by_someone_else':
        doc = _field_case('w-cap-2')
        doc['history'][3]['by'] = 'w-cap-other'
    else:
        doc = factories.fake_sealed(factories.make_record(name, owner='w-cap-2', org=ORG))
    answer = _push(client, creds, [_with_rev(doc)])
    assert answer.status_code == 201, answer.text
    [refused] = answer.json
    assert refused['error'] == 'forbidden'
    assert services.couch.get_or_none(services.db('records'), doc['_id']) is None
    assert doc['_id'] in _quarantined_ids(services)
    [entry] = [row['doc'] for row in services.couch.all_docs(
        services.db('quarantine'), include_docs=True) if row['doc'].get('doc_id') == doc['_id']]
    assert entry['rule'] == rule


def test_desk_intake_follows_the_same_capture_rules(client, users, services):
    worker = users.bearer(users.token('w-desk-cap', ['worker']))
    advocate = users.bearer(users.token('adv-desk-cap', ['advocate']))
    checkin = factories.make_weekly_checkin(owner='w-desk-cap', org=ORG,
                                            advocate_note=factories.OMIT)
    refused = client.simulate_post('/records', json={'document': checkin, 'envelopes': []},
                                   headers=worker)
    assert refused.status_code == 403, refused.text
    assert refused.json['code'] == 'capture'
    checkin.update(owner='adv-desk-cap')
    accepted = client.simulate_post('/records', json={'document': checkin, 'envelopes': []},
                                    headers=advocate)
    assert accepted.status_code == 201, accepted.text
    sealing = factories.make_case_sealing(owner='adv-desk-cap', org=ORG, basis='completion',
                                          court_order_ref=factories.OMIT)
    refused = client.simulate_post('/records', json={'document': sealing, 'envelopes': []},
                                   headers=advocate)
    assert (refused.status_code, refused.json['code']) == (403, 'capture')
    active = factories.make_enrollment(owner='adv-desk-cap', org=ORG,
                                       diversion_case_ref=factories.OMIT,
                                       referring_agency_release_id=factories.OMIT)
    for entry in active['history']:
        entry.update(by='adv-desk-cap', role='advocate')
    refused = client.simulate_post('/records', json={'document': active, 'envelopes': []},
                                   headers=advocate)
    assert (refused.status_code, refused.json['code']) == (403, 'field_actions_only')


def test_a_device_extends_a_stored_case_but_never_rewrites_its_history(client, users, admin,
                                                                       services):
    creds = _enroll(client, users, admin, 'w-cap-3')
    case = _field_case('w-cap-3')
    assert _push(client, creds, [*_supporting(case), _with_rev(case)]).json == []
    # The advocate enrolls the youth through the case API (not a field action).
    stored = services.couch.get(services.db('records'), case['_id'])
    stored['history'].append({'action': 'enroll', 'from': 'consented', 'to': 'enrolled',
                              'by': 'adv-1', 'role': 'advocate', 'at': '2026-03-02T10:20:00Z'})
    stored.update(state='enrolled', enrolled_at='2026-03-02T10:20:00Z',
                  program_start='2026-03-09', assigned_advocate_id='adv-1',
                  service_plan=['education'], updated_at='2026-03-02T10:20:00Z')
    stored['_rev'] = services.couch.put(services.db('records'), stored)
    start, stored_hash = stored['_rev'].split('-')

    def edit(doc, sig):
        doc = {key: value for key, value in doc.items() if key != '_rev'}
        return dict(doc, _rev=f'{int(start) + 1}-{sig}',
                    _revisions={'start': int(start) + 1, 'ids': [sig, stored_hash]})

    # Same history, a coded field changed on the tablet: accepted.
    kept = edit(dict(stored, youth_code='calm-lake-12', updated_at='2026-03-02T11:00:00Z'),
                'b' * 32)
    assert _push(client, creds, [kept]).json == []
    # The enrolment entry dropped again: refused and quarantined.
    rewritten = edit(dict(_field_case('w-cap-3'), _id=case['_id']), 'c' * 32)
    [refused] = _push(client, creds, [rewritten]).json
    assert refused['error'] == 'forbidden'
    rules = [row['doc']['rule'] for row in services.couch.all_docs(
        services.db('quarantine'), include_docs=True) if row['doc'].get('doc_id') == case['_id']]
    assert rules == ['history_rewritten']


def _quarantine_rules(services, doc_id):
    return [row['doc']['rule'] for row in services.couch.all_docs(
        services.db('quarantine'), include_docs=True) if row['doc'].get('doc_id') == doc_id]


@pytest.mark.parametrize(('missing', 'guard'), [
    ('consent', 'participation_consent'),
    ('assent', 'assent_recorded'),
    ('age', 'eligible_age'),
])
def test_a_pushed_case_whose_field_actions_fail_their_guards_is_quarantined(
        client, users, admin, services, missing, guard):
    creds = _enroll(client, users, admin, 'w-cap-g')
    case = _field_case('w-cap-g', age_band='18+' if missing == 'age' else '14-15')
    support = _supporting(case, assent='declined' if missing == 'assent' else 'given',
                          consent=missing != 'consent')
    answer = _push(client, creds, [*support, _with_rev(case)])
    assert answer.status_code == 201, answer.text
    [refused] = answer.json
    assert (refused['id'], refused['error']) == (case['_id'], 'forbidden')
    assert services.couch.get_or_none(services.db('records'), case['_id']) is None
    assert _quarantine_rules(services, case['_id']) == [guard]
    # The supporting records themselves were accepted.
    assert all(services.couch.get_or_none(services.db('records'), doc['_id'])
               for doc in support)


def test_guards_count_records_pushed_earlier_and_added_actions_only(client, users, admin,
                                                                    services):
    creds = _enroll(client, users, admin, 'w-cap-h')
    case = _field_case('w-cap-h', state='screened',
                       history=factories._history(factories.ACTIVE_PATH[:2], 'w-cap-h'),
                       consented_at=factories.OMIT)
    assert _push(client, creds, _supporting(case, consent=False)).json == []
    assert _push(client, creds, [_with_rev(case)]).json == []
    stored = services.couch.get(services.db('records'), case['_id'])
    start, stored_hash = stored['_rev'].split('-')

    def extended(path, sig):
        doc = {key: value for key, value in stored.items() if key != '_rev'}
        history = factories._history(path, 'w-cap-h')
        doc.update(history=[*stored['history'], *history[len(stored['history']):]],
                   state=history[-1]['to'])
        if doc['state'] == 'consented':
            doc['consented_at'] = history[-1]['at']
        return dict(doc, _rev=f'{int(start) + 1}-{sig}',
                    _revisions={'start': int(start) + 1, 'ids': [sig, stored_hash]})

    # Offer and consent added on the tablet, no signed consent anywhere: refused.
    consented = extended(factories.ACTIVE_PATH[:4], 'd' * 32)
    [refused] = _push(client, creds, [consented]).json
    assert refused['error'] == 'forbidden'
    assert _quarantine_rules(services, case['_id']) == ['participation_consent']
    assert services.couch.get(services.db('records'), case['_id'])['state'] == 'screened'
    # The offer alone passes its guard (the case's age band is eligible).
    assert _push(client, creds, [extended(factories.ACTIVE_PATH[:3], 'e' * 32)]).json == []
    assert services.couch.get(services.db('records'), case['_id'])['state'] == 'offered'


def test_desk_intake_checks_the_same_guards(client, users, services):
    worker = users.bearer(users.token('w-desk-g', ['worker']))
    case = _field_case('w-desk-g')
    refused = client.simulate_post('/records', json={'document': case, 'envelopes': []},
                                   headers=worker)
    assert refused.status_code == 409, refused.text
    assert refused.json['code'] == 'transition_refused'
    assert refused.json['fields'] == {'guard': ['assent_recorded']}
    assert services.couch.get_or_none(services.db('records'), case['_id']) is None
