"""Device commands of the ``fieldvault`` CLI (run by an admin on their own machine).

``device register`` asks the server for a one-time enrollment secret and
prints the enrollment code a tablet needs: the secret plus the fingerprint of
the org signer pinned in this CLI's home (never one the server reports), as
text and as a QR code.
"""

from __future__ import annotations

import click
import segno

import keys
from service.cli_staff import Api, Home, _pinned_signer
from sync import enrollment

__all__ = ['register']


def register(cli: click.Group) -> None:
    """Add the device commands to the root group."""

    @cli.group()
    @click.option('--home', default='~/.fieldvault', show_default=True)
    @click.pass_context
    def device(ctx: click.Context, home: str) -> None:
        """Register tablets (admin)."""
        ctx.obj = {'home': Home(home)}

    @device.command('register')
    @click.argument('worker')
    @click.option('--label', default=None, help='A name for the tablet (no personal data).')
    @click.option('--qr-out', type=click.Path(dir_okay=False), default=None,
                  help='Also save the QR code to this file (.svg or .png).')
    @click.pass_context
    def device_register(ctx: click.Context, worker: str, label: str | None,
                        qr_out: str | None) -> None:
        """Register a tablet for WORKER and print its one-time enrollment code and QR code."""
        home = ctx.obj['home']
        # The fingerprint comes from this machine's pin: a server that
        # rewrote its signer cannot put its own key into the code.
        fingerprint = keys.fingerprint(_pinned_signer(home))
        body = {'worker': worker, **({'label': label} if label else {})}
        registered = Api(home).call('POST', '/devices', body)
        code = enrollment.compose(registered['enrollment_code'], fingerprint)
        qr = segno.make(code, error='m')
        click.echo(f'device {registered["device_id"]} for {worker}; the code works once, '
                   f'until {registered["expires_at"]} (unix time)')
        click.echo(f'enrollment code: {code}')
        click.echo(f'org signer fingerprint: {fingerprint}')
        qr.terminal(compact=True)
        if qr_out:
            qr.save(qr_out, scale=4)
            click.echo(f'QR code saved to {qr_out}')
