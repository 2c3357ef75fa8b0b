"""Long-polls under gunicorn: heartbeats are streamed as they happen (not
buffered until the end), and the server ends every poll by
FIELDVAULT_LONGPOLL_MAX_SECONDS (5 here), well before gunicorn's timeout."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from tests.integration.conftest import ORG
from tests.integration.records import sealed_contact

pytestmark = pytest.mark.integration


def _poll(stack, creds, since, heartbeat_ms=500):
    """Return [(seconds since start, chunk)] of one streamed long-poll."""
    chunks = []
    started = time.monotonic()
    with httpx.stream('GET', stack.service.url + '/sync/records/_changes',
                      params={'style': 'all_docs', 'feed': 'longpoll',
                              'heartbeat': heartbeat_ms, 'since': since},
                      auth=(creds['device_id'], creds['secret']), timeout=30) as response:
        assert response.status_code == 200
        assert response.headers.get('content-encoding') is None
        for chunk in response.iter_raw():
            chunks.append((time.monotonic() - started, chunk))
    return chunks


def _since_now(stack, creds) -> str:
    info = httpx.get(stack.service.url + '/sync/records/',
                     auth=(creds['device_id'], creds['secret']), timeout=10).json()
    return str(info['update_seq'])


def test_heartbeats_stream_while_waiting_and_the_poll_ends_before_the_cap(stack):
    creds = stack.enroll('w-ivy')
    chunks = _poll(stack, creds, _since_now(stack, creds))
    elapsed = chunks[-1][0]
    body = b''.join(chunk for _t, chunk in chunks)
    assert json.loads(body) == {'results': [], 'last_seq': json.loads(body)['last_seq']}
    beats = [(at, chunk) for at, chunk in chunks if chunk.strip() == b'']
    # Each heartbeat reached the client when it was written, not at the end:
    # the first one arrives in the first half of the poll, however slow the
    # host (an order of events, not a speed).
    assert len(beats) >= 5, chunks
    assert beats[0][0] < elapsed / 2, chunks
    # Closed by the server's own 5 s deadline: never before it, and long
    # before gunicorn's 60 s timeout or the client's 30 s one would end it.
    assert 5 <= elapsed < 30


def test_a_visible_change_ends_the_streamed_poll_at_once(stack):
    creds = stack.enroll('w-jon')
    since = _since_now(stack, creds)
    doc = sealed_contact('w-jon', ORG)[0]
    other = sealed_contact('w-kim', ORG)[0]

    def write_later():
        time.sleep(0.8)
        stack.services.couch.put(stack.services.db('records'), other)  # invisible
        time.sleep(0.8)
        stack.services.couch.put(stack.services.db('records'), doc)

    writer = threading.Thread(target=write_later)
    writer.start()
    chunks = _poll(stack, creds, since, heartbeat_ms=400)
    writer.join()
    answer = json.loads(b''.join(chunk for _t, chunk in chunks))
    assert [row['id'] for row in answer['results']] == [doc['_id']]
    # The change ended the poll, not the 5 s deadline: the answer came before
    # it (the writer's own 1.6 s of sleeps are the only time this asks for).
    assert chunks[-1][0] < 5
