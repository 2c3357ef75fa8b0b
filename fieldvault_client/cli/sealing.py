"""Sealing commands of the ``fieldvault`` CLI: two people seal a youth's records.

An admin and a supervisor (either proposes, the other approves) over the
HTTP API; the service destroys the record keys (crypto-shredding).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from fieldvault_client.context import ClientContext, home_option, pass_client

__all__ = ['sealing_propose', 'sealing_list', 'sealing_cancel', 'sealing_approve']


@click.command('propose')
@click.option('--client-id', default=None, help="The youth's client_id (a UUID).")
@click.option('--youth-code', default=None, help="The youth's code, e.g. quiet-river-07.")
@click.option('--reason', required=True,
              type=click.Choice(['erasure_request', 'retention_expired', 'legal_order']))
@home_option
@pass_client
def sealing_propose(client: ClientContext, client_id: str | None, youth_code: str | None,
                    reason: str) -> None:
    """Propose sealing every record of one youth."""
    body: dict[str, Any] = {'reason': reason}
    if client_id:
        body['client_id'] = client_id
    if youth_code:
        body['youth_code'] = youth_code
    result = client.api.call('POST', '/sealings', body)
    click.echo(f'sealing {result["id"]} proposed for {result["records"]} records; '
               f'a different person with the other role must approve it')


@click.command('list')
@home_option
@pass_client
def sealing_list(client: ClientContext) -> None:
    """List sealings."""
    for item in client.api.call('GET', '/sealings')['sealings']:
        expires = item.get('expires_at')
        until = ''
        if expires and item['status'] == 'proposed':
            when = dt.datetime.fromtimestamp(expires, dt.timezone.utc)
            until = f' expires={when:%Y-%m-%dT%H:%MZ}'
        click.echo(f'{item["id"]} {item["status"]} {item["reason"]} records={item["records"]} '
                   f'proposed_by={item["proposed_by"]} approved_by={item["approved_by"]}'
                   f'{until}')


@click.command('cancel')
@click.argument('sealing_id')
@home_option
@pass_client
def sealing_cancel(client: ClientContext, sealing_id: str) -> None:
    """Cancel a proposed sealing (its proposer, or an admin)."""
    client.api.call('POST', f'/sealings/{sealing_id}/cancel', {})
    click.echo(f'sealing {sealing_id} cancelled')


@click.command('approve')
@click.argument('sealing_id')
@click.option('--yes', is_flag=True, help='Do not ask for confirmation.')
@home_option
@pass_client
def sealing_approve(client: ClientContext, sealing_id: str, yes: bool) -> None:
    """Approve a sealing: the youth's record keys are destroyed for good."""
    if not yes:
        click.confirm('This destroys the record keys for good. Continue?', abort=True)
    result = client.api.call('POST', f'/sealings/{sealing_id}/approve', {})
    click.echo(f'sealed {result["records"]} records; {result["envelopes"]} envelopes '
               f'destroyed')
