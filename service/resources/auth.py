"""Login, logout and who-am-I."""

from __future__ import annotations

from service.accounts import Accounts
from service.openapi_bodies import LoginBody, load_body
from service.resources import ALL_STAFF
from service.audit import AuditLog


class LoginResource:
    """``POST /auth/login``: exchange a user name and password for a token."""

    auth = {'POST': 'public'}

    def __init__(self, accounts: Accounts, audit: AuditLog) -> None:
        self._accounts = accounts
        self._audit = audit

    def on_post(self, req, resp):
        body = load_body(req, LoginBody)
        try:
            session = self._accounts.login(body['username'], body['password'])
        except Exception:
            self._audit.record('login_failed', actor=None, subject=None)
            raise
        self._audit.record('login', actor=f'user:{session["username"]}')
        resp.media = session


class LogoutResource:
    """``POST /auth/logout``: end the caller's session at once."""

    auth = {'POST': ALL_STAFF}

    def __init__(self, accounts: Accounts) -> None:
        self._accounts = accounts

    def on_post(self, req, resp):
        header = req.get_header('Authorization') or ''
        self._accounts.logout(header.partition(' ')[2].strip())
        resp.media = {'ok': True}


class MeResource:
    """``GET /auth/me``: the caller's name and roles."""

    auth = {'GET': ALL_STAFF}

    def on_get(self, req, resp):
        principal = req.context.principal
        resp.media = {'username': principal.id, 'roles': list(principal.roles),
                      'team': principal.team}
