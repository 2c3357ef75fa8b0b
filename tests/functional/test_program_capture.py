"""Who may capture which program record, by sync push and by desk intake.

A worker's device may push a case opened in the field (field actions only,
taken by its worker); later actions, check-ins, exits and sealing tallies
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
    return factories.make_enrollment(
        owner=owner, org=ORG, state='consented',
        history=factories._history(factories.ACTIVE_PATH[:4], owner),
        diversion_case_ref=factories.OMIT, referring_agency_release_id=factories.OMIT,
        enrolled_at=factories.OMIT, program_start=factories.OMIT, current_week=factories.OMIT,
        assigned_advocate_id=factories.OMIT, service_plan=factories.OMIT, **overrides)


def _quarantined_ids(services):
    return {row['doc'].get('doc_id') for row in services.couch.all_docs(
        services.db('quarantine'), include_docs=True)}


def test_a_device_pushes_a_case_opened_in_the_field(client, users, admin, services):
    creds = _enroll(client, users, admin, 'w-cap-1')
    case = _field_case('w-cap-1')
    answer = _push(client, creds, [_with_rev(case)])
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
