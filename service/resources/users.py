"""User administration (admins only)."""

from __future__ import annotations

from service.accounts import Accounts
from service.audit import AuditLog
from service.custody import leaves_custody
from service.openapi_bodies import UserCreateBody, UserUpdateBody, load_body
from service.resources import ADMIN
from service.resources.custody import refuse_recovery_only


class UsersResource:
    """``GET /users`` lists users; ``POST /users`` creates one."""

    auth = {'GET': ADMIN, 'POST': ADMIN}

    def __init__(self, accounts: Accounts, audit: AuditLog) -> None:
        self._accounts = accounts
        self._audit = audit

    def on_get(self, req, resp):
        resp.media = {'users': self._accounts.list_users()}

    def on_post(self, req, resp):
        body = load_body(req, UserCreateBody)
        user = self._accounts.create_user(
            str(body['username']), str(body['password']), body['roles'], team=body.get('team'),
            actor=req.context.principal.id)
        self._audit.record('user_created', actor=f'user:{req.context.principal.id}',
                           subject=f'user:{user["username"]}', details={'roles': user['roles']})
        resp.status = 201
        resp.location = f'/users/{user["username"]}'
        resp.media = user


class UserResource:
    """``GET /users/{username}`` shows a user; ``PATCH`` changes roles or disables.

    A change that takes the last active holder of a key version with live
    envelopes out of custody (disable, data role removed, team moved) is
    refused with 409 ``recovery_only`` unless ``?accept_recovery_only=true``.
    """

    auth = {'GET': ADMIN, 'PATCH': ADMIN, 'DELETE': ADMIN}

    def __init__(self, accounts: Accounts, audit: AuditLog, custody=None) -> None:
        self._accounts = accounts
        self._audit = audit
        self._custody = custody

    def on_get(self, req, resp, username):
        resp.media = self._accounts.get_user(username)

    def on_patch(self, req, resp, username):
        body = load_body(req, UserUpdateBody)
        if self._custody is not None:
            current = self._accounts.get_user(username)
            if leaves_custody(current, body):
                refuse_recovery_only(self._custody, self._audit, req, {username},
                                     action='user_update', subject=f'user:{username}')
        user = self._accounts.update_user(
            username, roles=body.get('roles'), disabled=body.get('disabled'),
            team=body.get('team'), password=body.get('password'),
            actor=req.context.principal.id)
        changed = sorted(set(body) - {'password'}) + (['password'] if 'password' in body else [])
        self._audit.record('user_updated', actor=f'user:{req.context.principal.id}',
                           subject=f'user:{username}', details={'changed': changed})
        resp.media = user

    def on_delete(self, req, resp, username):
        """Delete a disabled user and end their sessions (``Accounts.delete_user``)."""
        actor = req.context.principal.id
        user = self._accounts.delete_user(username, actor=actor)
        self._audit.record('user_deleted', actor=f'user:{actor}', subject=f'user:{username}',
                           details={'roles': user['roles'],
                                    'sessions_ended': user['sessions_ended']})
        resp.media = user
