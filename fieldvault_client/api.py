"""The staff client's HTTP session against the fieldvault service."""

from __future__ import annotations

import json
import os
from typing import Any

import click
import httpx

from fieldvault_client.home import Home

__all__ = ['Api', 'default_server', 'log_in']


def default_server() -> str:
    """The service ``make run`` starts on this machine, where the settings put it."""
    host = os.environ.get('FIELDVAULT_BIND_HOST') or '127.0.0.1'
    if host in ('0.0.0.0', '::'):  # listening everywhere: reach it on loopback
        host = '127.0.0.1'
    return f'http://{host}:{os.environ.get("FIELDVAULT_BIND_PORT") or 8080}'


def _unreachable(server: str) -> click.ClickException:
    # Operators meet this first (a wrong port, a stopped service); a
    # traceback ending in ``ConnectError`` tells them nothing they can act on.
    url = httpx.URL(server)
    return click.ClickException(
        f'the fieldvault service at {url.scheme}://{url.netloc.decode("ascii", "replace")} '
        'did not answer: is it running, and is that its address? (see --server)')


def log_in(home: Home, server: str, username: str, password: str) -> None:
    """Log in to ``server`` and keep the session token in ``home``."""
    server = server.rstrip('/')
    try:
        response = httpx.post(f'{server}/auth/login',
                              json={'username': username, 'password': password}, timeout=30)
    except httpx.TransportError:
        raise _unreachable(server) from None
    if response.status_code != 200:
        raise click.ClickException(_login_refusal(response, server))
    home.write('session.json', json.dumps({'server': server, 'token': response.json()['token']}))


def _login_refusal(response: httpx.Response, server: str) -> str:
    """Say why a login failed in words an operator can act on."""
    try:
        code = response.json().get('code')
    except (ValueError, AttributeError):
        code = None
    if response.status_code == 401:
        return 'login refused: wrong username or password'
    if response.status_code == 429:
        wait = response.headers.get('Retry-After', 'a few')
        return (f'login refused: too many failed attempts for this name; try again in {wait} '
                'seconds, or ask an admin')
    if response.status_code == 404 or code is None:
        return (f'{server} did not answer as a fieldvault service (is it the database\'s port? '
                'the service listens on FIELDVAULT_BIND_PORT, 8080 by default)')
    return f'login refused ({response.status_code} {code})'


class Api:
    """A logged-in HTTP session against the service (from ``session.json`` in a home).

    Subclasses change how a refusal is raised by overriding ``refused``.
    """

    def __init__(self, home: Home) -> None:
        session = home.read_json('session.json')
        if not session:
            raise click.ClickException('not logged in: run `fieldvault login` first')
        self.server = session['server']
        self._http = httpx.Client(base_url=self.server, timeout=60,
                                  headers={'Authorization': f'Bearer {session["token"]}'})

    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """Send one request and return the response, whatever its status."""
        try:
            return self._http.request(method, path, json=body)
        except httpx.TransportError:
            raise _unreachable(self.server) from None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request and return its JSON answer; raise ``refused(...)`` on 4xx/5xx."""
        response = self.request(method, path, body)
        if response.status_code >= 400:
            raise self.refused(method, path, response)
        return response.json()

    def text(self, method: str, path: str) -> str:
        """Send one request and return its text answer (CSV exports)."""
        response = self.request(method, path)
        if response.status_code >= 400:
            raise self.refused(method, path, response)
        return response.text

    def refused(self, method: str, path: str, response: httpx.Response) -> Exception:
        """Return the exception that reports a refused request."""
        if response.status_code == 401:
            return click.ClickException(
                'your session has ended (a logout, a password or role change, or a disabled '
                'account): run `fieldvault login` again')
        try:
            error = response.json()
            detail = f'{error.get("code")}: {error.get("description")}'
            if error.get('fields'):
                detail += f' {json.dumps(error["fields"])}'
        except ValueError:
            detail = response.reason_phrase
        return click.ClickException(f'{method} {path} -> {response.status_code} {detail}')

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()
