"""What the CLI says when something is wrong: one line an operator can act on,
never a traceback, and never a secret (a database URL's credentials)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fieldvault import cli
from service.embedded_db import free_port
from tests.conftest import PASSWORD

pytestmark = pytest.mark.functional


def _invoke(args, env=None, input_text=None):
    # catch_exceptions=False: an unhandled exception fails the test loudly
    # instead of being folded into the result.
    return CliRunner().invoke(cli, args, env=env, input=input_text, catch_exceptions=False)


@pytest.mark.parametrize('args', [
    ['db', 'init'],
    ['users', 'bootstrap-admin', '--username', 'root-admin', '--password', PASSWORD],
    ['audit', 'verify'],
], ids=['db-init', 'bootstrap-admin', 'audit-verify'])
def test_an_unreachable_database_is_named_not_traced(args, env):
    port = free_port()
    result = _invoke(args, env=dict(env, FIELDVAULT_COUCHDB_URL=f'http://ops:s3cret@127.0.0.1:{port}'))
    assert result.exit_code == 1
    assert f'the database at http://127.0.0.1:{port} did not answer' in result.output
    assert 'Traceback' not in result.output and 's3cret' not in result.output


def test_login_to_nothing_names_the_server(tmp_path):
    port = free_port()
    result = _invoke(['login', '--server', f'http://127.0.0.1:{port}', '--username', 'a',
                      '--home', str(tmp_path), '--password', PASSWORD])
    assert result.exit_code == 1
    assert f'the fieldvault service at http://127.0.0.1:{port} did not answer' in result.output


def test_login_to_the_database_port_says_it_is_not_the_service(tmp_path, couch_server):
    result = _invoke(['login', '--server', couch_server.url, '--username', 'a',
                      '--home', str(tmp_path), '--password', PASSWORD])
    assert result.exit_code == 1
    assert 'did not answer as a fieldvault service' in result.output


def test_login_server_follows_the_bind_port(tmp_path, live, users):
    users.create('adv-port', ['advocate'])
    port = live.url.rsplit(':', 1)[1]
    result = _invoke(['login', '--username', 'adv-port', '--home', str(tmp_path),
                      '--password', PASSWORD], env={'FIELDVAULT_BIND_PORT': port})
    assert result.exit_code == 0, result.output


def test_wrong_password_then_lockout_are_explained(tmp_path, live, users):
    users.create('adv-locked', ['advocate'])
    args = ['login', '--server', live.url, '--username', 'adv-locked', '--home', str(tmp_path),
            '--password', 'not the password at all']
    first = _invoke(args)
    assert first.exit_code == 1 and 'wrong username or password' in first.output
    for _attempt in range(10):
        last = _invoke(args)
        if 'too many failed attempts' in last.output:
            break
    assert 'too many failed attempts for this name; try again in' in last.output


def test_an_ended_session_says_to_log_in_again(tmp_path, live, users, services):
    users.create('adv-role', ['advocate'])
    home = str(tmp_path / 'home')
    assert _invoke(['login', '--server', live.url, '--username', 'adv-role', '--home', home,
                    '--password', PASSWORD]).exit_code == 0
    services.accounts.update_user('adv-role', roles=['worker'])
    result = _invoke(['keys', '--home', home, 'census'])
    assert result.exit_code == 1
    assert 'run `fieldvault login` again' in result.output


@pytest.mark.parametrize('order', ['before', 'after'])
def test_home_is_accepted_before_or_after_the_command(order, tmp_path, live, users,
                                                      monkeypatch):
    # The default home must not be the one used: point it at an empty folder.
    monkeypatch.setenv('HOME', str(tmp_path / 'nobody'))
    users.create('admin-home', ['admin'])
    home = str(tmp_path / 'home')
    assert _invoke(['login', '--server', live.url, '--username', 'admin-home', '--home', home,
                    '--password', PASSWORD]).exit_code == 0
    args = (['keys', '--home', home, 'census'] if order == 'before'
            else ['keys', 'census', '--home', home])
    result = _invoke(args)
    assert result.exit_code == 0, result.output
    signer = (['admin', '--home', home, 'init-signer'] if order == 'before'
              else ['admin', 'init-signer', '--home', home])
    passphrase = 'signer passphrase long enough'
    result = _invoke(signer, input_text=f'{passphrase}\n{passphrase}\n')
    assert result.exit_code == 0, result.output
    assert (tmp_path / 'home' / 'signing-key.pem').exists()
