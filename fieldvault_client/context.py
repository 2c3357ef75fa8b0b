"""The shared state of one ``fieldvault`` staff command, and the ``--home`` option.

Every staff command receives one ``ClientContext`` (``@pass_client``): the
home folder, the API session opened from it, the pinned org signer and the
admin's signing key. ``--home`` is accepted on a group and after its command
alike; a value after the command wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

import keys
from fieldvault_client.api import Api
from fieldvault_client.home import DEFAULT_HOME, Home

__all__ = ['ClientContext', 'pass_client', 'home_option']

F = TypeVar('F', bound=Callable[..., Any])


class ClientContext:
    """Home, API session, pinned signer and signing key of one command run."""

    def __init__(self, home: Home | None = None) -> None:
        self.home = home or Home(DEFAULT_HOME)
        self._api: Api | None = None

    def use_home(self, path: str) -> None:
        """Work in the folder ``path`` from now on."""
        self.home = Home(path)
        self._api = None

    @property
    def api(self) -> Api:
        """The logged-in session of this home (``fieldvault login`` made it)."""
        if self._api is None:
            self._api = Api(self.home)
        return self._api

    def pinned_signer(self) -> str:
        """Return the org signing public key pinned in this home."""
        pinned = self.home.read_json('signer.json')
        if not pinned:
            raise click.ClickException(
                'no org signing key is pinned: run `fieldvault pin --fingerprint FP` with the '
                'fingerprint your admin gave you in person')
        return pinned['public']

    def signing_key(self) -> keys.SigningKey:
        """Unlock the org signing key kept in this home (asks for its passphrase)."""
        data = self.home.read_bytes('signing-key.pem')
        if data is None:
            raise click.ClickException(
                'no org signing key here: run `fieldvault admin init-signer`')
        passphrase = click.prompt('Signing key passphrase', hide_input=True)
        try:
            return keys.SigningKey.from_pem(data, passphrase)
        except keys.errors.KeysError:
            raise click.ClickException('the signing key could not be unlocked') from None


#: Pass the run's ``ClientContext`` as the first argument (created on first use).
pass_client = click.make_pass_decorator(ClientContext, ensure=True)


def _set_home(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(ClientContext).use_home(value)


def home_option(function: F) -> F:
    """Add ``--home`` to a staff group or command."""
    return click.option('--home', default=None, expose_value=False, callback=_set_home,
                        metavar='PATH',
                        help=f'Folder of your keys and session (default {DEFAULT_HOME}).')(function)
