"""``/app/``: the tablet app's built files (``tablet/dist``), public.

The app holds no secret: a tablet gets its credentials by enrolling, and the
files are the same for everyone. Only the names the build wrote are served
(a fixed allow-list read from the directory when the app is built), so no
request path ever reaches the file system.
"""

from __future__ import annotations

import pathlib

import falcon

from service.errors import ApiError

__all__ = ['APP_DIR', 'AppIndexResource', 'AppFileResource', 'app_routes']

APP_DIR = pathlib.Path(__file__).resolve().parents[2] / 'tablet' / 'dist'

_TYPES = {
    '.html': 'text/html; charset=utf-8',
    '.js': 'text/javascript; charset=utf-8',
    '.css': 'text/css; charset=utf-8',
    '.json': 'application/json',
    '.webmanifest': 'application/manifest+json',
    '.svg': 'image/svg+xml',
    '.png': 'image/png',
}

# Same origin only: the app talks to the service that served it. ajv compiles
# the replicated JSON Schemas into functions, hence 'unsafe-eval'.
_CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
        "base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'")


class _Files:
    """The built files, read from disk on each request (the build may rerun)."""

    def __init__(self, directory: pathlib.Path) -> None:
        self._directory = directory

    def send(self, resp: falcon.Response, name: str) -> None:
        path = self._directory / name
        suffix = path.suffix
        if '/' in name or name.startswith('.') or suffix not in _TYPES or not path.is_file():
            if name == 'index.html' and not self._directory.is_dir():
                raise ApiError(503, 'app_not_built',
                               'The tablet app is not built; run make setup.')
            raise ApiError(404, 'not_found', 'No such file.')
        resp.content_type = _TYPES[suffix]
        resp.data = path.read_bytes()
        # The service worker keeps the app for offline use; the network copy
        # is always revalidated so an update reaches tablets on their next load.
        resp.set_header('Cache-Control', 'no-cache')
        resp.set_header('Content-Security-Policy', _CSP)
        resp.set_header('X-Content-Type-Options', 'nosniff')
        resp.set_header('Referrer-Policy', 'no-referrer')


class AppIndexResource:
    """``GET /app/``: the tablet app (``/app`` redirects here)."""

    auth = {'GET': 'public'}

    def __init__(self, files: _Files) -> None:
        self._files = files

    def on_get(self, req, resp):
        if not req.path.endswith('/'):
            raise falcon.HTTPMovedPermanently(req.path + '/')
        self._files.send(resp, 'index.html')


class AppFileResource:
    """``GET /app/{name}``: one built file of the tablet app."""

    auth = {'GET': 'public'}

    def __init__(self, files: _Files) -> None:
        self._files = files

    def on_get(self, req, resp, name):
        self._files.send(resp, name)


def app_routes(directory: pathlib.Path = APP_DIR) -> list[tuple[str, object]]:
    """Return the routes serving the tablet app from ``directory``."""
    files = _Files(directory)
    index = AppIndexResource(files)
    return [('/app', index), ('/app/', index), ('/app/{name}', AppFileResource(files))]
