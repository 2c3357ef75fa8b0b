"""Liveness and readiness probes."""

from __future__ import annotations

import falcon

from sync.couch import CouchDBClient
from sync.errors import SyncError


class HealthResource:
    """``GET /healthz``: the process is up. Touches nothing else."""

    auth = {'GET': 'public', 'HEAD': 'public'}

    def on_get(self, req, resp):
        resp.media = {'status': 'ok'}

    on_head = on_get


class ReadyResource:
    """``GET /readyz``: CouchDB answers and every database exists.

    Args:
        couch: CouchDB client.
        databases: Physical names of the databases that must exist.
        retry_after: Seconds to advertise with a 503.
    """

    auth = {'GET': 'public'}

    def __init__(self, couch: CouchDBClient, databases: list[str], retry_after: int) -> None:
        self._couch = couch
        self._databases = databases
        self._retry_after = retry_after

    def on_get(self, req, resp):
        missing = []
        try:
            for db in self._databases:
                if not self._couch.db_exists(db):
                    missing.append(db)
        except SyncError:
            self._unready(resp, 'The database server is unreachable.')
            return
        if missing:
            self._unready(resp, f'Databases missing: {", ".join(missing)}.')
            return
        resp.media = {'status': 'ready', 'databases': len(self._databases)}

    def _unready(self, resp, reason: str) -> None:
        resp.status = falcon.HTTP_503
        resp.set_header('Retry-After', str(self._retry_after))
        resp.media = {'code': 'not_ready', 'title': '503 Service Unavailable',
                      'description': reason}
