"""The ``fieldvault`` command-line tool (click).

Operator commands (``db init``, ``users bootstrap-admin``) talk to CouchDB
directly with the service's own ``Config``; staff commands (``advocate ...``,
``keys ...``) talk to the HTTP API and keep every secret on the user's machine.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import httpx

import schemas
from fieldvault_client.desk.cli import register as register_desk_command
from service.app import LOGICAL_DATABASES, build_services
from service.cli_audit import register as register_audit_commands
from service.cli_devices import register as register_device_commands
from service.cli_custody import register as register_custody_commands
from service.cli_lifecycle import register as register_lifecycle_commands
from service.cli_ops import register as register_operator_commands
from service.cli_program import register as register_program_commands
from service.cli_staff import Home
from service.cli_staff import register as register_staff_commands
from service.config import Config, ConfigError
from service.program import install_views, warm_views
from sync.errors import DatabaseUnavailable

__all__ = ['main', 'cli']


def _config() -> Config:
    try:
        return Config.from_env()
    except ConfigError as ex:
        raise click.ClickException(str(ex)) from None


class _PlainErrors(click.Group):
    """A command group that turns unreachable servers into one-line messages.

    Operators meet these first (a wrong port, a stopped database); a
    traceback ending in ``ConnectError`` tells them nothing they can act on.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DatabaseUnavailable:
            raise click.ClickException(
                f'the database at {_database_url()} did not answer: is it running, and is '
                'FIELDVAULT_COUCHDB_URL right? (`make run` starts the embedded one)') from None
        except httpx.TransportError as ex:
            where = _origin(ex)
            raise click.ClickException(
                f'the fieldvault service at {where} did not answer: is it running, and is '
                'that its address? (see --server)') from None


def _origin(ex: httpx.TransportError) -> str:
    try:
        url = ex.request.url
    except RuntimeError:
        return 'the given address'
    return f'{url.scheme}://{url.netloc.decode("ascii", "replace")}'


def _database_url() -> str:
    try:
        url = httpx.URL(Config.from_env().couchdb_url)
    except (ConfigError, httpx.InvalidURL):
        return 'FIELDVAULT_COUCHDB_URL'
    # The URL may carry credentials; show only where it points.
    return f'{url.scheme}://{url.host}:{url.port or ""}'.rstrip(':')


@click.group(cls=_PlainErrors)
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
    publish_tablet_config(services)
    install_views(services.couch, services.config.db_name('records'))
    warm_views(services.couch, services.config.db_name('records'))
    return created


def publish_tablet_config(services) -> list[str]:
    """Publish the record schemas and instrument packs tablets read (config db)."""
    from sync.app_config import app_config_documents, publish_app_config

    json_schemas = schemas.export_json_schemas()
    identifying = {schema_id: schemas.identifying_paths(*_type_major(schema_id))
                   for schema_id in json_schemas}
    packs = schemas.instruments.load_packs(services.config.instrument_dir)
    docs = app_config_documents(json_schemas, identifying,
                                {pack_id: pack.to_dict() for pack_id, pack in packs.items()})
    return publish_app_config(services.couch, services.config.db_name('config'), docs)


def _type_major(schema_id: str) -> tuple[str, int]:
    doc_type, _, major = schema_id.partition('/')
    return doc_type, int(major)


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
        services.accounts.create_user(username, password, ['admin'], actor='cli:bootstrap')
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
        services.accounts.create_user(username, password, roles, team=team,
                                         actor='cli:operator')
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
@click.option('--accept-recovery-only', is_flag=True,
              help='Change even if a version with live envelopes is then held by no active '
                   'staff (only the recovery key opens it; audited).')
def users_set(username: str, roles: tuple[str, ...], disabled: bool | None,
              accept_recovery_only: bool) -> None:
    """Change a user's roles, or disable or enable them (operator command)."""
    from service.accounts import AccountError
    from service.custody import Custody, leaves_custody
    services = build_services(_config())
    change = {'roles': list(roles) or None, 'disabled': disabled}
    try:
        current = services.accounts.get_user(username)
    except AccountError as ex:
        raise click.ClickException(ex.description) from None
    if leaves_custody(current, change):
        custody = Custody(services.couch, services.db('keyvault'), services.db('directory'),
                          services.db('config'))
        versions = custody.versions_left_unheld({username})
        if versions and not accept_recovery_only:
            raise click.ClickException(
                f'this would leave {", ".join(versions)} with live envelopes held by no active '
                'staff: a holder shares them first (`fieldvault keys share`), or pass '
                '--accept-recovery-only')
        if versions:
            services.audit.record('recovery_only_accepted', actor='cli:operator',
                                  subject=f'user:{username}',
                                  details={'versions': versions, 'action': 'user_update'})
    try:
        user = services.accounts.update_user(username, roles=roles or None, disabled=disabled,
                                             actor='cli:operator')
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
register_custody_commands(cli)
register_audit_commands(cli)
register_device_commands(cli)
register_operator_commands(cli)
register_desk_command(cli)
register_program_commands(cli)


def _set_home(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.obj['home'] = Home(value)


def _accept_home_after_the_command(root: click.Group) -> None:
    """Let ``--home`` follow the command as well as its group.

    ``fieldvault admin --home X init-signer`` and ``fieldvault admin
    init-signer --home X`` mean the same; a value after the command wins.
    """
    for group in root.commands.values():
        if not isinstance(group, click.Group):
            continue
        if not any(param.name == 'home' for param in group.params):
            continue
        for command in group.commands.values():
            if any(param.name == 'home' for param in command.params):
                continue
            command.params.append(click.Option(
                ['--home'], default=None, expose_value=False, callback=_set_home,
                help='Folder of your keys and session (also accepted before the command).'))


_accept_home_after_the_command(cli)


def main(argv: list[str] | None = None) -> None:
    """Run the command-line tool."""
    cli.main(args=argv, prog_name='fieldvault', standalone_mode=True)


if __name__ == '__main__':  # pragma: no cover
    main(sys.argv[1:])
