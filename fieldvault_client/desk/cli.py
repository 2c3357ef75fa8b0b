"""``fieldvault desk``: start the advocate desk on this machine."""

from __future__ import annotations

import os
import webbrowser

import click

from fieldvault_client.context import ClientContext, home_option, pass_client
from fieldvault_client.desk.app import DeskServer
from fieldvault_client.desk.session import DeskSession

__all__ = ['desk']


@click.command('desk')
@home_option
@click.option('--port', default=0, show_default='any free port', type=click.IntRange(0, 65535),
              help='Port on 127.0.0.1.')
@click.option('--idle-minutes', type=click.FloatRange(0.5, 240),
              default=lambda: float(os.environ.get('FIELDVAULT_DESK_IDLE_MINUTES') or 10),
              show_default='10, or FIELDVAULT_DESK_IDLE_MINUTES',
              help='Lock the key after this long without use.')
@click.option('--no-browser', is_flag=True, help='Print the address only.')
@pass_client
def desk(client: ClientContext, port: int, idle_minutes: float, no_browser: bool) -> None:
    """Start the advocate desk: a local web console on 127.0.0.1 (Ctrl-C stops it)."""
    session = DeskSession(client.home, idle_seconds=idle_minutes * 60)
    server = DeskServer(session, port)
    click.echo('the desk is running on this computer only; open this address (it carries '
               "this run's secret, do not share it):")
    click.echo(f'    {server.url}')
    if not no_browser:
        webbrowser.open(server.url)
    server.serve_forever()
