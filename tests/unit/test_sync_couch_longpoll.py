"""CouchDBClient long-polls end on the wall clock, whatever the server keeps sending,
and hold none of the bounded slots other requests wait for.

A fake server (``httpx.MockTransport``) stands in for one that never answers
an idle long-poll but keeps the connection alive with newlines, as
pouchdb-server does; tests/functional/test_sync_read_hardening.py checks the
gateway's deadline against the real pouchdb-server.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from sync.couch import CouchDBClient

pytestmark = pytest.mark.unit

#: Newlines the fake server would send if nobody stopped reading.
KEEPALIVES = 400


class _Trickle(httpx.SyncByteStream):
    """The opening of a long-poll body, then a newline every 50 ms."""

    def __init__(self) -> None:
        self.sent = 0

    def __iter__(self):
        yield b'{"results":[\n'
        for _ in range(KEEPALIVES):
            time.sleep(0.05)
            self.sent += 1
            yield b'\n'
        yield b'],"last_seq":9}'


def test_an_idle_long_poll_kept_alive_by_newlines_ends_with_the_empty_answer():
    streams = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params['feed'] == 'longpoll'
        streams.append(_Trickle())
        return httpx.Response(200, stream=streams[-1])

    couch = CouchDBClient('http://couch.invalid', transport=httpx.MockTransport(handler))
    answer = couch.changes('db', since=7, feed='longpoll', timeout_ms=300)
    assert answer == {'results': [], 'last_seq': 7}
    # It stopped reading long before the server would have stopped writing.
    assert streams[0].sent < KEEPALIVES


def test_a_long_poll_that_answers_in_time_is_read_whole():
    body = b'{"results":[\n\n{"seq":3,"id":"a","changes":[]}],\n"last_seq":3}\n'

    couch = CouchDBClient('http://couch.invalid',
                          transport=httpx.MockTransport(lambda request: httpx.Response(
                              200, content=body)))
    assert couch.changes('db', since=1, feed='longpoll', timeout_ms=5000) == {
        'results': [{'seq': 3, 'id': 'a', 'changes': []}], 'last_seq': 3}


def test_a_long_poll_asks_for_no_heartbeat_before_its_deadline():
    asked = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(dict(request.url.params))
        return httpx.Response(200, json={'results': [], 'last_seq': 1})

    couch = CouchDBClient('http://couch.invalid', transport=httpx.MockTransport(handler))
    couch.changes('db', since=1, feed='longpoll', timeout_ms=25_000)
    # pouchdb-server writes a newline every 6 s unless told a heartbeat: a
    # newline before the deadline would keep the read timeout from ending
    # the poll on time.
    assert int(asked[0]['heartbeat']) > 25_000
    assert asked[0]['timeout'] == '25000'


class _Gate(httpx.BaseTransport):
    """Answers once released, counting how many requests wait inside at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.inside = 0
        self.most = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        self.release.wait(10)
        with self._lock:
            self.inside -= 1
        return httpx.Response(200, json={'ok': True})


def test_requests_beyond_the_in_flight_bound_wait_their_turn():
    gate = _Gate()
    couch = CouchDBClient('http://couch.invalid', transport=gate, max_in_flight=2)
    threads = [threading.Thread(target=couch.server_info) for _ in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while gate.inside < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # a third request would be inside by now if it could
    assert gate.inside == 2
    gate.release.set()
    for thread in threads:
        thread.join(10)
    assert gate.most == 2 and gate.inside == 0


def test_a_waiting_long_poll_holds_no_request_slot():
    polls = _Gate()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get('feed') == 'longpoll':
            return polls.handle_request(request)
        return httpx.Response(200, json={'couchdb': 'Welcome'})

    couch = CouchDBClient('http://couch.invalid', transport=httpx.MockTransport(handler),
                          max_in_flight=1)
    waiting = threading.Thread(target=couch.changes, args=('db',),
                               kwargs={'since': 1, 'feed': 'longpoll', 'timeout_ms': 5000})
    waiting.start()
    deadline = time.monotonic() + 5
    while polls.inside < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert polls.inside == 1
    # The one slot is free for an ordinary request while the poll waits.
    assert couch.server_info() == {'couchdb': 'Welcome'}
    polls.release.set()
    waiting.join(10)
