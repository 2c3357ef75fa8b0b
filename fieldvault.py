"""The ``fieldvault`` program: the staff commands and the operator commands in one.

The two halves live apart because they run in different places and neither
may depend on the other: the staff client (``fieldvault_client.cli``) runs
on people's own machines and holds their keys; the operator commands
(``service.cli``) run where the service runs and hold none. This module only
puts them under one name.
"""

from __future__ import annotations

import sys

import click

from fieldvault_client.cli import cli as staff_cli
from service.cli import cli as operator_cli

__all__ = ['cli', 'main']


def _joined() -> click.Group:
    commands = {**operator_cli.commands, **staff_cli.commands}
    if len(commands) != len(operator_cli.commands) + len(staff_cli.commands):
        raise RuntimeError('a command name is both a staff and an operator command')
    return click.Group('fieldvault', commands=commands,
                       help='fieldvault: secure offline-first field intake.')


cli = _joined()


def main(argv: list[str] | None = None) -> None:
    """Run the command-line tool."""
    cli.main(args=argv, prog_name='fieldvault', standalone_mode=True)


if __name__ == '__main__':  # pragma: no cover
    main(sys.argv[1:])
