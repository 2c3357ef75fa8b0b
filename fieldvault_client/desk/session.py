"""The desk's unlocked state: the advocate's key, in this process's memory only.

The key is unwrapped once (Argon2id, through the staff client's own code),
kept while the advocate works, and dropped on ``lock()`` or after the idle
time. Every decryption happens here; the service only hands out ciphertext.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable
from typing import Any

import click

import httpx

import keys
import schemas
from fieldvault_client.api import Api
from fieldvault_client.context import ClientContext
from fieldvault_client.desk.render import render_record
from fieldvault_client.home import Home
from fieldvault_client.opener import RecordOpener, unlock_personal_key, verified_manifest
from schemas.codes import RELEASE_PURPOSES

__all__ = ['DeskError', 'DeskSession']


class DeskError(Exception):
    """A refusal the page shows as it is: an HTTP status, a code and one sentence."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _DeskApi(Api):
    """The staff client's session, answering refusals as ``DeskError``."""

    def refused(self, method: str, path: str, response: httpx.Response) -> DeskError:
        if response.status_code == 401:
            return DeskError(401, 'session_ended', 'Your session with the service has ended: '
                                                   'run `fieldvault login` again.')
        try:
            error = response.json()
            code, text = str(error.get('code')), str(error.get('description'))
        except ValueError:
            code, text = 'service_error', response.reason_phrase
        return DeskError(response.status_code, code, text)


class _DeskOpener(RecordOpener):
    """The staff client's opener, naming each failure by its code."""

    def failed(self, record_id: str, code: str, message: str) -> DeskError:
        super().failed(record_id, code, message)
        return DeskError(422, code, message)


class DeskSession:
    """One advocate's desk: locked until ``unlock``, locked again when idle.

    Args:
        home: The staff client's folder (session, pinned signer).
        idle_seconds: Seconds without a request after which the key is dropped.
        clock: Monotonic seconds (tests inject one instead of waiting).
    """

    def __init__(self, home: Home, *, idle_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._home = home
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._guard = threading.RLock()
        self._api: _DeskApi | None = None
        self._opener: _DeskOpener | None = None
        self._manifest: dict[str, Any] | None = None
        self._released: dict[str, dict[str, Any]] = {}
        self._last = clock()
        self.me: dict[str, Any] = {}

    # -- state --------------------------------------------------------------

    @property
    def api(self) -> _DeskApi:
        if self._api is None:
            try:
                self._api = _DeskApi(self._home)
            except click.ClickException:
                raise DeskError(401, 'not_logged_in', 'Not logged in: run `fieldvault login` '
                                                      'first, then start the desk.') from None
        return self._api

    @property
    def unlocked(self) -> bool:
        self.lock_if_idle()
        return self._opener is not None

    def touch(self) -> None:
        """Count a request as activity (after ``lock_if_idle``)."""
        self._last = self._clock()

    def lock_if_idle(self) -> bool:
        """Lock when the idle time has passed; return whether it locked now."""
        with self._guard:
            if self._opener is not None and self._clock() - self._last >= self.idle_seconds:
                self.lock()
                return True
        return False

    def lock(self) -> None:
        """Drop the key and everything released while unlocked."""
        with self._guard:
            self._opener = None
            self._manifest = None
            self._released.clear()

    def unlock(self, passphrase: str) -> dict[str, Any]:
        """Unwrap the advocate's key here and keep it in memory.

        Raises:
            DeskError: Wrong passphrase, no pinned signer, or an untrusted manifest.
        """
        api = self.api
        self.me = api.call('GET', '/auth/me')
        try:
            pinned = ClientContext(self._home).pinned_signer()
            mine = api.call('GET', '/advocates/me')
            manifest = verified_manifest(api, pinned)
            personal = unlock_personal_key(mine, passphrase)
        except click.ClickException as ex:
            code = 'wrong_passphrase' if 'passphrase' in ex.message else 'untrusted'
            raise DeskError(401 if code == 'wrong_passphrase' else 409, code,
                            ex.message[:1].upper() + ex.message[1:] + '.') from None
        with self._guard:
            self._opener = _DeskOpener(api, mine, personal, manifest, pinned)
            self._manifest = manifest
            self._last = self._clock()
        return self.state()

    def state(self) -> dict[str, Any]:
        """Return what the page needs to know: locked or not, who, the purposes."""
        return {'unlocked': self.unlocked, 'user': self.me.get('username'),
                'roles': self.me.get('roles', []), 'idle_seconds': self.idle_seconds,
                'purposes': list(RELEASE_PURPOSES)}

    def require_unlocked(self) -> _DeskOpener:
        """Return the opener, or refuse with 423 while the desk is locked."""
        if not self.unlocked or self._opener is None:
            raise DeskError(423, 'locked', 'The desk is locked: unlock it with your passphrase.')
        return self._opener

    # -- records ------------------------------------------------------------

    def open_record(self, record_id: str, purpose: str, lang: str) -> dict[str, Any]:
        """Release a record (audited by the service) and open it here."""
        opener = self.require_unlocked()
        if purpose not in RELEASE_PURPOSES:
            raise DeskError(422, 'purpose_required', 'Choose the purpose of this release.')
        released = self.api.call('POST', f'/records/{_segment(record_id)}/open',
                                 {'purpose': purpose})
        plain = opener.open(record_id, released)
        self._released[record_id] = released['document']
        return render_record(plain, lang)

    def correct(self, record_id: str, values: dict[str, Any], lang: str) -> dict[str, Any]:
        """Reseal changed identifying values here and send a new revision."""
        self.require_unlocked()
        sealed = self._released.get(record_id)
        if sealed is None:
            raise DeskError(409, 'open_first', 'Open the record before correcting it.')
        allowed = set(schemas.identifying_paths(sealed['type']))
        if not values or not set(values) <= allowed or not all(
                value is None or (isinstance(value, str) and value.strip())
                for value in values.values()):
            raise DeskError(422, 'invalid_correction',
                            'Only identifying text fields can be corrected here, and a value '
                            'cannot be blank.')
        manifest = self._manifest
        if manifest is None:  # the idle timer locked the desk meanwhile
            raise DeskError(423, 'locked', 'The desk is locked: unlock it with your passphrase.')
        try:
            updated, envelope = keys.reseal_fields(sealed, values, org=sealed['org'],
                                                   manifest_body=manifest)
        except keys.errors.KeysError:
            raise DeskError(422, 'invalid_correction', 'These values cannot be sealed.') \
                from None
        updated['updated_at'] = datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%dT%H:%M:%SZ')
        try:
            schemas.validate_document(updated, sealed=True)
        except schemas.errors.SchemaValidationError as ex:
            raise DeskError(422, 'invalid_correction',
                            'The corrected record is not valid: '
                            + ', '.join(sorted(ex.messages)) + '.') from None
        answer = self.api.call('PUT', f'/caseload/{_segment(record_id)}',
                               {'document': updated, 'envelopes': [envelope]})
        self._released.pop(record_id, None)
        return self.open_record(record_id, 'record_correction', lang) | {'rev': answer['rev']}

    def revisions(self, record_id: str, purpose: str, lang: str) -> list[dict[str, Any]]:
        """Release every open revision of a record and open each here."""
        opener = self.require_unlocked()
        if purpose not in RELEASE_PURPOSES:
            raise DeskError(422, 'purpose_required', 'Choose the purpose of this release.')
        released = self.api.call('POST', f'/caseload/{_segment(record_id)}/revisions',
                                 {'purpose': purpose})
        views = []
        for document in released['revisions']:
            plain = opener.open(record_id, {'document': document,
                                            'envelopes': released['envelopes']})
            views.append(render_record(plain, lang))
        return views

    def resolve(self, record_id: str, keep: str) -> dict[str, Any]:
        """Keep one open revision of a record (the service deletes the others)."""
        self.require_unlocked()
        self._released.pop(record_id, None)
        return self.api.call('POST', f'/caseload/{_segment(record_id)}/resolution',
                             {'keep': keep})

    def close(self) -> None:
        """Lock and end the HTTP session."""
        self.lock()
        if self._api is not None:
            self._api.close()


def _segment(record_id: str) -> str:
    from urllib.parse import quote
    return quote(record_id, safe='')
