"""Operator commands of ``fieldvault``: they run where the service runs.

``db init``, ``users ...``, ``audit ...``, ``keyvault ...`` and ``quarantine
...`` talk to CouchDB directly with the service's own ``Config`` and domain
code, so they apply the same rules and write the same audit events as the
HTTP API. They hold no key: the staff commands that do (``login``, ``keys``,
``advocate`` and the rest) run on people's own machines, from
``fieldvault_client.cli``; the ``fieldvault`` program joins both.
"""

from __future__ import annotations

import sys

import click

import schemas
from service.accounts import AccountError
from service.app import LOGICAL_DATABASES
from service.cli_audit import audit_verify, keyvault
from service.cli_ops import (OperatorGroup, audit_show, operator_services, quarantine,
                             users_list, users_unlock)
from service.custody import Custody, leaves_custody
from service.program import install_views, warm_views
from sync.app_config import app_config_documents, publish_app_config

__all__ = ['cli', 'main', 'ensure_databases', 'publish_tablet_config']


@click.group('fieldvault')
def cli() -> None:
    """fieldvault: secure offline-first field intake (operator commands)."""


@cli.group(cls=OperatorGroup)
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
    services = operator_services()
    created = ensure_databases(services)
    click.echo(f'databases ready ({len(LOGICAL_DATABASES)}); created: {", ".join(created) or "none"}')


@cli.group(cls=OperatorGroup)
def users() -> None:
    """User accounts."""


@users.command('bootstrap-admin')
@click.option('--username', required=True, help='Name of the first admin.')
@click.password_option(help='Password (at least 12 characters); prompted when omitted.')
def bootstrap_admin(username: str, password: str) -> None:
    """Create the first admin; refused once an admin exists."""
    services = operator_services()
    ensure_databases(services)
    if services.accounts.count_admins():
        raise click.ClickException('an admin already exists; ask them to create your account')
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
    services = operator_services()
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
    services = operator_services()
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
    if not yes:
        click.confirm(f'Delete user {username} for good?', abort=True)
    services = operator_services()
    try:
        user = services.accounts.delete_user(username)
    except AccountError as ex:
        raise click.ClickException(ex.description) from None
    services.audit.record('user_deleted', actor='cli:operator', subject=f'user:{username}',
                          details={'roles': user['roles'],
                                   'sessions_ended': user['sessions_ended']})
    click.echo(f'user {username} deleted; {user["sessions_ended"]} session(s) ended')


@cli.group(cls=OperatorGroup)
def audit() -> None:
    """The hash-chained audit log (operator commands)."""


users.add_command(users_list)
users.add_command(users_unlock)
audit.add_command(audit_verify)
audit.add_command(audit_show)
cli.add_command(keyvault)
cli.add_command(quarantine)


def main(argv: list[str] | None = None) -> None:
    """Run the operator commands alone."""
    cli.main(args=argv, prog_name='fieldvault', standalone_mode=True)


if __name__ == '__main__':  # pragma: no cover
    main(sys.argv[1:])
