"""The desk's local web app: the page, and a small JSON API behind a per-run secret.

Served only on 127.0.0.1. Every request needs the secret of this run: the
URL printed at start carries it once (``/?token=...``); the desk answers
with a cookie named after its port and sends the browser on to ``/``
without it. A request with neither the cookie nor an ``X-Desk-Token``
header, from another origin, or to another host name, is refused with 403.
"""

from __future__ import annotations

import hmac
import importlib.resources
import secrets
import threading
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import falcon

from fieldvault_client.desk.render import LANGUAGES
from fieldvault_client.desk.session import DeskError, DeskSession

__all__ = ['DeskServer', 'create_desk_app']

_STATIC = {'desk.js': 'text/javascript; charset=utf-8', 'desk.css': 'text/css; charset=utf-8'}
_HEADERS = {
    # The page runs only the desk's own script: no inline code, no other origin.
    'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Cross-Origin-Opener-Policy': 'same-origin',
}


def _static(name: str) -> bytes:
    return importlib.resources.files('fieldvault_client.desk').joinpath(
        'static', name).read_bytes()


class _Guard:
    """Refuse every request without this run's secret, from elsewhere, or when idle."""

    def __init__(self, secret: str, port_of: Any, session: DeskSession) -> None:
        self._secret = secret
        self._port_of = port_of
        self._session = session

    @property
    def cookie_name(self) -> str:
        return f'fieldvault_desk_{self._port_of()}'

    def _valid(self, value: str | None) -> bool:
        if not value:
            return False
        return hmac.compare_digest(value.encode(), self._secret.encode())

    def process_request(self, req, resp):
        port = self._port_of()
        # APPSEC: a DNS-rebinding page reaches 127.0.0.1 under its own host name.
        if req.host not in ('127.0.0.1', 'localhost') or req.port != port:
            raise _refuse('wrong_host', 'This desk answers on 127.0.0.1 only.')
        origin = req.get_header('Origin')
        if origin is not None and origin not in (f'http://127.0.0.1:{port}',
                                                 f'http://localhost:{port}'):
            raise _refuse('foreign_origin', 'Requests from other sites are refused.')
        if req.get_header('Sec-Fetch-Site') == 'cross-site':
            raise _refuse('foreign_origin', 'Requests from other sites are refused.')
        if req.path == '/' and req.method == 'GET' and self._valid(req.get_param('token')):
            resp.set_cookie(self.cookie_name, self._secret, path='/', secure=False,
                            http_only=True, same_site='Strict')
            raise falcon.HTTPSeeOther('/')
        cookie = (req.get_cookie_values(self.cookie_name) or [None])[0]
        if not (self._valid(cookie) or self._valid(req.get_header('X-Desk-Token'))):
            raise _refuse('secret_required', 'Open the desk with the address it printed when '
                                             'it started (it carries this run\'s secret).')
        self._session.lock_if_idle()
        # Polling the lock state is not activity: it must not keep the key alive.
        if req.path.startswith('/api/') and req.path != '/api/state':
            self._session.touch()

    def process_response(self, req, resp, resource, req_succeeded):
        for name, value in _HEADERS.items():
            resp.set_header(name, value)


def _refuse(code: str, message: str) -> DeskError:
    return DeskError(403, code, message)


def _error_handler(req, resp, ex, params):
    resp.status = falcon.code_to_http_status(ex.status)
    resp.media = {'code': ex.code, 'message': ex.message}


def _http_error_handler(req, resp, ex, params):
    resp.status = ex.status
    for name, value in (ex.headers or {}).items():
        resp.set_header(name, value)
    resp.media = {'code': ex.code or 'error', 'message': ex.description or ex.title}


def _lang(req) -> str:
    lang = req.get_param('lang') or 'en'
    return lang if lang in LANGUAGES else 'en'


def _body(req) -> dict[str, Any]:
    body = req.get_media(default_when_empty={})
    if not isinstance(body, dict):
        raise DeskError(422, 'invalid_request', 'Send a JSON object.')
    return body


class _Page:
    def on_get(self, req, resp):
        resp.content_type = 'text/html; charset=utf-8'
        resp.data = _static('index.html')


class _Static:
    def on_get(self, req, resp, name):
        if name not in _STATIC:
            raise falcon.HTTPNotFound()
        resp.content_type = _STATIC[name]
        resp.data = _static(name)


class _State:
    def __init__(self, session: DeskSession) -> None:
        self._session = session

    def on_get(self, req, resp):
        resp.media = self._session.state()


class _Unlock:
    def __init__(self, session: DeskSession) -> None:
        self._session = session

    def on_post(self, req, resp):
        passphrase = _body(req).get('passphrase')
        if not isinstance(passphrase, str) or not passphrase:
            raise DeskError(422, 'passphrase_required', 'Type your key passphrase.')
        resp.media = self._session.unlock(passphrase)


class _Lock:
    def __init__(self, session: DeskSession) -> None:
        self._session = session

    def on_post(self, req, resp):
        self._session.lock()
        resp.media = self._session.state()


class _Proxy:
    """A read of the service's metadata (no plaintext, nothing to decrypt)."""

    def __init__(self, session: DeskSession, path: str, params: tuple[str, ...] = ()) -> None:
        self._session = session
        self._path = path
        self._params = params

    def on_get(self, req, resp, **ids):
        self._session.require_unlocked()
        path = self._path.format(**{key: quote(value, safe='') for key, value in ids.items()})
        query = {name: req.get_param(name) for name in self._params if req.get_param(name)}
        if query:
            path += '?' + '&'.join(f'{quote(k)}={quote(v, safe="")}' for k, v in query.items())
        resp.media = self._session.api.call('GET', path)


class _Open:
    def __init__(self, session: DeskSession) -> None:
        self._session = session

    def on_post(self, req, resp, record_id):
        body = _body(req)
        resp.media = self._session.open_record(record_id, body.get('purpose'), _lang(req))


class _Correct:
    def __init__(self, session: DeskSession) -> None:
        self._session = session

    def on_post(self, req, resp, record_id):
        values = _body(req).get('values')
        if not isinstance(values, dict):
            raise DeskError(422, 'invalid_correction', 'Send the corrected values.')
        resp.media = self._session.correct(record_id, values, _lang(req))


class _Revisions:
    def __init__(self, session: DeskSession) -> None:
        self._session = session

    def on_post(self, req, resp, record_id):
        body = _body(req)
        resp.media = {'revisions': self._session.revisions(record_id, body.get('purpose'),
                                                           _lang(req))}


class _Resolve:
    def __init__(self, session: DeskSession) -> None:
        self._session = session

    def on_post(self, req, resp, record_id):
        keep = _body(req).get('keep')
        if not isinstance(keep, str):
            raise DeskError(422, 'invalid_request', 'Choose the revision to keep.')
        resp.media = self._session.resolve(record_id, keep)


class _QuarantineAction:
    def __init__(self, session: DeskSession) -> None:
        self._session = session

    def on_post(self, req, resp, entry_id, action):
        self._session.require_unlocked()
        if action not in ('release', 'discard'):
            raise falcon.HTTPNotFound()
        path = f'/quarantine/{quote(entry_id, safe="")}'
        resp.media = self._session.api.call(*(('POST', path + '/release') if action == 'release'
                                               else ('DELETE', path)))


def create_desk_app(session: DeskSession, secret: str, port_of) -> falcon.App:
    """Build the desk's WSGI app.

    Args:
        session: The desk's key state.
        secret: This run's secret.
        port_of: Returns the port the desk listens on (known once bound).
    """
    app = falcon.App(middleware=[_Guard(secret, port_of, session)])
    app.add_error_handler(DeskError, _error_handler)
    app.add_error_handler(falcon.HTTPError, _http_error_handler)
    app.add_route('/', _Page())
    app.add_route('/static/{name}', _Static())
    app.add_route('/api/state', _State(session))
    app.add_route('/api/unlock', _Unlock(session))
    app.add_route('/api/lock', _Lock(session))
    app.add_route('/api/caseload', _Proxy(session, '/caseload', (
        'from', 'to', 'worker', 'type', 'result', 'conflicts', 'youth_code', 'limit', 'offset')))
    app.add_route('/api/quarantine', _Proxy(session, '/quarantine', ('rule', 'device')))
    app.add_route('/api/holders', _Proxy(session, '/keys/holders'))
    app.add_route('/api/records/{record_id}/audit', _Proxy(session, '/caseload/{record_id}/audit'))
    app.add_route('/api/records/{record_id}/open', _Open(session))
    app.add_route('/api/records/{record_id}/correct', _Correct(session))
    app.add_route('/api/records/{record_id}/revisions', _Revisions(session))
    app.add_route('/api/records/{record_id}/resolve', _Resolve(session))
    app.add_route('/api/quarantine/{entry_id}/{action}', _QuarantineAction(session))
    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        # The first request line carries the secret, and later ones record ids.
        pass


class DeskServer:
    """The desk on ``127.0.0.1:port`` (0 picks a free one) with a new secret.

    Args:
        session: The desk's key state.
        port: The port; 0 for any free one.
    """

    def __init__(self, session: DeskSession, port: int = 0) -> None:
        self.session = session
        self.secret = secrets.token_urlsafe(32)
        self._server = make_server('127.0.0.1', port,
                                   create_desk_app(session, self.secret, lambda: self.port),
                                   server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.port: int = self._server.server_port
        self._stop = threading.Event()
        self._background = False

    @property
    def url(self) -> str:
        """The address to open, with this run's secret."""
        return f'http://127.0.0.1:{self.port}/?token={self.secret}'

    @property
    def origin(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    def _watch_idle(self) -> None:
        # Lock on time even when no request comes (the page may be closed).
        while not self._stop.wait(1.0):
            self.session.lock_if_idle()

    def start(self) -> 'DeskServer':
        """Serve from background threads (tests); ``serve_forever`` blocks instead."""
        self._background = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        threading.Thread(target=self._watch_idle, daemon=True).start()
        return self

    def serve_forever(self) -> None:
        threading.Thread(target=self._watch_idle, daemon=True).start()
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._background:
            self._server.shutdown()
        self._server.server_close()
        self.session.close()

