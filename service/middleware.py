"""Middleware: request ids and access log, authentication and roles, CORS,
and a JSON media handler that refuses oversized, deep or malformed bodies."""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import falcon
import falcon.media

from service.accounts import Forbidden, NotAuthenticated, Principal
from service.errors import ApiError
from service.logs import request_id_var

__all__ = [
    'AccessLogMiddleware',
    'AuthMiddleware',
    'CORSMiddleware',
    'DeviceShareMiddleware',
    'SafeJSONHandler',
    'has_lone_surrogate',
    'json_depth',
]

access_log = logging.getLogger('fieldvault.access')

_REQUEST_ID = re.compile(r'[A-Za-z0-9._-]{8,64}')


class AccessLogMiddleware:
    """Give every request an id and log one line when it ends.

    The line has the method, the route template (never the raw path or query,
    which may carry ids or values), the status, the duration and the principal.
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        supplied = req.get_header('X-Request-Id') or ''
        request_id = supplied if _REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
        req.context.request_id = request_id
        req.context.started = time.perf_counter()
        request_id_var.set(request_id)
        resp.set_header('X-Request-Id', request_id)

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        principal = getattr(req.context, 'principal', None)
        access_log.info('request', extra={
            'event': 'http_request',
            'method': req.method,
            'route': req.uri_template or '(unrouted)',
            'status': int(str(resp.status).split()[0]) if resp.status else 0,
            'ms': round((time.perf_counter() - req.context.started) * 1000, 2)
            if hasattr(req.context, 'started') else None,
            'principal': f'{principal.kind}:{principal.id}' if principal else None,
        })
        request_id_var.set(None)


def _parse_basic(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value, validate=True).decode('utf-8')
    except (ValueError, UnicodeDecodeError):
        return None
    user, sep, secret = decoded.partition(':')
    return (user, secret) if sep else None


class AuthMiddleware:
    """Authenticate and authorize every request before its responder runs.

    A resource declares who may call it with ``auth = {'GET': ROLES, ...}``, a
    mapping from method to the roles allowed, or the string ``'public'`` for a
    method anyone may call. A method missing from ``auth`` is refused, so a new
    responder is closed until someone decides who may use it.

    Bearer tokens are user sessions or device tokens; HTTP Basic carries a
    device id and secret (PouchDB and the CouchDB replicator send it).

    Args:
        user_auth: Resolves a bearer token to a user principal.
        device_auth: Resolves (device id, secret) or a device token to a
            device principal, or None when devices are not enabled.
    """

    def __init__(
        self,
        user_auth: Callable[[str], Principal],
        device_auth: Any = None,
    ) -> None:
        self._user_auth = user_auth
        self._device_auth = device_auth

    def process_resource(self, req, resp, resource, params) -> None:
        if resource is None or req.method == 'OPTIONS':
            return
        rules = getattr(resource, 'auth', None)
        if rules is None:
            return
        allowed = rules.get(req.method)
        if allowed is None and not hasattr(resource, f'on_{req.method.lower()}'):
            return  # Falcon answers 405 for a method the resource does not serve.
        if allowed == 'public':
            return
        principal = self.authenticate(req)
        req.context.principal = principal
        if allowed is None or not principal.has_any(allowed):
            raise Forbidden()

    def authenticate(self, req: falcon.Request) -> Principal:
        """Return the principal of the request's credentials.

        Raises:
            NotAuthenticated: Missing, malformed or refused credentials.
        """
        header = req.get_header('Authorization') or ''
        scheme, _, value = header.partition(' ')
        scheme = scheme.lower()
        value = value.strip()
        if scheme == 'bearer' and value:
            if self._device_auth is not None and value.startswith('dev.'):
                return self._device_auth.authenticate_token(value)
            return self._user_auth(value)
        if scheme == 'basic' and value and self._device_auth is not None:
            parsed = _parse_basic(value)
            if parsed:
                return self._device_auth.authenticate_basic(*parsed)
        raise NotAuthenticated()


class _ReleasingStream:
    """A streamed response body that calls ``release`` once it is closed.

    The WSGI server closes the body when it is written or the client went
    away, which is when a streamed request stops holding its thread.
    """

    def __init__(self, stream: Iterable[bytes], release: Callable[[], None]) -> None:
        self._stream = stream
        self._iterator = iter(stream)
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> '_ReleasingStream':
        return self

    def __next__(self) -> bytes:
        return next(self._iterator)

    def close(self) -> None:
        try:
            close = getattr(self._stream, 'close', None)
            if close is not None:
                close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class DeviceShareMiddleware:
    """Bound how many requests one device has in flight at once (per process).

    A device's live sync needs a few concurrent requests (a long-poll per
    database, a push, a fetch); more than ``max_concurrent`` get 429 with
    ``Retry-After``, so one device cannot hold the threads every other
    device and the staff need. A slot is held until the response is
    complete: for a streamed long-poll, until its body is closed. Runs after
    :class:`AuthMiddleware` (it counts authenticated devices only).

    Args:
        max_concurrent: Requests one device may have in flight.
        retry_after: Seconds sent in ``Retry-After``.
    """

    def __init__(self, max_concurrent: int, retry_after: int = 1) -> None:
        self._max = max_concurrent
        self._retry_after = retry_after
        self._lock = threading.Lock()
        self._active: dict[str, int] = {}

    def process_resource(self, req, resp, resource, params) -> None:
        principal = getattr(req.context, 'principal', None)
        if principal is None or principal.kind != 'device':
            return
        with self._lock:
            active = self._active.get(principal.id, 0)
            if active >= self._max:
                raise ApiError(429, 'too_many_requests',
                               'This device has too many requests in flight; retry later.',
                               headers={'Retry-After': str(self._retry_after)})
            self._active[principal.id] = active + 1
        req.context.device_slot = principal.id

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        device = getattr(req.context, 'device_slot', None)
        if device is None:
            return
        req.context.device_slot = None
        stream = resp.stream
        if stream is not None and not hasattr(stream, 'read') and req.method != 'HEAD':
            resp.stream = _ReleasingStream(stream, lambda: self._release(device))
        else:
            self._release(device)

    def _release(self, device: str) -> None:
        with self._lock:
            left = self._active.get(device, 0) - 1
            if left > 0:
                self._active[device] = left
            else:
                self._active.pop(device, None)

    def in_flight(self, device: str) -> int:
        """Return the requests of ``device`` in flight now."""
        with self._lock:
            return self._active.get(device, 0)


class CORSMiddleware:
    """Answer CORS for the configured origins, on the routes the tablet app calls.

    A tablet app served by a separate static host (docs/TABLET.md) calls
    ``POST /devices/enroll`` and ``/sync/...`` only; every other route answers
    without CORS headers, so no page of another origin reads it. PouchDB sends
    its requests with ``credentials: 'include'``, so a configured origin is
    allowed credentials too.

    Falcon's ``falcon.CORSMiddleware`` would widen this: it answers on every
    route, allows whatever request headers a preflight names (here the four
    the app sends), lets a browser reuse a preflight for a day (here ten
    minutes, so an origin taken out of the configuration stops soon) and sets
    no ``Vary: Origin`` although the answer depends on the origin.
    """

    def __init__(self, origins: Iterable[str]) -> None:
        self._origins = frozenset(origins)

    @staticmethod
    def _tablet_route(path: str) -> bool:
        return path == '/devices/enroll' or path == '/sync' or path.startswith('/sync/')

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        origin = req.get_header('Origin')
        if not origin or origin not in self._origins or not self._tablet_route(req.path):
            return
        resp.set_header('Access-Control-Allow-Origin', origin)
        resp.set_header('Vary', 'Origin')
        resp.set_header('Access-Control-Allow-Credentials', 'true')
        if req.method == 'OPTIONS' and req.get_header('Access-Control-Request-Method'):
            resp.status = falcon.HTTP_200
            resp.set_header('Access-Control-Allow-Methods',
                            'GET, HEAD, POST, PUT, DELETE, OPTIONS')
            resp.set_header('Access-Control-Allow-Headers',
                            'Authorization, Content-Type, Accept, X-Request-Id')
            resp.set_header('Access-Control-Max-Age', '600')


_CONTAINERS = (dict, list)


#: A JSON escape of a UTF-16 surrogate. Raw UTF-8 cannot carry one (the
#: decoder refuses it), so a body without this pattern holds none and the
#: walk below is skipped.
_SURROGATE_ESCAPE = re.compile(r'\\u[dD][89a-fA-F][0-9a-fA-F]{2}')


def has_lone_surrogate(value: Any) -> bool:
    """Return True when a parsed JSON value holds a lone surrogate in any string or key.

    A lone surrogate is no Unicode character: it cannot be encoded as
    UTF-8, so it breaks hashing, storage and every later answer that
    carries it. Paired surrogates were joined by the parser and pass.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is str:
            try:
                item.encode('utf-8')
            except UnicodeEncodeError:
                return True
        elif type(item) is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
    return False


def json_depth(value: Any, limit: int) -> int:
    """Return the nesting depth of a parsed JSON value, stopping past ``limit``.

    A scalar is depth 1 and a non-empty container is one deeper than its
    deepest child. The walk goes one level at a time and only descends into
    containers, so the scalars of a large push batch (the bulk of it) cost a
    type check each, nothing more.
    """
    deepest = 1
    level = [value] if type(value) in _CONTAINERS else []
    depth = 1
    while level:
        if any(level):  # a non-empty container here has children one deeper
            deepest = depth + 1
            if deepest > limit:
                return deepest
        level = [child for item in level
                 for child in (item.values() if type(item) is dict else item)
                 if type(child) in _CONTAINERS]
        depth += 1
    return deepest


class _NonFinite(ValueError):
    """A JSON number Python would read as NaN or an infinity."""


def _refuse_constant(name: str) -> float:
    raise _NonFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise _NonFinite(text)
    return value


def _finite_int(text: str) -> int:
    value = int(text)
    if len(text) > 308:  # only a literal this long can be beyond a double's range
        try:
            float(value)
        except OverflowError:
            raise _NonFinite(text) from None
    return value


class SafeJSONHandler(falcon.media.BaseHandler):
    """JSON media handler with a size cap, a depth cap, strict UTF-8 and finite numbers.

    Args:
        max_bytes: Largest body accepted (413 beyond).
        max_depth: Deepest nesting accepted (400 beyond).
    """

    def __init__(self, max_bytes: int, max_depth: int) -> None:
        self._max_bytes = max_bytes
        self._max_depth = max_depth

    def deserialize(self, stream, content_type, content_length):
        if content_length is not None and content_length > self._max_bytes:
            raise ApiError(413, 'body_too_large',
                           f'The request body is larger than {self._max_bytes} bytes.')
        data = stream.read(self._max_bytes + 1)
        if len(data) > self._max_bytes:
            raise ApiError(413, 'body_too_large',
                           f'The request body is larger than {self._max_bytes} bytes.')
        if not data:
            raise ApiError(400, 'empty_body', 'A JSON body is required.')
        try:
            text = data.decode('utf-8')
        except UnicodeDecodeError:
            raise ApiError(400, 'invalid_utf8', 'The body is not valid UTF-8.') from None
        try:
            # NaN, Infinity and out-of-range numbers (1e999) are not JSON
            # (RFC 8259); Python reads them, and a database would refuse them.
            value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                               parse_int=_finite_int)
        except RecursionError:
            raise ApiError(400, 'too_deep', 'The JSON body is nested too deeply.') from None
        except _NonFinite:
            raise ApiError(400, 'non_finite_number',
                           'The body holds a number JSON cannot carry (NaN, Infinity or out of '
                           'range).') from None
        except ValueError:
            raise ApiError(400, 'malformed_json', 'The body is not valid JSON.') from None
        if json_depth(value, self._max_depth) > self._max_depth:
            raise ApiError(400, 'too_deep',
                           f'The JSON body is nested deeper than {self._max_depth} levels.')
        if _SURROGATE_ESCAPE.search(text) and has_lone_surrogate(value):
            raise ApiError(400, 'invalid_unicode',
                           'The body holds a lone UTF-16 surrogate, which is no character.')
        return value

    def serialize(self, media, content_type) -> bytes:
        text = json.dumps(media, ensure_ascii=False, separators=(',', ':'))
        try:
            return text.encode('utf-8')
        except UnicodeEncodeError:
            # A stored value with a lone surrogate (written before bodies were
            # checked for them) has no UTF-8 form; JSON escapes it instead,
            # so one bad document cannot break a listing.
            return json.dumps(media, ensure_ascii=True, separators=(',', ':')).encode('ascii')
