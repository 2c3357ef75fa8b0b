"""The staff commands of ``fieldvault``: they run on people's own machines.

Every command here talks to the service over HTTP and keeps every secret
(the advocate's key, the org signer, the recovery key) on this machine. The
operator commands that read the database directly (``db``, ``users``,
``audit``, ``keyvault``, ``quarantine``) belong to the service
(``service.cli``); the ``fieldvault`` program joins both (``fieldvault.py``).
"""

from __future__ import annotations

import json

import click

import schemas
from fieldvault_client.cli import custody, devices, lifecycle, program, sealing, staff
from fieldvault_client.context import home_option
from fieldvault_client.desk.cli import desk

__all__ = ['cli', 'main']


@click.group('fieldvault')
def cli() -> None:
    """fieldvault: secure offline-first field intake (staff commands)."""


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


@cli.group()
@home_option
def admin() -> None:
    """Admin key ceremonies (run on the admin's own machine)."""


@cli.group('keys')
@home_option
def keys_group() -> None:
    """Org key versions (run on the admin's own machine)."""


@cli.group()
@home_option
def recovery() -> None:
    """The break-glass recovery key (kept offline by trustees)."""


@cli.group()
@home_option
def advocate() -> None:
    """An advocate's key and record access (on the advocate's own machine)."""


@cli.group()
@home_option
def intake() -> None:
    """Desk intake without a tablet."""


@cli.group('sealing')
@home_option
def sealing_group() -> None:
    """Sealing a youth's records (two people: an admin and a supervisor)."""


@cli.group('devices')
@home_option
def devices_group() -> None:
    """Tablets: register one for a worker, list them, revoke one (admin)."""


@cli.group('program')
@home_option
def program_group() -> None:
    """Program cases: what is due, and lifecycle actions."""


_COMMANDS: dict[click.Group, tuple[click.Command, ...]] = {
    cli: (staff.login, staff.pin, program.report, program.report_hmis, desk),
    admin: (staff.init_signer, staff.certify),
    keys_group: (staff.keys_init, staff.keys_remove_grant, lifecycle.keys_rotate,
                 lifecycle.keys_census, lifecycle.keys_rewrap, lifecycle.keys_retire,
                 custody.keys_holders, custody.keys_pending, custody.keys_share),
    recovery: (staff.recovery_create, custody.recovery_export, custody.recovery_regrant,
               custody.recovery_upload),
    advocate: (staff.advocate_enroll, staff.advocate_open, staff.advocate_open_many,
               lifecycle.advocate_revoke),
    intake: (staff.intake_submit,),
    sealing_group: (sealing.sealing_propose, sealing.sealing_list, sealing.sealing_cancel,
                    sealing.sealing_approve),
    devices_group: (devices.device_register, devices.devices_list, devices.devices_revoke),
    program_group: (program.program_due, program.program_act),
}
for _group, _commands in _COMMANDS.items():
    for _command in _commands:
        _group.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Run the staff commands alone."""
    cli.main(args=argv, prog_name='fieldvault', standalone_mode=True)
