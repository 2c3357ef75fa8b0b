"""User administration through the real HTTP path and the CLI, against the
session's pouchdb-server: team validation, listings that stored documents
cannot break, and deleting a user."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fieldvault import cli
from tests.conftest import PASSWORD

pytestmark = pytest.mark.functional

BAD_TEAMS = [
    ['team-a'], {'name': 'team-a'}, 7, True, '', 'team\x00a', 'team\u202ea', 'team\u200fa',
    'team\na', 'Team A', 'x' * 64, '-team', 'équipe',
]


@pytest.mark.parametrize('team', BAD_TEAMS)
def test_a_malformed_team_is_refused_on_create_and_nothing_is_stored(client, users,
                                                                     role_tokens, team):
    admin = users.bearer(role_tokens['admin'])
    result = client.simulate_post('/users', headers=admin, json={
        'username': 'team-user', 'password': PASSWORD, 'roles': ['worker'], 'team': team})
    assert result.status_code == 422, result.text
    assert result.json['code'] == 'invalid_team'
    assert client.simulate_get('/users/team-user', headers=admin).status_code == 404


@pytest.mark.parametrize('team', BAD_TEAMS)
def test_a_malformed_team_is_refused_on_update(client, users, role_tokens, team):
    admin = users.bearer(role_tokens['admin'])
    users.create('team-upd', ['worker'], team='north')
    result = client.simulate_patch('/users/team-upd', headers=admin, json={'team': team})
    assert result.status_code == 422, result.text
    assert result.json['code'] == 'invalid_team'
    assert client.simulate_get('/users/team-upd', headers=admin).json['team'] == 'north'


def test_a_well_formed_team_is_stored(client, users, role_tokens):
    admin = users.bearer(role_tokens['admin'])
    users.create('team-ok', ['worker'], team='north')
    result = client.simulate_patch('/users/team-ok', headers=admin, json={'team': 'south-2.x_y'})
    assert result.status_code == 200, result.text
    assert result.json['team'] == 'south-2.x_y'


@pytest.mark.parametrize('stored', [
    {'team': '\ud83d'}, {'team': ['a', 'b']}, {'roles': 'admin'}, {'roles': None},
    {'created_at': {'x': 1}}, {'username': None},
])
def test_no_stored_user_document_breaks_the_listing(client, users, role_tokens, services,
                                                    stored):
    admin = users.bearer(role_tokens['admin'])
    users.create('stored-bad', ['worker'], team='north')
    db = services.db('directory')
    doc = services.couch.get(db, 'user:stored-bad')
    doc.update(stored)
    services.couch.put(db, doc)
    listed = client.simulate_get('/users', headers=admin)
    assert listed.status_code == 200, listed.text
    names = {user['username'] for user in listed.json['users']}
    assert {'admin-1', 'stored-bad'} <= names
    shown = next(user for user in listed.json['users'] if user['username'] == 'stored-bad')
    if 'team' in stored:
        assert shown['team'] is None
    assert client.simulate_get('/users/stored-bad', headers=admin).status_code == 200


# -- deleting a user --------------------------------------------------------------

def _audit_kinds(services) -> list[dict]:
    return [row['doc'] for row in services.couch.all_docs(
        services.db('audit'), include_docs=True, start_key='event:', end_key='event:\ufff0')]


def test_an_admin_deletes_a_disabled_user_and_their_sessions_end(client, users, role_tokens,
                                                                 services):
    admin = users.bearer(role_tokens['admin'])
    token = users.token('leaving', ['advocate'])
    enabled = client.simulate_delete('/users/leaving', headers=admin)
    assert enabled.status_code == 409 and enabled.json['code'] == 'user_not_disabled'
    assert client.simulate_get('/auth/me', headers=users.bearer(token)).status_code == 200

    services.accounts.update_user('leaving', disabled=True)
    deleted = client.simulate_delete('/users/leaving', headers=admin)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json['sessions_ended'] == 1
    assert client.simulate_get('/users/leaving', headers=admin).status_code == 404
    assert 'leaving' not in {u['username'] for u in
                             client.simulate_get('/users', headers=admin).json['users']}
    events = [e for e in _audit_kinds(services) if e['kind'] == 'user_deleted']
    assert [(e['actor'], e['subject']) for e in events] == [('user:admin-1', 'user:leaving')]

    # A new account under the same name does not inherit the old session.
    users.create('leaving', ['advocate'])
    assert client.simulate_get('/auth/me', headers=users.bearer(token)).status_code == 401


def test_an_admin_cannot_delete_themselves(client, users, role_tokens, services):
    token = role_tokens['admin']
    result = client.simulate_delete('/users/admin-1', headers=users.bearer(token))
    assert result.status_code == 409 and result.json['code'] == 'cannot_delete_self'


def test_the_last_admin_cannot_be_deleted(services, users):
    from service.accounts import AccountError
    users.create('only-admin', ['admin'])
    services.accounts.update_user('only-admin', disabled=True)
    with pytest.raises(AccountError) as refused:
        services.accounts.delete_user('only-admin')
    assert refused.value.code == 'last_admin'


def test_deleting_an_unknown_user_is_404(client, users, role_tokens):
    result = client.simulate_delete('/users/nobody-at-all',
                                    headers=users.bearer(role_tokens['admin']))
    assert result.status_code == 404 and result.json['code'] == 'user_not_found'


def test_the_cli_deletes_a_disabled_user(env, services, users):
    users.create('cli-admin', ['admin'])
    users.create('cli-gone', ['worker'])
    runner = CliRunner()
    refused = runner.invoke(cli, ['users', 'delete', 'cli-gone', '--yes'], env=env)
    assert refused.exit_code != 0 and 'Disable the user' in refused.output
    runner.invoke(cli, ['users', 'set', 'cli-gone', '--disable'], env=env)
    deleted = runner.invoke(cli, ['users', 'delete', 'cli-gone', '--yes'], env=env)
    assert deleted.exit_code == 0, deleted.output
    assert 'cli-gone deleted' in deleted.output
    assert services.couch.get_or_none(services.db('directory'), 'user:cli-gone') is None
    assert [e['actor'] for e in _audit_kinds(services) if e['kind'] == 'user_deleted'] == \
        ['cli:operator']
