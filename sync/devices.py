"""Devices: registration, one-time enrollment, authentication, revocation.

Storage, in the ``directory`` database (never replicated):

* ``device:<id>``: the worker the device belongs to, its status
  (``pending`` until enrolled, ``active``, ``revoked``) and the SHA-256 of its
  secret.
* ``enroll:<sha256(code)>``: one pending enrollment code, with its expiry.
  Only the hash is stored, and enrolling deletes it, so a code works once.

And in the ``config`` database (replicated to every device, read-only):

* ``device-control:<id>``: written on revocation; tells the tablet app to wipe
  its local replica if it ever reconnects.

Why SHA-256 and not Argon2id for device secrets: the secret is 256 random
bits, so a slow hash adds nothing against guessing (there is nothing to
guess), while Argon2id would cost tens of milliseconds and 19 MiB on every
replication request. Passwords chosen by people need Argon2id; random
machine secrets do not.

Authentication needs the device document, and its worker's ``user:``
document (a disabled worker's devices are refused), on every request. The
service gives :class:`Devices` a :class:`sync.watch.DocWatch` of the
directory: each document is read once and kept while the directory's
``_changes`` feed reports no change to it, and every write here drops it from
this process's cache at once. So a revocation bites on the very next request of the
instance that made it, and of every other instance as soon as its feed
delivers the change (milliseconds). Without a watch (CLI, tests of the
store alone) every request reads the document.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from sync.couch import CouchDBClient
from sync.errors import DocumentConflict, DocumentNotFound
from sync.watch import DocWatch

__all__ = [
    'DeviceCredentials',
    'DeviceError',
    'DeviceIdentity',
    'DeviceNotAuthenticated',
    'Devices',
    'TOKEN_PREFIX',
]

#: Device bearer tokens start with this, so the auth middleware can route them.
TOKEN_PREFIX = 'dev.'

_DEVICE_ID = re.compile(r'd-[0-9a-f]{32}')
_SECRET = re.compile(r'[A-Za-z0-9_-]{43}')


class DeviceError(Exception):
    """A refused device operation, safe to show to the client.

    Attributes:
        status: HTTP status the boundary maps it to.
        code: Stable token.
        description: One sentence, never a secret.
    """

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description


class DeviceNotAuthenticated(Exception):
    """Unknown, malformed, pending or revoked device credentials."""


class DeviceRevoked(DeviceNotAuthenticated):
    """The right secret of a revoked device: it must wipe itself.

    Raised only for the secret the device held when it was revoked, so a
    guesser learns nothing about a device's status.
    """


@dataclasses.dataclass(frozen=True)
class DeviceIdentity:
    """An authenticated device.

    Attributes:
        device_id: The device's id.
        worker: User name of the worker the device belongs to.
    """

    device_id: str
    worker: str


@dataclasses.dataclass(frozen=True)
class DeviceCredentials:
    """What a device receives once, at enrollment.

    Attributes:
        device_id: Basic-auth user name of the device.
        secret: Basic-auth password of the device.
        token: Bearer token (``dev.<id>.<secret>``), the same secret.
        worker: The worker the device belongs to.
    """

    device_id: str
    secret: str
    token: str
    worker: str


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _public_device(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        'device_id': doc['device_id'],
        'worker': doc['worker'],
        'label': doc.get('label'),
        'status': doc['status'],
        'created_at': doc.get('created_at'),
        'enrolled_at': doc.get('enrolled_at'),
        'revoked_at': doc.get('revoked_at'),
    }


class Devices:
    """Device lifecycle over the directory and config databases.

    Args:
        couch: CouchDB client.
        directory_db: Physical name of the directory database.
        config_db: Physical name of the config database.
        enrollment_ttl: Seconds an enrollment code lives.
        clock: Injected time source (seconds since the epoch).
        secret_factory: Injected source of 256-bit secrets and codes.
        watch: Cache of ``device:`` documents kept fresh by the directory's
            change feed; None reads CouchDB on every authentication.
    """

    def __init__(
        self,
        couch: CouchDBClient,
        directory_db: str,
        config_db: str,
        *,
        enrollment_ttl: int = 900,
        clock: Callable[[], float] = time.time,
        secret_factory: Callable[[], str] = lambda: secrets.token_urlsafe(32),
        watch: DocWatch | None = None,
    ) -> None:
        self._couch = couch
        self._watch = watch
        self._directory = directory_db
        self._config = config_db
        self._ttl = enrollment_ttl
        self._clock = clock
        self._new_secret = secret_factory

    # -- admin operations -------------------------------------------------

    def register(self, worker: str, *, label: str | None = None) -> dict[str, Any]:
        """Register a device for a worker and return its one-time code.

        Returns:
            ``{"device_id", "worker", "enrollment_code", "expires_at"}``.
        """
        now = int(self._clock())
        device_id = f'd-{uuid.uuid4().hex}'
        code = self._new_secret()
        self._couch.put(self._directory, {
            '_id': f'device:{device_id}', 'type': 'device', 'device_id': device_id,
            'worker': worker, 'label': label, 'status': 'pending', 'created_at': now,
        })
        self._forget(device_id)
        expires_at = now + self._ttl
        self._couch.put(self._directory, {
            '_id': f'enroll:{_sha256(code)}', 'type': 'enrollment',
            'device_id': device_id, 'expires_at': expires_at,
        })
        return {'device_id': device_id, 'worker': worker, 'enrollment_code': code,
                'expires_at': expires_at}

    def get(self, device_id: str) -> dict[str, Any]:
        """Return a device's public view.

        Raises:
            DeviceError: No such device (404).
        """
        return _public_device(self._device_doc(device_id))

    def list(self) -> list[dict[str, Any]]:
        """Return every device's public view."""
        return [_public_device(doc) for doc in self._couch.iter_prefix(self._directory, 'device:')]

    def revoke(self, device_id: str) -> dict[str, Any]:
        """Revoke a device at once and tell it to wipe.

        The device document changes first, so the next request fails even if
        writing the device-control document fails afterwards.
        """
        for _attempt in range(5):
            doc = self._device_doc(device_id)
            doc['status'] = 'revoked'
            doc['revoked_at'] = doc.get('revoked_at') or int(self._clock())
            # Kept under another name: the revoked tablet's next request is
            # recognised as that tablet's, and told to wipe, never let in.
            revoked_hash = doc.pop('secret_sha256', None)
            if revoked_hash:
                doc['revoked_secret_sha256'] = revoked_hash
            try:
                self._couch.put(self._directory, doc)
                break
            except DocumentConflict:
                continue
            finally:
                # Whatever happened to the write, this instance re-reads the
                # device on its next request.
                self._forget(device_id)
        else:
            raise DeviceError(409, 'conflict', 'The device changed concurrently; retry.')
        control_id = f'device-control:{device_id}'
        control = self._couch.get_or_none(self._config, control_id) or {'_id': control_id}
        control.update({'type': 'device_control', 'device': device_id, 'action': 'wipe',
                        'revoked_at': doc['revoked_at']})
        self._couch.put(self._config, control)
        return _public_device(doc)

    def _device_doc(self, device_id: str) -> dict[str, Any]:
        doc = None
        if _DEVICE_ID.fullmatch(device_id or ''):
            doc = self._couch.get_or_none(self._directory, f'device:{device_id}')
        if doc is None:
            raise DeviceError(404, 'device_not_found', 'No such device.')
        return doc

    # -- the device itself --------------------------------------------------

    def enroll(self, code: str) -> DeviceCredentials:
        """Exchange a one-time enrollment code for device credentials.

        Raises:
            DeviceError: Unknown, used or expired code (all look the same).
        """
        refused = DeviceError(401, 'enrollment_refused',
                              'The enrollment code is unknown, used or expired.')
        if not isinstance(code, str) or not _SECRET.fullmatch(code):
            raise refused
        enroll_id = f'enroll:{_sha256(code)}'
        pending = self._couch.get_or_none(self._directory, enroll_id)
        if pending is None:
            raise refused
        try:
            # Deleting first makes the code single-use even under a race: only
            # one request can delete this revision.
            self._couch.delete(self._directory, enroll_id, pending['_rev'])
        except (DocumentConflict, DocumentNotFound):
            raise refused from None
        if pending['expires_at'] <= self._clock():
            raise refused
        doc = self._couch.get_or_none(self._directory, f'device:{pending["device_id"]}')
        if doc is None or doc['status'] != 'pending':
            raise refused
        secret = self._new_secret()
        doc.update({'status': 'active', 'secret_sha256': _sha256(secret),
                    'enrolled_at': int(self._clock())})
        self._couch.put(self._directory, doc)
        self._forget(doc['device_id'])
        return DeviceCredentials(device_id=doc['device_id'], secret=secret,
                                 token=f'{TOKEN_PREFIX}{doc["device_id"]}.{secret}',
                                 worker=doc['worker'])

    def _forget(self, device_id: str) -> None:
        if self._watch is not None:
            self._watch.forget(f'device:{device_id}')

    def _read_device(self, device_id: str) -> dict[str, Any] | None:
        return self._read_directory(f'device:{device_id}')

    def _read_directory(self, doc_id: str) -> dict[str, Any] | None:
        if self._watch is not None:
            return self._watch.get(doc_id)
        return self._couch.get_or_none(self._directory, doc_id)

    def authenticate_basic(self, device_id: str, secret: str) -> DeviceIdentity:
        """Return the identity of a device id and secret.

        The device document and its worker's user document come from the
        watch when there is one (see the module docstring), otherwise from
        one GET each.

        Raises:
            DeviceNotAuthenticated: Wrong, pending or revoked credentials
                (``DeviceRevoked`` for the secret of a revoked device), or a
                worker who is disabled, gone or no longer a worker.
        """
        if not _DEVICE_ID.fullmatch(device_id or '') or not _SECRET.fullmatch(secret or ''):
            raise DeviceNotAuthenticated()
        doc = self._read_device(device_id)
        if (doc is not None and doc.get('status') == 'revoked'
                and hmac.compare_digest(doc.get('revoked_secret_sha256', ''), _sha256(secret))):
            raise DeviceRevoked()
        if doc is None or doc.get('status') != 'active':
            raise DeviceNotAuthenticated()
        if not hmac.compare_digest(doc.get('secret_sha256', ''), _sha256(secret)):
            raise DeviceNotAuthenticated()
        # A device syncs for its worker only while the worker may: disabling
        # the user (or taking the worker role away) stops every device of theirs.
        user = self._read_directory(f'user:{doc["worker"]}')
        if user is None or user.get('disabled') or 'worker' not in user.get('roles', ()):
            raise DeviceNotAuthenticated()
        return DeviceIdentity(device_id=device_id, worker=doc['worker'])

    def authenticate_token(self, token: str) -> DeviceIdentity:
        """Return the identity of a ``dev.<id>.<secret>`` bearer token.

        Raises:
            DeviceNotAuthenticated: Malformed, wrong or revoked token.
        """
        if not token.startswith(TOKEN_PREFIX):
            raise DeviceNotAuthenticated()
        device_id, _, secret = token[len(TOKEN_PREFIX):].partition('.')
        return self.authenticate_basic(device_id, secret)
