"""CouchDBClient long-polls end on the wall clock, whatever the server keeps sending.

A fake server (``httpx.MockTransport``) stands in for one that never answers
an idle long-poll but keeps the connection alive with newlines, as
pouchdb-server does; tests/functional/test_sync_read_hardening.py checks the
gateway's deadline against the real pouchdb-server.
"""

from __future__ import annotations

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
