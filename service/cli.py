"""The ``fieldvault`` command-line tool (click).

Operator commands (``db init``, ``users bootstrap-admin``) talk to CouchDB
directly with the service's own ``Config``; staff commands (``advocate ...``,
``keys ...``) talk to the HTTP API and keep every secret on the user's machine.
"""

from __future__ import annotations

import json
import sys

import click

import schemas
from service.app import LOGICAL_DATABASES, build_services
from service.cli_audit import register as register_audit_commands
from service.cli_lifecycle import register as register_lifecycle_commands
from service.cli_staff import register as register_staff_commands
from service.config import Config, ConfigError

__all__ = ['main', 'cli']


def _config() -> Config:
    try:
        return Config()
    except ConfigError as ex:
        raise click.ClickException(str(ex)) from None


@click.group()
def cli() -> None:
    """fieldvault: secure offline-first field intake."""


@cli.group()
def db() -> None:
    """Database set-up."""


def ensure_databases(services) -> list[str]:
    """Create every database that is missing; return the names created."""
    created = []
    for name in LOGICAL_DATABASES:
        physical = services.config.db_name(name)
        if services.couch.ensure_db(physical):
            created.append(physical)
    return created


@db.command('init')
def db_init() -> None:
    """Create the databases (idempotent)."""
    services = build_services(_config())
    created = ensure_databases(services)
    click.echo(f'databases ready ({len(LOGICAL_DATABASES)}); created: {", ".join(created) or "none"}')


@cli.group()
def users() -> None:
    """User accounts."""


@users.command('bootstrap-admin')
@click.option('--username', required=True, help='Name of the first admin.')
@click.password_option(help='Password (at least 12 characters); prompted when omitted.')
def bootstrap_admin(username: str, password: str) -> None:
    """Create the first admin; refused once an admin exists."""
    services = build_services(_config())
    ensure_databases(services)
    if services.accounts.count_admins():
        raise click.ClickException('an admin already exists; ask them to create your account')
    from service.accounts import AccountError
    try:
        services.accounts.create_user(username, password, ['admin'])
    except AccountError as ex:
        raise click.ClickException(ex.description) from None
    services.audit.record('user_created', actor='cli:bootstrap', subject=f'user:{username}',
                          details={'roles': ['admin']})
    click.echo(f'admin {username} created')


@users.command('create')
@click.argument('username')
@click.option('--role', 'roles', multiple=True, required=True,
              type=click.Choice(['worker', 'advocate', 'supervisor', 'admin', 'liaison']))
@click.option('--team', default=None, help='Team (caseload) of the user.')
@click.password_option(help='Password (at least 12 characters); prompted when omitted.')
def users_create(username: str, roles: tuple[str, ...], team: str | None, password: str) -> None:
    """Create a user with one or more roles (operator command)."""
    from service.accounts import AccountError
    services = build_services(_config())
    try:
        services.accounts.create_user(username, password, roles, team=team)
    except AccountError as ex:
        raise click.ClickException(ex.description) from None
    services.audit.record('user_created', actor='cli:operator', subject=f'user:{username}',
                          details={'roles': list(roles)})
    click.echo(f'user {username} created with roles {", ".join(roles)}')


@users.command('set')
@click.argument('username')
@click.option('--role', 'roles', multiple=True,
              type=click.Choice(['worker', 'advocate', 'supervisor', 'admin', 'liaison']),
              help='Replace the roles (repeat for several).')
@click.option('--disable/--enable', 'disabled', default=None,
              help='Disable (ends every session at once) or re-enable the user.')
def users_set(username: str, roles: tuple[str, ...], disabled: bool | None) -> None:
    """Change a user's roles, or disable or enable them (operator command)."""
    from service.accounts import AccountError
    services = build_services(_config())
    try:
        user = services.accounts.update_user(username, roles=roles or None, disabled=disabled)
    except AccountError as ex:
        raise click.ClickException(ex.description) from None
    services.audit.record('user_updated', actor='cli:operator', subject=f'user:{username}',
                          details={'roles': user['roles'], 'disabled': user['disabled']})
    click.echo(f'user {username}: roles {", ".join(user["roles"])}, '
               f'{"disabled" if user["disabled"] else "enabled"}')


@users.command('delete')
@click.argument('username')
@click.option('--yes', is_flag=True, help='Do not ask for confirmation.')
def users_delete(username: str, yes: bool) -> None:
    """Delete a disabled user and end their sessions (operator command)."""
    from service.accounts import AccountError
    if not yes:
        click.confirm(f'Delete user {username} for good?', abort=True)
    services = build_services(_config())
    try:
        user = services.accounts.delete_user(username)
    except AccountError as ex:
        raise click.ClickException(ex.description) from None
    services.audit.record('user_deleted', actor='cli:operator', subject=f'user:{username}',
                          details={'roles': user['roles'],
                                   'sessions_ended': user['sessions_ended']})
    click.echo(f'user {username} deleted; {user["sessions_ended"]} session(s) ended')


@cli.group('schemas')
def schemas_group() -> None:
    """Record schemas."""


@schemas_group.command('export')
@click.option('--out', type=click.Path(dir_okay=False, writable=True), default='-',
              help='File to write (default: standard output).')
def schemas_export(out: str) -> None:
    """Export every record schema as JSON Schema."""
    text = json.dumps(schemas.export_json_schemas(), indent=2, sort_keys=True)
    if out == '-':
        click.echo(text)
    else:
        with open(out, 'w', encoding='utf-8') as handle:
            handle.write(text + '\n')
        click.echo(f'wrote {out}', err=True)


register_staff_commands(cli)
register_lifecycle_commands(cli)
register_audit_commands(cli)


def main(argv: list[str] | None = None) -> None:
    """Run the command-line tool."""
    cli.main(args=argv, prog_name='fieldvault', standalone_mode=True)


if __name__ == '__main__':  # pragma: no cover
    main(sys.argv[1:])
