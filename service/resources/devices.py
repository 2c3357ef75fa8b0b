"""Device registration (admins), enrollment (public, one-time code) and
revocation, plus the adapter the auth middleware calls for device
credentials."""

from __future__ import annotations

from typing import Any

from service.accounts import Principal
from service.audit import AuditLog
from service.errors import ApiError
from service.openapi_bodies import DeviceCreateBody, EnrollBody, load_body
from service.resources import ADMIN
from service.throttle import Throttle, Throttled
from sync.couch import CouchDBClient
from sync.devices import DeviceError, DeviceNotAuthenticated, DeviceRevoked, Devices

__all__ = ['DeviceAuthenticator', 'DeviceResource', 'DeviceRevokeResource', 'DevicesResource',
           'EnrollResource']



def _device_error(ex: DeviceError) -> ApiError:
    return ApiError(ex.status, ex.code, ex.description)


class DeviceAuthenticator:
    """Turn device credentials into a principal for the auth middleware.

    A refusal is a 401 whose CouchDB ``error`` is ``unauthorized``: PouchDB
    stops a replication for good on exactly that name (and retries forever on
    any other), which is what a revoked device must see.

    Args:
        devices: The device store.
    """

    def __init__(self, devices: Devices) -> None:
        self._devices = devices

    @staticmethod
    def _refused(ex: DeviceNotAuthenticated | None = None) -> ApiError:
        if isinstance(ex, DeviceRevoked):
            # Still CouchDB's "unauthorized" (the replication stops); the code
            # tells the tablet app to destroy its data and credentials.
            return ApiError(401, 'device_revoked',
                            'This device was revoked; it must delete its data.',
                            headers={'WWW-Authenticate': 'Bearer realm="fieldvault"'})
        return ApiError(401, 'unauthorized', 'Valid device credentials are required.',
                        headers={'WWW-Authenticate': 'Bearer realm="fieldvault"'})

    @staticmethod
    def _principal(identity) -> Principal:
        return Principal(kind='device', id=identity.device_id, roles=('device',),
                         worker=identity.worker)

    def authenticate_token(self, token: str) -> Principal:
        """Return the principal of a ``dev.`` bearer token."""
        try:
            return self._principal(self._devices.authenticate_token(token))
        except DeviceNotAuthenticated as ex:
            raise self._refused(ex) from None

    def authenticate_basic(self, device_id: str, secret: str) -> Principal:
        """Return the principal of HTTP Basic device credentials."""
        try:
            return self._principal(self._devices.authenticate_basic(device_id, secret))
        except DeviceNotAuthenticated as ex:
            raise self._refused(ex) from None


class DevicesResource:
    """``POST /devices`` registers a device for a worker; ``GET`` lists devices."""

    auth = {'GET': ADMIN, 'POST': ADMIN}

    def __init__(self, devices: Devices, audit: AuditLog, worker_exists) -> None:
        self._devices = devices
        self._audit = audit
        self._worker_exists = worker_exists

    def on_get(self, req, resp):
        resp.media = {'devices': self._devices.list()}

    def on_post(self, req, resp):
        body = load_body(req, DeviceCreateBody)
        worker = body['worker']
        label = body.get('label')
        if not self._worker_exists(worker):
            raise ApiError(422, 'validation_failed', 'The request body is not valid.',
                           fields={'worker': ['Must name an existing user with the worker role.']})
        registered = self._devices.register(worker, label=label)
        self._audit.record('device_registered', actor=f'user:{req.context.principal.id}',
                           subject=f'device:{registered["device_id"]}',
                           details={'worker': worker})
        resp.status = 201
        resp.location = f'/devices/{registered["device_id"]}'
        resp.media = registered


class DeviceResource:
    """``GET /devices/{device_id}`` shows a device."""

    auth = {'GET': ADMIN}

    def __init__(self, devices: Devices) -> None:
        self._devices = devices

    def on_get(self, req, resp, device_id):
        try:
            resp.media = self._devices.get(device_id)
        except DeviceError as ex:
            raise _device_error(ex) from None


class DeviceRevokeResource:
    """``POST /devices/{device_id}/revoke`` revokes a device at once."""

    auth = {'POST': ADMIN}

    def __init__(self, devices: Devices, audit: AuditLog) -> None:
        self._devices = devices
        self._audit = audit

    def on_post(self, req, resp, device_id):
        try:
            device = self._devices.revoke(device_id)
        except DeviceError as ex:
            raise _device_error(ex) from None
        self._audit.record('device_revoked', actor=f'user:{req.context.principal.id}',
                           subject=f'device:{device_id}', details={'worker': device['worker']})
        resp.media = device


class EnrollResource:
    """``POST /devices/enroll``: exchange a one-time code for credentials.

    Every attempt is counted per client address before the code is looked
    up (``service/throttle.py``), so a burst of guesses from one address is
    refused with 429 and ``Retry-After`` however many arrive at once. A
    successful enrollment forgets the address's attempts: a site enrolling
    many tablets through one gateway is never slowed down by its own
    successes.
    """

    auth = {'POST': 'public'}

    def __init__(self, devices: Devices, audit: AuditLog, couch: CouchDBClient,
                 config_db: str, *, throttle: Throttle | None = None) -> None:
        self._devices = devices
        self._audit = audit
        self._couch = couch
        self._config_db = config_db
        self._throttle = throttle

    def _signing_key(self) -> Any:
        # The org signer pinned by `fieldvault admin init-signer` (resources/keys.py).
        doc = self._couch.get_or_none(self._config_db, 'org-signer')
        return doc['public'] if doc else None

    def on_post(self, req, resp):
        body = load_body(req, EnrollBody)
        source = req.remote_addr or 'unknown'
        if self._throttle is not None:
            try:
                self._throttle.reserve(source)
            except Throttled as ex:
                raise ApiError(429, 'enrollment_throttled',
                               'Too many enrollment attempts; try again later.',
                               headers={'Retry-After': str(ex.retry_after)}) from None
        try:
            credentials = self._devices.enroll(body['code'])
        except DeviceError as ex:
            raise _device_error(ex) from None
        if self._throttle is not None:
            self._throttle.reset(source)
        self._audit.record('device_enrolled', actor=f'device:{credentials.device_id}',
                           subject=f'device:{credentials.device_id}',
                           details={'worker': credentials.worker})
        resp.status = 201
        resp.media = {
            'device_id': credentials.device_id,
            'secret': credentials.secret,
            'token': credentials.token,
            'worker': credentials.worker,
            'manifest_signing_key': self._signing_key(),
            'sync_url': f'{req.forwarded_prefix}/sync/',
        }
