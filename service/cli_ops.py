"""Operator commands of ``fieldvault`` that read the service's state, and what
every operator command shares: the service's ``Config`` and plain errors.

Like ``db init`` and ``users create``, they run where the operator can reach
the database (``FIELDVAULT_COUCHDB_URL``) and use the service's own domain
code, so they apply the same rules and write the same audit events as the
HTTP API. None of them prints an identifying value: users, devices and audit
events hold none, and a quarantined document keeps its identifying fields
sealed (or redacted). None of them holds a key.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import click
import httpx

from service.accounts import AccountError
from service.app import build_services
from service.config import Config, ConfigError
from sync.errors import DatabaseUnavailable

__all__ = ['OperatorGroup', 'operator_config', 'operator_services', 'users_list',
           'users_unlock', 'audit_show', 'quarantine']


def operator_config() -> Config:
    """Return the service's settings, or stop with the setting that is wrong."""
    try:
        return Config.from_env()
    except ConfigError as ex:
        raise click.ClickException(str(ex)) from None


def operator_services():
    """Return the service's own services, built from its settings."""
    return build_services(operator_config())


def _database_url() -> str:
    try:
        url = httpx.URL(Config.from_env().couchdb_url)
    except (ConfigError, httpx.InvalidURL):
        return 'FIELDVAULT_COUCHDB_URL'
    # The URL may carry credentials; show only where it points.
    return f'{url.scheme}://{url.host}:{url.port or ""}'.rstrip(':')


class OperatorGroup(click.Group):
    """A command group that turns an unreachable database into one line.

    Operators meet this first (a wrong port, a stopped database); a
    traceback ending in ``ConnectError`` tells them nothing they can act on.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DatabaseUnavailable:
            raise click.ClickException(
                f'the database at {_database_url()} did not answer: is it running, and is '
                'FIELDVAULT_COUCHDB_URL right? (`make run` starts the embedded one)') from None


def _when(epoch: Any) -> str:
    if not isinstance(epoch, (int, float)):
        return '-'
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(row[index])) for row in [header, *rows])
              for index in range(len(header))]
    for row in [header, *rows]:
        click.echo('  '.join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def _newest_first(services, db: str, prefix: str, limit: int) -> Iterator[dict[str, Any]]:
    """The ``limit`` documents of ``prefix`` with the largest ids, newest first."""
    rows = services.couch.all_docs(db, descending=True, include_docs=True, limit=limit,
                                   start_key=prefix + '\ufff0', end_key=prefix)
    for row in rows:
        if row.get('doc'):
            yield row['doc']


@click.command('list')
def users_list() -> None:
    """List every user: name, roles, team, enabled or disabled."""
    services = operator_services()
    users = services.accounts.list_users()
    _table([[user['username'], ','.join(user['roles']), user.get('team') or '-',
             'disabled' if user.get('disabled') else 'enabled'] for user in users],
           ['USER', 'ROLES', 'TEAM', 'STATE'])
    click.echo(f'{len(users)} user(s)')


@click.command('unlock')
@click.argument('username')
def users_unlock(username: str) -> None:
    """Lift a login lockout after too many failed attempts (audited)."""
    services = operator_services()
    try:
        services.accounts.unlock_login(username)
    except AccountError as ex:
        raise click.ClickException(ex.description) from None
    services.audit.record('login_unlocked', actor='cli:operator', subject=f'user:{username}')
    click.echo(f'{username} may log in again')


@click.command('show')
@click.option('--limit', default=50, show_default=True, type=click.IntRange(1, 10000),
              help='How many of the newest events.')
@click.option('--kind', default=None, help='Only events of this kind (e.g. record_released).')
@click.option('--json', 'as_json', is_flag=True, help='One JSON event a line.')
def audit_show(limit: int, kind: str | None, as_json: bool) -> None:
    """Print the newest audit events, newest first."""
    services = operator_services()
    shown = 0
    for event in _newest_first(services, services.db('audit'), 'event:',
                               limit if not kind else 10000):
        if kind and event.get('kind') != kind:
            continue
        shown += 1
        if as_json:
            click.echo(json.dumps({key: value for key, value in event.items()
                                   if not key.startswith('_')}, sort_keys=True))
        else:
            details = json.dumps(event.get('details') or {}, sort_keys=True)
            click.echo(f'{event.get("seq", "-"):>6}  {event.get("at", "-")}  '
                       f'{event.get("kind", "-"):<20}  {event.get("actor", "-")}  '
                       f'{event.get("subject") or "-"}  {details}')
        if shown >= limit:
            break
    click.echo(f'{shown} event(s)', err=True)


@click.group(cls=OperatorGroup)
def quarantine() -> None:
    """Pushed documents the gateway refused, kept for review."""


@quarantine.command('list')
@click.option('--limit', default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option('--rule', default=None, help='Only refusals under this rule.')
@click.option('--device', default=None, help='Only refusals of this device.')
def quarantine_list(limit: int, rule: str | None, device: str | None) -> None:
    """List refused documents by rule, device and time (newest first)."""
    services = operator_services()
    rows = []
    for entry in services.couch.iter_prefix(services.db('quarantine'), 'q:'):
        if rule and entry.get('rule') != rule or device and entry.get('device') != device:
            continue
        rows.append(entry)
    rows.sort(key=lambda entry: entry.get('at') or 0, reverse=True)
    _table([[entry['_id'], _when(entry.get('at')), entry.get('rule', '-'),
             entry.get('device', '-'), entry.get('worker', '-'), entry.get('doc_id') or '-']
            for entry in rows[:limit]], ['QUARANTINE', 'AT', 'RULE', 'DEVICE', 'WORKER', 'DOC'])
    click.echo(f'{min(len(rows), limit)} of {len(rows)} refused document(s)')


@quarantine.command('show')
@click.argument('quarantine_id')
def quarantine_show(quarantine_id: str) -> None:
    """Print one refused document as kept (identifying fields sealed or redacted)."""
    services = operator_services()
    if not quarantine_id.startswith('q:'):
        quarantine_id = f'q:{quarantine_id}'
    entry = services.couch.get_or_none(services.db('quarantine'), quarantine_id)
    if entry is None:
        raise click.ClickException(f'no quarantined document {quarantine_id}')
    click.echo(json.dumps({key: value for key, value in entry.items()
                           if not key.startswith('_') or key == '_id'},
                          indent=2, sort_keys=True, ensure_ascii=False))
