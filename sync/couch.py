"""A thin CouchDB client over one pooled ``httpx.Client``.

Why not ``couchdb`` (CouchDB-Python) or ``cloudant``: both are unmaintained,
and the sync gateway needs full control of each request (timeouts per call,
long-polls, ``new_edits=false`` writes, the exact status codes). The client
speaks only the API subset that both Apache CouchDB 3 and pouchdb-server
serve; docs/ARCHITECTURE.md records the decision.

The transport is injected, so unit tests pass ``httpx.MockTransport``.
Connection failures and 5xx answers become ``DatabaseUnavailable``; other
error statuses become ``CouchDBError`` subclasses. Messages never carry bodies.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from sync.errors import (
    CouchDBError,
    DatabaseUnavailable,
    DocumentConflict,
    DocumentNotFound,
    PreconditionFailed,
)

__all__ = ['CouchDBClient', 'doc_path']

_STATUS_ERRORS: dict[int, type[CouchDBError]] = {
    404: DocumentNotFound,
    409: DocumentConflict,
    412: PreconditionFailed,
}


def doc_path(db: str, doc_id: str) -> str:
    """Return the URL path of a document, escaping its id as CouchDB expects."""
    for prefix in ('_design/', '_local/'):
        if doc_id.startswith(prefix):
            return f'/{quote(db, safe="")}/{prefix}{quote(doc_id[len(prefix):], safe="")}'
    return f'/{quote(db, safe="")}/{quote(doc_id, safe="")}'


def _json_param(value: Any) -> str:
    return json.dumps(value, separators=(',', ':'))


def _object(response: httpx.Response) -> dict[str, Any]:
    """Return a JSON object answer (what CouchDB sends on every path that answers one)."""
    body: dict[str, Any] = response.json()
    return body


def _array(response: httpx.Response) -> list[dict[str, Any]]:
    """Return a JSON array answer (``_bulk_docs``, ``open_revs``)."""
    body: list[dict[str, Any]] = response.json()
    return body


#: Heartbeat asked of upstream long-polls: longer than any wait, so none is sent.
_HEARTBEAT_MS = 60_000


class CouchDBClient:
    """Client of one CouchDB server.

    Args:
        base_url: Server URL, such as ``http://127.0.0.1:5984``.
        user: Admin user name, when the server requires one.
        password: Admin password.
        timeout: Seconds for an ordinary request.
        transport: Injected ``httpx`` transport (tests).
        max_connections: Size of the connection pool: room for the requests
            in flight and every long-poll held open at once.
        max_in_flight: Most requests other than long-polls in flight at
            once; more wait their turn here. None: only the pool bounds them.
    """

    def __init__(
        self,
        base_url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 32,
        max_in_flight: int | None = None,
    ) -> None:
        auth = httpx.BasicAuth(user, password or '') if user else None
        self.base_url = base_url.rstrip('/')
        self.timeout = timeout
        # httpcore walks every pooled connection on each request and each
        # release, so a pool grown to hundreds of connections costs the
        # gateway half its CPU under a live fleet (docs/SYNC.md). Requests
        # wait for a slot here instead (a gevent semaphore under gunicorn's
        # gevent workers), and the pool stays about this size; long-polls
        # hold no slot, so waiting tablets never starve the writes.
        self._slots: contextlib.AbstractContextManager[Any] = (
            threading.BoundedSemaphore(max_in_flight) if max_in_flight is not None
            else contextlib.nullcontext())
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=auth,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
            ),
            # identity: pouchdb-server gzips every answer a client accepts
            # compressed, on its one thread, for a hop that is local; that
            # cost ~0.6 ms on a small GET and ~2 ms on a 100-document
            # _bulk_get (docs/BENCHMARKS.md).
            headers={'Accept': 'application/json', 'Accept-Encoding': 'identity'},
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (no request can be sent any more)."""
        return self._http.is_closed

    # -- raw requests ----------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        timeout: float | httpx.Timeout | None = None,
        ok: Iterable[int] = (),
    ) -> httpx.Response:
        """Send one request and map failures to domain errors.

        Args:
            method: HTTP method.
            path: Path below the server URL, already escaped.
            params: Query parameters.
            json_body: Body to send as JSON.
            timeout: Seconds for this request (long-polls need more).
            ok: Error statuses the caller handles itself.

        Returns:
            The response, with a 2xx status or one listed in ``ok``.

        Raises:
            DatabaseUnavailable: Connection failure, timeout or 5xx.
            CouchDBError: Any other error status.
        """
        content = None
        headers = {}
        if json_body is not None:
            content = json.dumps(json_body, separators=(',', ':')).encode()
            headers['Content-Type'] = 'application/json'
        try:
            with self._slots:
                response = self._http.request(
                    method,
                    path,
                    params=params,
                    content=content,
                    headers=headers,
                    timeout=self.timeout if timeout is None else timeout,
                )
        except httpx.HTTPError as ex:
            raise DatabaseUnavailable(f'{method} {path.split("/")[1] or "/"}: {type(ex).__name__}') from None
        if response.status_code < 400 or response.status_code in set(ok):
            return response
        self._raise_for(response, method, path)

    @staticmethod
    def _raise_for(response: httpx.Response, method: str, path: str) -> NoReturn:
        """Raise the domain error of an error status."""
        if response.status_code >= 500:
            raise DatabaseUnavailable(f'{method} {path.split("/")[1] or "/"}: {response.status_code}')
        try:
            error = str(response.json().get('error', 'error'))
        except (ValueError, AttributeError):
            error = 'error'
        cls = _STATUS_ERRORS.get(response.status_code, CouchDBError)
        raise cls(response.status_code, error, f'{method} {path.split("/")[1] or "/"}')

    # -- server and databases -------------------------------------------

    def server_info(self) -> dict[str, Any]:
        """Return the server's welcome document (``GET /``)."""
        return _object(self.request('GET', '/'))

    def ensure_db(self, db: str) -> bool:
        """Create a database unless it exists; return True when created."""
        response = self.request('PUT', f'/{quote(db, safe="")}', ok=(412,))
        return response.status_code != 412

    def delete_db(self, db: str) -> None:
        """Delete a database; a missing one is not an error."""
        self.request('DELETE', f'/{quote(db, safe="")}', ok=(404,))

    def db_exists(self, db: str) -> bool:
        """Return True when the database exists."""
        return self.request('GET', f'/{quote(db, safe="")}', ok=(404,)).status_code != 404

    def db_info(self, db: str) -> dict[str, Any]:
        """Return ``GET /{db}``: doc count, update_seq and so on."""
        return _object(self.request('GET', f'/{quote(db, safe="")}'))

    def compact(self, db: str) -> None:
        """Ask the server to compact a database (drops old revision bodies)."""
        self.request('POST', f'/{quote(db, safe="")}/_compact', json_body={})

    # -- documents ---------------------------------------------------------

    def get(self, db: str, doc_id: str, **params: Any) -> dict[str, Any]:
        """Return one document.

        Raises:
            DocumentNotFound: It does not exist or was deleted.
        """
        return _object(self.request('GET', doc_path(db, doc_id), params=params or None))

    def get_or_none(self, db: str, doc_id: str) -> dict[str, Any] | None:
        """Return one document, or None when it does not exist."""
        response = self.request('GET', doc_path(db, doc_id), ok=(404,))
        return None if response.status_code == 404 else _object(response)

    def put(self, db: str, doc: dict[str, Any]) -> str:
        """Write a document (``_rev`` for an update) and return the new revision.

        Raises:
            DocumentConflict: ``_rev`` is stale, or the document exists.
        """
        rev: str = self.request('PUT', doc_path(db, doc['_id']), json_body=doc).json()['rev']
        return rev

    def delete(self, db: str, doc_id: str, rev: str) -> str:
        """Delete a document revision and return the tombstone's revision."""
        tombstone: str = self.request(
            'DELETE', doc_path(db, doc_id), params={'rev': rev}).json()['rev']
        return tombstone

    def bulk_docs(
        self, db: str, docs: list[dict[str, Any]], *, new_edits: bool = True
    ) -> list[dict[str, Any]]:
        """Write many documents; return CouchDB's per-document results."""
        body: dict[str, Any] = {'docs': docs}
        if not new_edits:
            body['new_edits'] = False
        return _array(self.request('POST', f'/{quote(db, safe="")}/_bulk_docs', json_body=body))

    def all_docs(
        self,
        db: str,
        *,
        keys: list[str] | None = None,
        include_docs: bool = False,
        start_key: str | None = None,
        end_key: str | None = None,
        limit: int | None = None,
        skip: int | None = None,
        descending: bool = False,
        conflicts: bool = False,
    ) -> list[dict[str, Any]]:
        """Return ``_all_docs`` rows, by ``keys`` or by key range.

        With ``conflicts`` (and ``include_docs``) each document carries its
        live losing revisions in ``_conflicts``.
        """
        params: dict[str, Any] = {'include_docs': _json_param(include_docs)}
        if conflicts:
            params['conflicts'] = 'true'
        if descending:
            params['descending'] = 'true'
        if start_key is not None:
            params['startkey'] = _json_param(start_key)
        if end_key is not None:
            params['endkey'] = _json_param(end_key)
        if limit is not None:
            params['limit'] = limit
        if skip:
            params['skip'] = skip
        path = f'/{quote(db, safe="")}/_all_docs'
        if keys is not None:
            response = self.request('POST', path, params=params, json_body={'keys': keys})
        else:
            response = self.request('GET', path, params=params)
        rows: list[dict[str, Any]] = response.json()['rows']
        return rows

    def view(self, db: str, design_id: str, name: str, *, keys: list[Any] | None = None,
             timeout: float | None = None, **params: Any) -> list[dict[str, Any]]:
        """Return the rows of a view (``keys`` are sent in the body).

        ``key``, ``startkey`` and ``endkey`` are JSON-encoded; other
        parameters go as given. ``timeout`` overrides the client's (a first
        build of a view reads every document).
        """
        encoded = {key: _json_param(value) if key in ('key', 'startkey', 'endkey') else value
                   for key, value in params.items()}
        path = f'{doc_path(db, design_id)}/_view/{quote(name, safe="")}'
        if keys is not None:
            response = self.request('POST', path, params=encoded, json_body={'keys': keys},
                                    timeout=timeout)
        else:
            response = self.request('GET', path, params=encoded, timeout=timeout)
        rows: list[dict[str, Any]] = response.json()['rows']
        return rows

    def iter_prefix(
        self, db: str, prefix: str, *, page_size: int = 500, include_docs: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Yield every live document whose id starts with ``prefix``, page by page.

        Memory stays bounded by ``page_size`` however many documents match:
        paging restarts from the last key seen, not from an offset.
        """
        start = prefix
        skip = 0
        while True:
            rows = self.all_docs(
                db,
                include_docs=include_docs,
                start_key=start,
                end_key=prefix + '\ufff0',
                limit=page_size,
                skip=skip,
            )
            for row in rows:
                yield row['doc'] if include_docs else row
            if len(rows) < page_size:
                return
            start = rows[-1]['id']
            skip = 1

    # -- replication primitives -------------------------------------------

    def changes(
        self,
        db: str,
        *,
        since: str | int = 0,
        limit: int | None = None,
        include_docs: bool = False,
        style_all_docs: bool = True,
        feed: str = 'normal',
        timeout_ms: int | None = None,
        conflicts: bool = False,
    ) -> dict[str, Any]:
        """Return one ``_changes`` answer (normal or longpoll).

        With ``conflicts`` (and ``include_docs``) each document carries its
        live losing revisions in ``_conflicts``.
        """
        params: dict[str, Any] = {'since': since, 'feed': feed}
        if limit is not None:
            params['limit'] = limit
        if include_docs:
            params['include_docs'] = 'true'
        if conflicts:
            params['conflicts'] = 'true'
        if style_all_docs:
            params['style'] = 'all_docs'
        path = f'/{quote(db, safe="")}/_changes'
        if feed == 'longpoll':
            params['timeout'] = timeout_ms or 10000
            return self._longpoll(path, params, (timeout_ms or 10000) / 1000,
                                  {'results': [], 'last_seq': since})
        return _object(self.request('GET', path, params=params))

    def _longpoll(self, path: str, params: dict[str, Any], wait: float,
                  idle_answer: dict[str, Any]) -> dict[str, Any]:
        """Return one upstream long-poll, cut off ``wait`` (+0.25) seconds after it started.

        CouchDB answers an idle long-poll itself at ``timeout``, but
        pouchdb-server ignores ``timeout`` and writes a newline every 6 s
        until a change arrives, so neither its own clock nor a read timeout
        ends the poll. So the poll asks for a heartbeat longer than the wait:
        nothing arrives after the opening of the body, and the read timeout
        ends an idle poll on time (CouchDB, told of a heartbeat, keeps its
        feed open too and is cut the same way). The body is also read chunk
        by chunk against a wall-clock deadline, for a server that sends
        newlines anyway. An idle or cut poll is the empty answer CouchDB
        would have sent (the caller polls again from the same ``since``, so
        a change arriving in the cut-off tail is delivered then).

        Ending on time matters beyond the one poll: the change feeds that
        keep devices and sessions in memory are trusted only while their
        polls come back within a few seconds of the wait (``sync.watch``); a
        poll that runs on to the next newline (12 s for a 10 s wait, later on
        a loaded server) lets that trust lapse and sends every device's
        authentication to the database.
        """
        params = dict(params, heartbeat=max(_HEARTBEAT_MS, int(wait * 2000)))
        deadline = time.monotonic() + wait + 0.25
        timeout = httpx.Timeout(self.timeout, read=wait + 0.25)
        body = bytearray()
        try:
            with self._http.stream('GET', path, params=params, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    self._raise_for(response, 'GET', path)
                for chunk in response.iter_bytes():
                    body += chunk
                    if time.monotonic() >= deadline:
                        return idle_answer
        except httpx.ReadTimeout:
            return idle_answer
        except httpx.HTTPError as ex:
            raise DatabaseUnavailable(f'GET {path.split("/")[1]}: {type(ex).__name__}') from None
        try:
            answer: dict[str, Any] = json.loads(body)
        except ValueError:
            raise DatabaseUnavailable(f'GET {path.split("/")[1]}: malformed') from None
        return answer

    def revs_diff(self, db: str, revs: dict[str, list[str]]) -> dict[str, Any]:
        """Return which of the given revisions the database lacks."""
        return _object(
            self.request('POST', f'/{quote(db, safe="")}/_revs_diff', json_body=revs))

    def bulk_get(self, db: str, docs: list[dict[str, Any]], *, revs: bool = True) -> dict[str, Any]:
        """Return ``_bulk_get`` results for ``[{"id", "rev"}]`` requests."""
        params = {'revs': 'true'} if revs else None
        return _object(self.request(
            'POST', f'/{quote(db, safe="")}/_bulk_get', params=params, json_body={'docs': docs}
        ))

    def current_docs(self, db: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Return the winning revision of each live document among ``ids``, by id.

        One ``_bulk_get`` by id, no history: on pouchdb-server it costs less
        than ``_all_docs?keys=&include_docs=true`` (for 500 ids ~30 ms
        against ~80 ms of its one thread). Missing and deleted ids answer an
        error entry there and are simply absent here.
        """
        if not ids:
            return {}
        answer = self.bulk_get(db, [{'id': doc_id} for doc_id in ids], revs=False)
        found: dict[str, dict[str, Any]] = {}
        for entry in answer.get('results', []):
            for item in entry.get('docs', []):
                doc = item.get('ok')
                if doc and not doc.get('_deleted'):
                    found[doc['_id']] = doc
        return found

    def open_revs(
        self, db: str, doc_id: str, open_revs: list[str] | str, *, revs: bool = True
    ) -> list[dict[str, Any]]:
        """Return ``GET /{db}/{id}?open_revs=`` as a JSON array."""
        params = {
            'open_revs': open_revs if open_revs == 'all' else _json_param(open_revs),
            'revs': _json_param(revs),
            'latest': 'true',
        }
        return _array(self.request('GET', doc_path(db, doc_id), params=params))
