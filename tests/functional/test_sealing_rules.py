"""The two-person rule of sealings, team scoping, and refusal of bad input."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.functional


def _records(services, client_id, *, owner='worker-a', count=2):
    ids = []
    for _ in range(count):
        record_id = f'identity:{uuid.uuid4()}'
        rkid = uuid.uuid4().hex
        services.couch.put(services.db('records'), {
            '_id': record_id, 'type': 'identity', 'owner': owner, 'client_id': client_id,
            'fle': {'keys': {rkid: {}}}})
        services.couch.put(services.db('keyvault'), {
            '_id': f'rk:{rkid}', 'type': 'rk', 'doc': record_id, 'rkid': rkid, 'kek': 'oek-1'})
        ids.append(record_id)
    return ids


@pytest.fixture
def people(users):
    users.create('worker-a', ['worker'], team='team-a')
    users.create('worker-b', ['worker'], team='team-b')
    return {name: users.bearer(users.token(name, roles, team=team)) for name, roles, team in (
        ('adm-1', ['admin'], 'team-a'), ('adm-2', ['admin'], 'team-a'),
        ('sup-a', ['supervisor'], 'team-a'), ('sup-a2', ['supervisor'], 'team-a'),
        ('sup-b', ['supervisor'], 'team-b'))}


def _propose(client, headers, **body):
    return client.simulate_post('/sealings', json={'reason': 'erasure_request', **body},
                                headers=headers)


def test_supervisor_proposes_and_a_different_admin_approves(client, services, people):
    client_id = str(uuid.uuid4())
    _records(services, client_id)
    proposed = _propose(client, people['sup-a'], client_id=client_id)
    assert proposed.status_code == 201, proposed.text
    sealing = proposed.json['id']
    listed = client.simulate_get('/sealings', headers=people['adm-1']).json['sealings']
    assert [item['status'] for item in listed if item['id'] == sealing] == ['proposed']
    assert client.simulate_get('/sealings', headers=people['sup-b']).json['sealings'] == []
    for who in ('sup-a', 'sup-a2'):  # the proposer, then the same role
        refused = client.simulate_post(f'/sealings/{sealing}/approve', headers=people[who])
        assert refused.status_code == 403 and refused.json['code'] == 'second_person_required'
    # A supervisor of another team does not even see it.
    assert client.simulate_post(f'/sealings/{sealing}/approve',
                                headers=people['sup-b']).status_code == 404
    approved = client.simulate_post(f'/sealings/{sealing}/approve', json={},
                                    headers=people['adm-1'])
    assert approved.status_code == 200, approved.text
    assert approved.json['status'] == 'sealed' and approved.json['envelopes'] == 2
    assert list(services.couch.iter_prefix(services.db('keyvault'), 'rk:')) == []
    tombstones = list(services.couch.iter_prefix(services.db('keyvault'), 'shredded:'))
    assert len(tombstones) == 2


def test_admin_proposes_and_only_a_supervisor_approves(client, services, people):
    client_id = str(uuid.uuid4())
    _records(services, client_id, count=1)
    sealing = _propose(client, people['adm-1'], client_id=client_id).json['id']
    refused = client.simulate_post(f'/sealings/{sealing}/approve', headers=people['adm-2'])
    assert refused.status_code == 403
    assert client.simulate_post(f'/sealings/{sealing}/approve',
                                headers=people['sup-a']).status_code == 200
    again = client.simulate_post(f'/sealings/{sealing}/approve', headers=people['adm-2'])
    assert again.status_code == 409 and again.json['code'] == 'already_sealed'


def test_a_supervisor_cannot_seal_another_teams_youth(client, services, people):
    client_id = str(uuid.uuid4())
    _records(services, client_id, owner='worker-b')
    result = _propose(client, people['sup-a'], client_id=client_id)
    assert result.status_code == 404


def test_sealing_by_youth_code_catches_only_that_youth(client, services, people):
    db = services.db('records')
    services.couch.put(db, {'_id': f'contact:{uuid.uuid4()}', 'type': 'contact',
                            'owner': 'worker-a', 'youth_code': 'quiet-river-07'})
    services.couch.put(db, {'_id': f'contact:{uuid.uuid4()}', 'type': 'contact',
                            'owner': 'worker-a', 'youth_code': 'loud-river-08'})
    result = _propose(client, people['adm-1'], youth_code='quiet-river-07')
    assert result.status_code == 201 and result.json['records'] == 1


@pytest.mark.parametrize('body', [
    {},
    {'reason': 'erasure_request'},
    {'reason': 'because', 'client_id': '0b7e9c1a-5d2f-4c3b-9a8e-1f2d3c4b5a69'},
    {'reason': 'erasure_request', 'client_id': 'not-a-uuid'},
    {'reason': 'erasure_request', 'client_id': '0B7E9C1A-5D2F-4C3B-9A8E-1F2D3C4B5A69'},
    {'reason': 'erasure_request', 'youth_code': 'Jane Doe'},
    {'reason': 'erasure_request', 'client_id': 7},
    {'reason': 'erasure_request', 'client_id': '0b7e9c1a-5d2f-4c3b-9a8e-1f2d3c4b5a69',
     'name': 'x'},
    ['reason'],
])
def test_proposal_refuses_bad_input(client, people, body):
    result = client.simulate_post('/sealings', json=body, headers=people['adm-1'])
    assert result.status_code == 422, (body, result.text)
    assert 'Jane' not in result.text


def test_proposal_for_nobody_is_404(client, people):
    result = _propose(client, people['adm-1'], client_id=str(uuid.uuid4()))
    assert result.status_code == 404


def test_approval_refuses_bad_input(client, services, people):
    assert client.simulate_post('/sealings/not-an-id/approve',
                                headers=people['sup-a']).status_code == 404
    assert client.simulate_post(f'/sealings/{uuid.uuid4().hex}/approve',
                                headers=people['sup-a']).status_code == 404
    client_id = str(uuid.uuid4())
    _records(services, client_id, count=1)
    sealing = _propose(client, people['adm-1'], client_id=client_id).json['id']
    for body in ({'force': True}, ['x'], 'text'):
        result = client.simulate_post(f'/sealings/{sealing}/approve', json=body,
                                      headers=people['sup-a'])
        assert result.status_code == 422, (body, result.text)
    assert len(list(services.couch.iter_prefix(services.db('keyvault'), 'rk:'))) == 1


def test_opening_a_sealed_record_answers_gone_and_releases_nothing(client, services, people,
                                                                    users):
    client_id = str(uuid.uuid4())
    sealed_id, = _records(services, client_id, count=1)
    kept_id, = _records(services, str(uuid.uuid4()), count=1)
    advocate = users.bearer(users.token('adv-a', ['advocate'], team='team-a'))
    sealing = _propose(client, people['sup-a'], client_id=client_id).json['id']
    assert client.simulate_post(f'/sealings/{sealing}/approve', json={},
                                headers=people['adm-1']).status_code == 200
    purpose = {'purpose': 'case_management'}
    gone = client.simulate_post(f'/records/{sealed_id}/open', json=purpose, headers=advocate)
    assert gone.status_code == 410 and gone.json['code'] == 'sealed'
    assert 'document' not in gone.json
    kept = client.simulate_post(f'/records/{kept_id}/open', json=purpose, headers=advocate)
    assert kept.status_code == 200 and len(kept.json['envelopes']) == 1
    opened = [row['doc']['subject'] for row in services.couch.all_docs(
        services.db('audit'), include_docs=True) if row['doc'].get('kind') == 'record_released']
    assert opened == [kept_id]


def test_a_typed_purpose_is_refused_and_repeated_nowhere(client, services, people, users,
                                                         captured_logs):
    """The release purpose is a code: a typed one could name the youth in the audit log."""
    record_id, = _records(services, str(uuid.uuid4()), count=1)
    advocate = users.bearer(users.token('adv-a', ['advocate'], team='team-a'))
    typed = 'court date for Planted-Purpose-Name'
    refused = client.simulate_post(f'/records/{record_id}/open', json={'purpose': typed},
                                   headers=advocate)
    assert refused.status_code == 422 and refused.json['code'] == 'purpose_required'
    assert 'document' not in refused.json and 'Planted' not in refused.text
    # The refusal lists the codes to choose from.
    assert 'case_management' in refused.text
    audit = [row['doc'] for row in services.couch.all_docs(services.db('audit'),
                                                           include_docs=True)]
    assert not [event for event in audit if event.get('kind') == 'record_released']
    assert 'Planted' not in repr(audit) and 'Planted' not in captured_logs.getvalue()
    # The same advocate, with a listed purpose, receives the record.
    opened = client.simulate_post(f'/records/{record_id}/open',
                                  json={'purpose': 'safety_planning'}, headers=advocate)
    assert opened.status_code == 200
    events = [row['doc'] for row in services.couch.all_docs(services.db('audit'),
                                                            include_docs=True)
              if row['doc'].get('kind') == 'record_released']
    assert [event['details']['purpose'] for event in events] == ['safety_planning']
