"""The staff commands' shared context: which home a command uses, and where ``--home`` goes."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from fieldvault import cli
from fieldvault_client.cli import cli as staff_cli
from service.cli import cli as operator_cli
from service.embedded_db import free_port

pytestmark = pytest.mark.functional


def _home(tmp_path, name: str, port: int) -> str:
    home = tmp_path / name
    home.mkdir()
    (home / 'session.json').write_text(json.dumps({'server': f'http://127.0.0.1:{port}',
                                                   'token': 'not-a-token'}))
    return str(home)


@pytest.mark.parametrize('args', [
    ['keys', '--home', '{a}', 'census'],
    ['keys', 'census', '--home', '{a}'],
    ['keys', '--home', '{b}', 'census', '--home', '{a}'],
    ['sealing', 'list', '--home', '{a}'],
    ['recovery', '--home', '{a}', 'upload', '{shares}'],
    ['report', 'screenings', '--home', '{a}'],
], ids=['before', 'after', 'after-wins', 'sealing', 'recovery', 'report'])
def test_a_command_uses_the_home_given_before_or_after_it(tmp_path, args):
    port_a, port_b = free_port(), free_port()
    shares = tmp_path / 'shares.json'
    shares.write_text(json.dumps({'format': 'fieldvault-recovery-shares/1', 'shares': []}))
    values = {'a': _home(tmp_path, 'a', port_a), 'b': _home(tmp_path, 'b', port_b),
              'shares': str(shares)}
    result = CliRunner().invoke(cli, [arg.format(**values) for arg in args])
    assert result.exit_code == 1, result.output
    # The session of home A names the server that did not answer.
    assert f'the fieldvault service at http://127.0.0.1:{port_a} did not answer' \
        in result.output
    assert 'Traceback' not in result.output


def test_without_a_session_the_command_says_to_log_in(tmp_path):
    result = CliRunner().invoke(cli, ['advocate', 'open', 'r-1', '--purpose', 'case_management',
                                      '--home', str(tmp_path / 'empty')])
    assert result.exit_code == 1
    assert 'not logged in: run `fieldvault login` first' in result.output


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_command_of_a_group_with_home_accepts_home_itself():
    for path, command in _commands(staff_cli):
        parent = staff_cli.commands[path[0]] if len(path) > 1 else None
        if parent is not None and any(param.name == 'home' for param in parent.params):
            uses_home = command.name not in ('create', 'regrant')  # offline recovery steps
            assert uses_home == any(param.name == 'home' for param in command.params), path


def test_the_program_joins_both_halves_without_overlap():
    assert set(cli.commands) == set(staff_cli.commands) | set(operator_cli.commands)
    assert not set(staff_cli.commands) & set(operator_cli.commands)
