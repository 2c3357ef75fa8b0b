"""Accounts: users, roles, login tokens and login throttling.

No falcon here: the resources in ``service/resources/`` call these functions and
``service/errors.py`` maps the exceptions to HTTP.

Storage, all in the ``directory`` database:

* ``user:<username>``: roles, team, disabled flag, Argon2id password hash;
  ``ever_admin`` once the user has held the admin role, and who created the
  user and last changed their roles, team or (someone else) their password,
  and when (``created_by``, ``changed_at``, ``changed_by``), for the
  two-person rules of sealings.
* ``token:<sha256(token)>``: one login session. Only the hash is stored, so a
  leaked database backup holds no usable token. Logout and disabling a user
  delete or invalidate it at once, for every service instance.
* ``throttle:<sha256(username)>``: recent login attempts of one user name,
  counted before the password is checked (``service/throttle.py``) and
  forgotten after a successful login.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from keys import hash_password, verify_password
from service.throttle import Throttle, Throttled
from sync.couch import CouchDBClient
from sync.errors import DocumentConflict, DocumentNotFound

__all__ = [
    'ROLES',
    'AccountError',
    'Accounts',
    'Forbidden',
    'LoginThrottled',
    'NotAuthenticated',
    'Principal',
]

ROLES = ('worker', 'advocate', 'supervisor', 'admin', 'liaison')
#: Roles that can come to read identifying data; never held with, or after, ``admin``.
DATA_ROLES = ('advocate', 'supervisor')

_USERNAME = re.compile(r'[a-z0-9][a-z0-9._-]{1,62}')
#: A team (caseload) is a short identifier: it is copied into every audit
#: event of its members and compared for team scoping, so it holds no
#: control, bidi or other character a person could misread.
_TEAM = re.compile(r'[a-z0-9][a-z0-9._-]{0,62}')
MIN_PASSWORD_LENGTH = 12


class AccountError(Exception):
    """A refused account operation, safe to show to the client.

    Attributes:
        status: HTTP status the boundary maps it to.
        code: Stable token.
        description: One sentence, never a secret or a submitted value.
    """

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description


class NotAuthenticated(Exception):
    """No credentials, or credentials that are wrong, expired or revoked."""


class Forbidden(Exception):
    """Authenticated, but the role does not allow the operation."""


class LoginThrottled(Exception):
    """Too many failed logins for this user name.

    Attributes:
        retry_after: Seconds until the next attempt is considered.
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__('login throttled')
        self.retry_after = retry_after


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is making a request.

    Attributes:
        kind: ``user`` or ``device``.
        id: User name, or device id.
        roles: Roles of the user (a device acts as its worker: ``worker``).
        team: Team of the user, for supervisors' views.
        worker: For a device, the worker it belongs to; for a user, the user.
    """

    kind: str
    id: str
    roles: tuple[str, ...]
    team: str | None = None
    worker: str | None = None

    def has_any(self, roles: Iterable[str]) -> bool:
        """Return True when the principal holds one of ``roles``."""
        return bool(set(self.roles) & set(roles))


def _check_separation(roles: tuple[str, ...], *, ever_admin: bool) -> None:
    """Refuse role sets that would let one person both administer and read.

    Raises:
        AccountError: 422 ``admin_role_exclusive`` for admin with a data role;
            409 ``former_admin`` for a data role given to a user who has
            ever held the admin role.
    """
    data = sorted(set(roles) & set(DATA_ROLES))
    if 'admin' in roles and data:
        raise AccountError(422, 'admin_role_exclusive',
                           'The admin role cannot be held with advocate or supervisor.')
    if ever_admin and data:
        raise AccountError(409, 'former_admin',
                           'A user who has held the admin role can never hold advocate or '
                           'supervisor; create a separate account for that person.')


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check_team(team: Any) -> None:
    if team is not None and (not isinstance(team, str) or not _TEAM.fullmatch(team)):
        raise AccountError(422, 'invalid_team',
                           'Teams are 1-63 lowercase letters, digits, ".", "-" or "_".')


def _public_user(doc: dict[str, Any]) -> dict[str, Any]:
    # Built from a stored document: a malformed one (written by hand or by
    # an older version) is shown with what is well formed, never an error.
    roles = doc.get('roles')
    team = doc.get('team')
    created_at = doc.get('created_at')
    return {
        'username': str(doc.get('username') or doc.get('_id', '')[len('user:'):]),
        'roles': [role for role in roles if role in ROLES] if isinstance(roles, list) else [],
        'team': team if isinstance(team, str) and _TEAM.fullmatch(team) else None,
        'disabled': bool(doc.get('disabled', False)),
        'created_at': created_at if isinstance(created_at, int) else None,
    }


class Accounts:
    """User and session operations over the directory database.

    Args:
        couch: CouchDB client.
        db: Physical name of the directory database.
        token_ttl: Seconds a login token lives.
        max_failures: Failed logins within ``lockout_seconds`` before throttling.
        lockout_seconds: Length of the throttling window.
        password_params: Argon2id (memory KiB, iterations) for password hashes.
        clock: Injected time source (seconds since the epoch).
        token_factory: Injected source of the secret part of new tokens.
    """

    def __init__(
        self,
        couch: CouchDBClient,
        db: str,
        *,
        token_ttl: int = 3600,
        max_failures: int = 5,
        lockout_seconds: int = 300,
        password_params: tuple[int, int] = (19 * 1024, 2),
        clock: Callable[[], float] = time.time,
        token_factory: Callable[[], str] = lambda: secrets.token_urlsafe(32),
    ) -> None:
        self._couch = couch
        self._db = db
        self._token_ttl = token_ttl
        self._max_failures = max_failures
        self._lockout = lockout_seconds
        self._password_params = password_params
        self._clock = clock
        self._new_token = token_factory
        self._dummy_hash_value: str | None = None
        self._login_throttle = Throttle(couch, db, scope='login', limit=max_failures,
                                        window=lockout_seconds, clock=clock)

    @property
    def _dummy_hash(self) -> str:
        # A hash to verify against when the user does not exist, so a wrong
        # user name costs the same time as a wrong password. Made on first
        # use, not at start-up: CLI commands and workers that never see a
        # failed login skip the Argon2id work.
        if self._dummy_hash_value is None:
            self._dummy_hash_value = hash_password('not-a-real-password-0000',
                                                   *self._password_params)
        return self._dummy_hash_value

    # -- users -----------------------------------------------------------

    def create_user(
        self,
        username: str,
        password: str,
        roles: Iterable[str],
        *,
        team: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Create a user and return its public view.

        Args:
            actor: Who creates the user (a user name, or ``cli:...``).

        Raises:
            AccountError: Bad user name, weak password, unknown role, admin
                with a data role, or the user exists.
        """
        roles = tuple(dict.fromkeys(roles))
        if not _USERNAME.fullmatch(username or ''):
            raise AccountError(422, 'invalid_username',
                               'User names are 2-63 lowercase letters, digits, ".", "-" or "_".')
        if not roles or any(role not in ROLES for role in roles):
            raise AccountError(422, 'invalid_roles', f'Roles must be among: {", ".join(ROLES)}.')
        _check_separation(roles, ever_admin=False)
        if len(password or '') < MIN_PASSWORD_LENGTH:
            raise AccountError(422, 'weak_password',
                               f'Passwords need at least {MIN_PASSWORD_LENGTH} characters.')
        _check_team(team)
        doc = {
            '_id': f'user:{username}',
            'type': 'user',
            'username': username,
            'roles': list(roles),
            'team': team,
            'disabled': False,
            'password': hash_password(password, *self._password_params),
            'created_at': int(self._clock()),
            'created_by': actor,
            'ever_admin': 'admin' in roles,
        }
        try:
            self._couch.put(self._db, doc)
        except DocumentConflict:
            raise AccountError(409, 'user_exists', 'A user with that name exists.') from None
        return _public_user(doc)

    def get_user(self, username: str) -> dict[str, Any]:
        """Return a user's public view.

        Raises:
            AccountError: No such user (404).
        """
        return _public_user(self._user_doc(username))

    def _user_doc(self, username: str) -> dict[str, Any]:
        doc = self._couch.get_or_none(self._db, f'user:{username}')
        if doc is None:
            raise AccountError(404, 'user_not_found', 'No such user.')
        return doc

    def list_users(self) -> list[dict[str, Any]]:
        """Return every user's public view, sorted by name."""
        return [_public_user(doc) for doc in self._couch.iter_prefix(self._db, 'user:')]

    def update_user(
        self,
        username: str,
        *,
        roles: Iterable[str] | None = None,
        disabled: bool | None = None,
        team: str | None = None,
        password: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Change roles, team, password or the disabled flag of a user.

        Args:
            actor: Who makes the change (a user name, or ``cli:...``).

        Raises:
            AccountError: Unknown user, bad roles, admin with a data role, a
                data role for a user who has ever been an admin, or a weak
                password.
        """
        for _attempt in range(5):
            _check_team(team)
            doc = self._user_doc(username)
            before = (list(doc['roles']), doc.get('team'))
            if roles is not None:
                roles = tuple(dict.fromkeys(roles))
                if not roles or any(role not in ROLES for role in roles):
                    raise AccountError(422, 'invalid_roles',
                                       f'Roles must be among: {", ".join(ROLES)}.')
                # A user document from before the flag existed: its admin
                # role counts as held.
                _check_separation(roles, ever_admin=bool(
                    doc.get('ever_admin') or 'admin' in doc['roles']))
                doc['roles'] = list(roles)
                if 'admin' in roles:
                    doc['ever_admin'] = True
            if disabled is not None:
                doc['disabled'] = bool(disabled)
            if team is not None:
                doc['team'] = team
            # A password set by someone else counts as a change too: whoever
            # set it could act as this user.
            if (list(doc['roles']), doc.get('team')) != before or (
                    password is not None and actor != username):
                doc['changed_at'] = int(self._clock())
                doc['changed_by'] = actor
            if password is not None:
                if len(password) < MIN_PASSWORD_LENGTH:
                    raise AccountError(422, 'weak_password',
                                       f'Passwords need at least {MIN_PASSWORD_LENGTH} characters.')
                doc['password'] = hash_password(password, *self._password_params)
            # Changing roles or the password ends existing sessions: the
            # token records the user's password generation.
            if roles is not None or password is not None or disabled:
                doc['generation'] = doc.get('generation', 0) + 1
            try:
                self._couch.put(self._db, doc)
            except DocumentConflict:
                continue
            return _public_user(doc)
        raise AccountError(409, 'conflict', 'The user changed concurrently; retry.')

    def delete_user(self, username: str, *, actor: str | None = None) -> dict[str, Any]:
        """Delete a disabled user and end every session of theirs.

        A user must be disabled first. Disabling is the step that ends access
        and where the refusals that keep records openable apply (a change
        that would leave a key version without a holder is refused there);
        requiring it first means deletion passes the same checks, cannot
        race a new login (a disabled user cannot open a session), and an
        accidental disable can still be undone before the account is gone
        for good. Deletion is refused for the caller's own account and for
        the last admin, so the directory always keeps someone who can
        administer it.

        Args:
            username: The user to delete.
            actor: User name of the admin asking, when it is a person.

        Returns:
            The deleted user's public view, with ``sessions_ended``.

        Raises:
            AccountError: No such user (404); the caller themselves, a user
                who is not disabled, or the last admin (409).
        """
        for _attempt in range(5):
            doc = self._user_doc(username)
            if actor is not None and actor == username:
                raise AccountError(409, 'cannot_delete_self', 'You cannot delete your own account.')
            if not doc.get('disabled'):
                raise AccountError(409, 'user_not_disabled', 'Disable the user before deleting it.')
            if 'admin' in (doc.get('roles') or ()) and self.count_admins() == 0:
                raise AccountError(409, 'last_admin', 'The last admin cannot be deleted.')
            try:
                self._couch.delete(self._db, doc['_id'], doc['_rev'])
            except DocumentConflict:
                continue
            except DocumentNotFound:
                raise AccountError(404, 'user_not_found', 'No such user.') from None
            break
        else:
            raise AccountError(409, 'conflict', 'The user changed concurrently; retry.')
        # Sessions are found by their owner, not by token: a user created
        # later under the same name must not inherit one.
        sessions = [{'_id': session['_id'], '_rev': session['_rev'], '_deleted': True}
                    for session in self._couch.iter_prefix(self._db, 'token:')
                    if session.get('username') == username]
        if sessions:
            self._couch.bulk_docs(self._db, sessions)
        return {**_public_user(doc), 'sessions_ended': len(sessions)}

    def unlock_login(self, username: str) -> None:
        """Forget the recent failed logins of ``username`` (an operator's unlock).

        Raises:
            AccountError: No such user (404).
        """
        self.get_user(username)
        self._login_throttle.reset(username)

    def count_admins(self) -> int:
        """Return how many enabled admins exist (for the bootstrap)."""
        return sum(
            1 for doc in self._couch.iter_prefix(self._db, 'user:')
            if 'admin' in doc.get('roles', ()) and not doc.get('disabled')
        )

    # -- sessions ----------------------------------------------------------

    def login(self, username: str, password: str) -> dict[str, Any]:
        """Check a password and open a session.

        Returns:
            ``{"token", "expires_at", "username", "roles"}``.

        Raises:
            LoginThrottled: Too many recent failures for this name.
            NotAuthenticated: Wrong name or password, or a disabled user.
        """
        # The attempt is counted before the password is checked, with a
        # compare-and-set on the throttle document: parallel guesses cannot
        # all read "fewer than the limit" and all be checked.
        try:
            self._login_throttle.reserve(username or '')
        except Throttled as ex:
            raise LoginThrottled(ex.retry_after) from None
        now = self._clock()
        doc = self._couch.get_or_none(self._db, f'user:{username}') if _USERNAME.fullmatch(
            username or '') else None
        encoded = doc['password'] if doc else self._dummy_hash
        good = verify_password(password or '', encoded)
        if not good or doc is None or doc.get('disabled'):
            raise NotAuthenticated()
        self._login_throttle.reset(username)
        token = f'usr.{username}.{self._new_token()}'
        expires_at = int(now + self._token_ttl)
        self._couch.put(self._db, {
            '_id': f'token:{_sha256(token)}',
            'type': 'token',
            'username': username,
            'generation': doc.get('generation', 0),
            'created_at': int(now),
            'expires_at': expires_at,
        })
        return {'token': token, 'expires_at': expires_at, 'username': username,
                'roles': doc['roles']}

    #: Sessions and users kept in memory while the directory's change feed
    #: reports no change to them (``sync.watch.DocWatch``); None reads both
    #: from the database on every request.
    session_watch: Any = None

    def authenticate(self, token: str) -> Principal:
        """Return the principal of a bearer token.

        The session and the user come from ``session_watch`` (memory, while
        the directory's feed is live and reports them unchanged) or else in
        one round trip together, so a logout, a disabled user or a changed
        password ends the session on every instance within the feed's
        latency.

        Raises:
            NotAuthenticated: Unknown, expired or revoked token, or a disabled user.
        """
        # The token names its user (``usr.<name>.<secret>``), so the session
        # and the user come back in one ``_all_docs`` round trip.
        scheme, _, rest = token.partition('.')
        username = rest.rpartition('.')[0]
        if scheme != 'usr' or not _USERNAME.fullmatch(username):
            raise NotAuthenticated()
        token_id, user_id = f'token:{_sha256(token)}', f'user:{username}'
        if self.session_watch is not None:
            session = self.session_watch.get(token_id)
            user = self.session_watch.get(user_id) if session is not None else None
        else:
            rows = self._couch.all_docs(self._db, keys=[token_id, user_id], include_docs=True)
            session, user = (row.get('doc') for row in rows)
        if (
            session is None
            or session.get('username') != username
            or session.get('expires_at', 0) <= self._clock()
            or user is None
            or user.get('disabled')
            or user.get('generation', 0) != session.get('generation', 0)
        ):
            raise NotAuthenticated()
        return Principal(kind='user', id=user['username'], roles=tuple(user['roles']),
                         team=user.get('team'), worker=user['username'])

    def logout(self, token: str) -> None:
        """End the session of a token; an unknown token is not an error."""
        token_id = f'token:{_sha256(token)}'
        doc = self._couch.get_or_none(self._db, token_id)
        if doc is not None:
            try:
                self._couch.delete(self._db, token_id, doc['_rev'])
            except (DocumentConflict, DocumentNotFound):
                pass
