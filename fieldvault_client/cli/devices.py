"""Device commands of the ``fieldvault`` CLI (run by an admin on their own machine).

``devices register`` asks the server for a one-time enrollment secret and
prints the enrollment code a tablet needs: the secret plus the fingerprint of
the org signer pinned in this CLI's home (never one the server reports), as
text and as a QR code. ``devices list`` and ``devices revoke`` go through the
same API, so the server audits them under the admin's name.
"""

from __future__ import annotations

import click
import segno

import keys
from fieldvault_client.context import ClientContext, home_option, pass_client
from sync import enrollment

__all__ = ['device_register', 'devices_list', 'devices_revoke']


@click.command('register')
@click.argument('worker')
@click.option('--label', default=None, help='A name for the tablet (no personal data).')
@click.option('--qr-out', type=click.Path(dir_okay=False), default=None,
              help='Also save the QR code to this file (.svg or .png).')
@home_option
@pass_client
def device_register(client: ClientContext, worker: str, label: str | None,
                    qr_out: str | None) -> None:
    """Register a tablet for WORKER and print its one-time enrollment code and QR code."""
    # The fingerprint comes from this machine's pin: a server that
    # rewrote its signer cannot put its own key into the code.
    fingerprint = keys.fingerprint(client.pinned_signer())
    body = {'worker': worker, **({'label': label} if label else {})}
    registered = client.api.call('POST', '/devices', body)
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


@click.command('list')
@home_option
@pass_client
def devices_list(client: ClientContext) -> None:
    """List every device with its worker, label and state."""
    rows = client.api.call('GET', '/devices')['devices']
    widths = (35, 20, 20)
    click.echo('DEVICE'.ljust(widths[0]) + 'WORKER'.ljust(widths[1])
               + 'LABEL'.ljust(widths[2]) + 'STATE')
    for device in rows:
        click.echo(device['device_id'].ljust(widths[0]) + device['worker'].ljust(widths[1])
                   + (device.get('label') or '-').ljust(widths[2]) + device['status'])
    click.echo(f'{len(rows)} device(s)')


@click.command('revoke')
@click.argument('device_id')
@home_option
@pass_client
def devices_revoke(client: ClientContext, device_id: str) -> None:
    """Revoke a device: its credentials stop working at once, and it is told to wipe."""
    client.api.call('POST', f'/devices/{device_id}/revoke')
    click.echo(f'device {device_id} revoked')
