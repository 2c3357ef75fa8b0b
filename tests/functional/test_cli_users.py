"""The operator commands of the CLI against the real pouchdb-server."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fieldvault import cli
from tests.conftest import PASSWORD

pytestmark = pytest.mark.functional



def test_bootstrap_create_disable_through_the_cli(env, client, services):
    runner = CliRunner()
    first = runner.invoke(cli, ['users', 'bootstrap-admin', '--username', 'root-admin',
                                '--password', PASSWORD], env=env)
    assert first.exit_code == 0, first.output
    again = runner.invoke(cli, ['users', 'bootstrap-admin', '--username', 'second',
                                '--password', PASSWORD], env=env)
    assert again.exit_code != 0 and 'already exists' in again.output

    created = runner.invoke(cli, ['users', 'create', 'adv-cli', '--role', 'advocate',
                                  '--team', 'north', '--password', PASSWORD], env=env)
    assert created.exit_code == 0, created.output
    login = client.simulate_post('/auth/login', json={'username': 'adv-cli', 'password': PASSWORD})
    assert login.status_code == 200
    token = login.json['token']

    disabled = runner.invoke(cli, ['users', 'set', 'adv-cli', '--disable'], env=env)
    assert disabled.exit_code == 0 and 'disabled' in disabled.output
    me = client.simulate_get('/auth/me', headers={'Authorization': f'Bearer {token}'})
    assert me.status_code == 401

    weak = runner.invoke(cli, ['users', 'create', 'weak-user', '--role', 'worker',
                               '--password', 'short'], env=env)
    assert weak.exit_code != 0 and '12 characters' in weak.output
