"""Separation of duties by construction: the admin role never goes with a data
role (not even later), custodians receive only their team's envelopes, and a
sealing needs two distinct, pre-existing people, whatever accounts an admin
creates. Everything through the real app and the real database."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid

import pytest
from click.testing import CliRunner
from falcon import testing

from fieldvault import cli
from service.app import create_app
from tests.conftest import PASSWORD

pytestmark = pytest.mark.functional

DAY = 86400


def _audit(services, kind):
    return [row['doc'] for row in services.couch.all_docs(services.db('audit'), include_docs=True)
            if row['doc'].get('kind') == kind]


# -- admin and data roles ------------------------------------------------------

def test_admin_and_data_roles_are_refused_together_on_create(client, users, role_tokens):
    admin = users.bearer(role_tokens['admin'])
    for roles in (['admin', 'advocate'], ['supervisor', 'admin'], ['admin', 'worker', 'advocate']):
        answer = client.simulate_post('/users', headers=admin, json={
            'username': 'both-1', 'password': PASSWORD, 'roles': roles, 'team': 'team-a'})
        assert answer.status_code == 422, roles
        assert answer.json['code'] == 'admin_role_exclusive'
        assert client.simulate_get('/users/both-1', headers=admin).status_code == 404
    ok = client.simulate_post('/users', headers=admin, json={
        'username': 'ops-1', 'password': PASSWORD, 'roles': ['admin', 'worker']})
    assert ok.status_code == 201


def test_an_admin_cannot_give_itself_a_data_role(client, users, role_tokens, services):
    admin = users.bearer(role_tokens['admin'])
    for roles in (['admin', 'advocate'], ['advocate'], ['supervisor']):
        answer = client.simulate_patch('/users/admin-1', headers=admin,
                                       json={'roles': roles, 'team': 'north'})
        assert answer.status_code in (409, 422), roles
        assert answer.json['code'] in ('admin_role_exclusive', 'former_admin')
    assert services.accounts.get_user('admin-1')['roles'] == ['admin']
    assert services.accounts.get_user('admin-1')['team'] == 'team-a'


def test_a_former_admin_never_gets_a_data_role(client, users, role_tokens, services):
    admin = users.bearer(role_tokens['admin'])
    users.create('ops-2', ['admin'])
    # Demoted to worker: allowed; then given a data role: refused for good.
    assert client.simulate_patch('/users/ops-2', headers=admin,
                                 json={'roles': ['worker']}).status_code == 200
    assert services.couch.get(services.db('directory'), 'user:ops-2')['ever_admin'] is True
    answer = client.simulate_patch('/users/ops-2', headers=admin, json={'roles': ['advocate']})
    assert answer.status_code == 409 and answer.json['code'] == 'former_admin'
    # A worker promoted to admin carries the mark too.
    users.create('wk-9', ['worker'])
    assert client.simulate_patch('/users/wk-9', headers=admin,
                                 json={'roles': ['admin']}).status_code == 200
    assert client.simulate_patch('/users/wk-9', headers=admin,
                                 json={'roles': ['worker']}).status_code == 200
    answer = client.simulate_patch('/users/wk-9', headers=admin, json={'roles': ['supervisor']})
    assert answer.status_code == 409 and answer.json['code'] == 'former_admin'
    assert services.accounts.get_user('wk-9')['roles'] == ['worker']


def test_operator_commands_keep_the_roles_apart(services, env):
    runner = CliRunner()
    result = runner.invoke(cli, ['users', 'create', 'both-2', '--role', 'admin', '--role',
                                 'supervisor', '--password', PASSWORD], env=env)
    assert result.exit_code != 0 and 'admin role cannot be held' in result.output
    assert runner.invoke(cli, ['users', 'create', 'ops-3', '--role', 'admin', '--password',
                               PASSWORD], env=env).exit_code == 0
    result = runner.invoke(cli, ['users', 'set', 'ops-3', '--role', 'advocate'], env=env)
    assert result.exit_code != 0 and 'never hold advocate or supervisor' in result.output


# -- envelopes for rewrap: own team only, audited --------------------------------

def _record_with_envelope(services, owner, kek='oek-1'):
    record_id = f'contact:{uuid.uuid4()}'
    rkid = uuid.uuid4().hex
    services.couch.put(services.db('records'), {
        '_id': record_id, 'type': 'contact', 'owner': owner, 'fle': {'keys': {rkid: {}}}})
    services.couch.put(services.db('keyvault'), {
        '_id': f'rk:{rkid}', 'type': 'rk', 'doc': record_id, 'rkid': rkid, 'kek': kek})
    return record_id, f'rk:{rkid}'


def test_a_custodian_receives_only_their_teams_envelopes_and_each_release_is_audited(
        client, users, services):
    users.create('worker-a', ['worker'], team='team-a')
    users.create('worker-b', ['worker'], team='team-b')
    sup_a = users.bearer(users.token('sup-a', ['supervisor'], team='team-a'))
    sup_b = users.bearer(users.token('sup-b', ['supervisor'], team='team-b'))
    sup_none = users.bearer(users.token('sup-x', ['supervisor'], team=None))
    ours = [_record_with_envelope(services, 'worker-a') for _ in range(3)]
    theirs = [_record_with_envelope(services, 'worker-b') for _ in range(2)]
    orphan = _record_with_envelope(services, 'nobody-known')

    def page(headers):
        answer = client.simulate_get('/keys/envelopes', query_string='kek=oek-1&limit=2',
                                     headers=headers)
        assert answer.status_code == 200
        found, after = list(answer.json['envelopes']), answer.json['next']
        while after:
            answer = client.simulate_get(
                '/keys/envelopes', query_string=f'kek=oek-1&limit=2&after={after}',
                headers=headers)
            found += answer.json['envelopes']
            after = answer.json['next']
        return sorted(envelope['_id'] for envelope in found)

    assert page(sup_a) == sorted(envelope for _r, envelope in ours)
    assert page(sup_b) == sorted(envelope for _r, envelope in theirs)
    assert page(sup_none) == []
    assert orphan[1] not in page(sup_a) + page(sup_b)

    released = [event for event in _audit(services, 'envelopes_released')
                if event['actor'] == 'user:sup-a']
    assert {record for event in released for record in event['details']['records']} == \
        {record for record, _e in ours}
    assert all(event['details']['purpose'] == 'rewrap' and event['team'] == 'team-a'
               and event['details']['kek'] == 'oek-1' for event in released)


# -- sealings: two distinct, pre-existing people ----------------------------------

def _seal_records(services, owner, count=2):
    client_id = str(uuid.uuid4())
    for _ in range(count):
        record_id = f'identity:{uuid.uuid4()}'
        rkid = uuid.uuid4().hex
        services.couch.put(services.db('records'), {
            '_id': record_id, 'type': 'identity', 'owner': owner, 'client_id': client_id,
            'fle': {'keys': {rkid: {}}}})
        services.couch.put(services.db('keyvault'), {
            '_id': f'rk:{rkid}', 'type': 'rk', 'doc': record_id, 'rkid': rkid, 'kek': 'oek-1'})
    return client_id


def _app_at(services, offset_days=0, *, waiting_days=7, ttl_days=14):
    """The same deployment, with the sealing rules on and its clock ``offset_days`` ahead."""
    later = dataclasses.replace(
        services,
        config=services.config.replace(sealing_waiting_days=waiting_days,
                                       sealing_proposal_ttl_days=ttl_days),
        clock=lambda: time.time() + offset_days * DAY)
    return testing.TestClient(create_app(services=later))


def _backdate(services, *names, days=30):
    """Make accounts as old as long-standing staff (created ``days`` ago, unchanged since)."""
    db = services.db('directory')
    for name in names:
        doc = services.couch.get(db, f'user:{name}')
        doc['created_at'] = int(time.time() - days * DAY)
        services.couch.put(db, doc)


@pytest.fixture
def staff(users, services):
    users.create('worker-a', ['worker'], team='team-a')
    made = {name: users.bearer(users.token(name, roles, team=team)) for name, roles, team in (
        ('adm-1', ['admin'], None), ('adm-2', ['admin'], 'team-b'),
        ('sup-a', ['supervisor'], 'team-a'), ('sup-a2', ['supervisor'], 'team-a'))}
    _backdate(services, 'adm-1', 'adm-2', 'sup-a', 'sup-a2')
    return made


def _propose(client, headers, client_id):
    return client.simulate_post('/sealings', headers=headers,
                                json={'reason': 'erasure_request', 'client_id': client_id})


def _login(client, name):
    token = client.simulate_post('/auth/login',
                                 json={'username': name, 'password': PASSWORD}).json['token']
    return {'Authorization': f'Bearer {token}'}


def test_one_admin_cannot_seal_alone_with_an_account_it_just_made(services, staff):
    now = _app_at(services)
    client_id = _seal_records(services, 'worker-a')
    made = now.simulate_post('/users', headers=staff['adm-1'], json={
        'username': 'sup-fake', 'password': PASSWORD, 'roles': ['supervisor'],
        'team': 'team-a'})
    assert made.status_code == 201
    sealing = _propose(now, staff['adm-1'], client_id)
    assert sealing.status_code == 201, sealing.text
    answer = now.simulate_post(f'/sealings/{sealing.json["id"]}/approve',
                               headers=_login(now, 'sup-fake'))
    assert answer.status_code == 403 and answer.json['code'] == 'approver_too_recent'
    assert len(list(services.couch.iter_prefix(services.db('keyvault'), 'rk:'))) == 2
    assert _audit(services, 'youth_sealed') == []
    # A supervisor of long standing approves the same proposal.
    answer = now.simulate_post(f'/sealings/{sealing.json["id"]}/approve',
                               headers=staff['sup-a'])
    assert answer.status_code == 200 and answer.json['status'] == 'sealed'


def test_an_admin_cannot_approve_as_a_supervisor_whose_password_it_just_set(services, staff):
    now = _app_at(services)
    client_id = _seal_records(services, 'worker-a')
    sealing = _propose(now, staff['adm-1'], client_id).json['id']
    assert now.simulate_patch('/users/sup-a', headers=staff['adm-1'],
                              json={'password': 'a password the admin knows'}).status_code == 200
    token = now.simulate_post('/auth/login', json={
        'username': 'sup-a', 'password': 'a password the admin knows'}).json['token']
    answer = now.simulate_post(f'/sealings/{sealing}/approve',
                               headers={'Authorization': f'Bearer {token}'})
    assert answer.status_code == 403 and answer.json['code'] == 'approver_too_recent'
    # A password the user sets for themselves is no such change.
    services.accounts.update_user('sup-a2', password='my own new password', actor='sup-a2')
    token = now.simulate_post('/auth/login', json={
        'username': 'sup-a2', 'password': 'my own new password'}).json['token']
    answer = now.simulate_post(f'/sealings/{sealing}/approve',
                               headers={'Authorization': f'Bearer {token}'})
    assert answer.status_code == 200, answer.text


def test_an_approver_whose_team_was_just_changed_is_refused(services, staff):
    now = _app_at(services)
    client_id = _seal_records(services, 'worker-a')
    services.accounts.update_user('sup-a2', team='team-b')
    assert now.simulate_patch('/users/sup-a2', headers=staff['adm-2'],
                              json={'team': 'team-a'}).status_code == 200
    sealing = _propose(now, staff['adm-1'], client_id).json['id']
    answer = now.simulate_post(f'/sealings/{sealing}/approve', headers=staff['sup-a2'])
    assert answer.status_code == 403 and answer.json['code'] == 'approver_too_recent'
    # Once the waiting period has passed since the change, a new proposal can be approved.
    later = _app_at(services, 8)
    sealing = _propose(later, staff['adm-1'], client_id).json['id']
    answer = later.simulate_post(f'/sealings/{sealing}/approve', headers=staff['sup-a2'])
    assert answer.status_code == 200, answer.text


def test_the_approver_may_not_have_created_the_proposer_in_the_window(services, staff):
    client_id = _seal_records(services, 'worker-a')
    now = _app_at(services)
    made = now.simulate_post('/users', headers=staff['adm-1'], json={
        'username': 'sup-new', 'password': PASSWORD, 'roles': ['supervisor'],
        'team': 'team-a'})
    assert made.status_code == 201
    sealing = _propose(now, _login(now, 'sup-new'), client_id).json['id']
    # adm-1 made the proposer's account moments ago: adm-1 cannot be the second person.
    answer = now.simulate_post(f'/sealings/{sealing}/approve', headers=staff['adm-1'])
    assert answer.status_code == 403 and answer.json['code'] == 'approver_too_recent'
    # Another admin, who neither made nor changed the proposer, can.
    answer = now.simulate_post(f'/sealings/{sealing}/approve', headers=staff['adm-2'])
    assert answer.status_code == 200, answer.text


def test_an_admin_of_no_team_proposes_and_the_youths_supervisor_approves(services, staff):
    client = _app_at(services)
    client_id = _seal_records(services, 'worker-a')
    proposed = _propose(client, staff['adm-1'], client_id)
    assert proposed.status_code == 201
    sealing = proposed.json['id']
    listed = client.simulate_get('/sealings', headers=staff['sup-a']).json['sealings']
    assert [item['id'] for item in listed] == [sealing]
    events = _audit(services, 'sealing_proposed')
    assert events[-1]['team'] == 'team-a'
    answer = client.simulate_post(f'/sealings/{sealing}/approve', headers=staff['sup-a'])
    assert answer.status_code == 200 and answer.json['status'] == 'sealed'
    assert list(services.couch.iter_prefix(services.db('keyvault'), 'rk:')) == []


def test_a_proposal_can_be_cancelled_by_its_proposer_or_an_admin(services, staff):
    client = _app_at(services)
    client_id = _seal_records(services, 'worker-a')
    first = _propose(client, staff['sup-a'], client_id).json['id']
    refused = client.simulate_post(f'/sealings/{first}/cancel', headers=staff['sup-a2'])
    assert refused.status_code == 403 and refused.json['code'] == 'not_proposer'
    cancelled = client.simulate_post(f'/sealings/{first}/cancel', headers=staff['sup-a'])
    assert cancelled.status_code == 200 and cancelled.json['status'] == 'cancelled'
    answer = client.simulate_post(f'/sealings/{first}/approve', headers=staff['adm-1'])
    assert answer.status_code == 409 and answer.json['code'] == 'proposal_cancelled'
    again = client.simulate_post(f'/sealings/{first}/cancel', headers=staff['sup-a'])
    assert again.status_code == 409 and again.json['code'] == 'not_cancellable'
    second = _propose(client, staff['sup-a'], client_id).json['id']
    assert client.simulate_post(f'/sealings/{second}/cancel',
                                headers=staff['adm-2']).status_code == 200
    kinds = [(event['actor'], event['subject']) for event in _audit(services,
                                                                    'sealing_cancelled')]
    assert kinds == [('user:sup-a', f'sealing:{first}'), ('user:adm-2', f'sealing:{second}')]
    assert len(list(services.couch.iter_prefix(services.db('keyvault'), 'rk:'))) == 2
    assert client_id not in json.dumps(_audit(services, 'sealing_cancelled'))


def test_an_expired_proposal_cannot_be_approved(services, staff):
    client_id = _seal_records(services, 'worker-a')
    sealing = _propose(_app_at(services), staff['sup-a'], client_id).json['id']
    expired = _app_at(services, 15)
    listed = expired.simulate_get('/sealings', headers=staff['adm-1']).json['sealings']
    assert [item['status'] for item in listed if item['id'] == sealing] == ['expired']
    answer = expired.simulate_post(f'/sealings/{sealing}/approve', headers=staff['adm-1'])
    assert answer.status_code == 409 and answer.json['code'] == 'proposal_expired'
    assert len(list(services.couch.iter_prefix(services.db('keyvault'), 'rk:'))) == 2
    # Within its lifetime it is approved.
    in_time = _app_at(services, 13)
    assert in_time.simulate_post(f'/sealings/{sealing}/approve',
                                 headers=staff['adm-1']).status_code == 200


def test_sealing_cancel_and_list_through_the_cli(live, services, users, tmp_path):
    users.create('worker-a', ['worker'], team='team-a')
    users.create('adm-9', ['admin'], team=None)
    users.create('sup-9', ['supervisor'], team='team-a')
    client_id = _seal_records(services, 'worker-a')
    runner = CliRunner()
    homes = {name: str(tmp_path / name) for name in ('adm-9', 'sup-9')}
    for name, home in homes.items():
        assert runner.invoke(cli, ['login', '--server', live.url, '--username', name, '--home',
                                   home, '--password', PASSWORD]).exit_code == 0

    def sealing(name, *args):
        return runner.invoke(cli, ['sealing', '--home', homes[name], *args])

    proposed = sealing('adm-9', 'propose', '--client-id', client_id, '--reason',
                       'retention_expired')
    assert proposed.exit_code == 0, proposed.output
    sealing_id = proposed.output.split('sealing ')[1].split()[0]
    listed = sealing('sup-9', 'list')
    assert f'{sealing_id} proposed retention_expired records=2 proposed_by=adm-9' in \
        listed.output and ' expires=' in listed.output
    refused = sealing('sup-9', 'cancel', sealing_id)
    assert refused.exit_code != 0 and 'not_proposer' in refused.output
    cancelled = sealing('adm-9', 'cancel', sealing_id)
    assert cancelled.exit_code == 0 and f'sealing {sealing_id} cancelled' in cancelled.output
    assert f'{sealing_id} cancelled' in sealing('sup-9', 'list').output
    refused = sealing('sup-9', 'approve', sealing_id, '--yes')
    assert refused.exit_code != 0 and 'proposal_cancelled' in refused.output
