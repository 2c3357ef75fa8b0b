"""Serve an app over real HTTP on loopback from a thread (wsgiref), so the
CLI and other HTTP clients can talk to it in functional tests."""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from socketserver import ThreadingMixIn


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # Tests send bursts of parallel requests; the default backlog of 5 would
    # reset connections before the app sees them.
    request_queue_size = 128


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # the app logs its own access lines
        pass


class LiveServer:
    """A WSGI app served on ``127.0.0.1`` until ``stop()``."""

    def __init__(self, app) -> None:
        self._server = make_server('127.0.0.1', 0, app, server_class=_ThreadingServer,
                                   handler_class=_QuietHandler)
        self.url = f'http://127.0.0.1:{self._server.server_port}'
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
