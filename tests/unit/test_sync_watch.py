"""DocWatch: documents kept only while the change feed says they are unchanged.

A fake CouchDB stands in for the server here (a feed whose timing the test
controls); tests/functional/test_sync_gateway.py checks the same promise
against the real pouchdb-server.
"""

from __future__ import annotations

import threading
import time

import pytest

from sync.errors import DatabaseUnavailable
from sync.watch import DocWatch

pytestmark = pytest.mark.unit

DEADLINE = 10.0


class FakeCouch:
    """One database with a long-poll ``_changes`` feed and counted reads."""

    def __init__(self) -> None:
        self.docs: dict[str, dict] = {}
        self.seq = 0
        self.log: list[tuple[int, str]] = []
        self.reads = 0
        self.fail_feed = False
        self.on_read = None
        self._changed = threading.Condition()

    def write(self, doc: dict) -> None:
        with self._changed:
            self.seq += 1
            self.docs[doc['_id']] = dict(doc, _rev=f'{self.seq}-x')
            self.log.append((self.seq, doc['_id']))
            self._changed.notify_all()

    def db_info(self, db):
        if self.fail_feed:
            raise DatabaseUnavailable('GET db: down')
        return {'update_seq': self.seq}

    def get_or_none(self, db, doc_id):
        self.reads += 1
        doc = self.docs.get(doc_id)
        if self.on_read is not None:
            self.on_read()
        return None if doc is None else dict(doc)

    def changes(self, db, *, since, feed, limit, style_all_docs, timeout_ms):
        with self._changed:
            self._changed.wait_for(lambda: self.seq > since or self.fail_feed,
                                   timeout=timeout_ms / 1000)
            if self.fail_feed:
                raise DatabaseUnavailable('GET _changes: down')
            rows = [{'seq': seq, 'id': doc_id} for seq, doc_id in self.log if seq > since]
            return {'results': rows[:limit], 'last_seq': rows[:limit][-1]['seq'] if rows
                    else since}

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()


def _until(condition) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, 'condition not reached'
        time.sleep(0.01)


@pytest.fixture
def couch():
    return FakeCouch()


@pytest.fixture
def watch(couch):
    made = DocWatch(couch, 'directory', prefixes=('device:',), poll_seconds=0.5,
                    grace_seconds=0.5)
    yield made
    made.close()
    couch.wake()


def _live(watch, couch) -> None:
    watch.get('device:warmup')  # starts the feed
    _until(lambda: watch.trusted)


def test_a_watched_document_is_read_once_while_the_feed_reports_nothing(watch, couch):
    couch.write({'_id': 'device:d1', 'status': 'active'})
    _live(watch, couch)
    before = couch.reads
    assert watch.get('device:d1')['status'] == 'active'
    assert watch.get('device:d1')['status'] == 'active'
    assert couch.reads == before + 1


def test_a_change_written_elsewhere_evicts_the_document(watch, couch):
    couch.write({'_id': 'device:d1', 'status': 'active'})
    _live(watch, couch)
    assert watch.get('device:d1')['status'] == 'active'
    couch.write({'_id': 'device:d1', 'status': 'revoked'})  # another instance revokes
    _until(lambda: watch.get('device:d1')['status'] == 'revoked')
    assert watch.get('device:d1')['status'] == 'revoked'


def test_forget_makes_the_next_get_read_the_database(watch, couch):
    couch.write({'_id': 'device:d1', 'status': 'active'})
    _live(watch, couch)
    watch.get('device:d1')
    couch.docs['device:d1']['status'] = 'revoked'  # written, feed not yet told
    watch.forget('device:d1')
    assert watch.get('device:d1')['status'] == 'revoked'


def test_a_read_overtaken_by_an_eviction_is_not_kept(watch, couch):
    couch.write({'_id': 'device:d1', 'status': 'active'})
    _live(watch, couch)
    # The eviction lands while the read is on its way back.
    couch.on_read = lambda: watch.forget('device:d1')
    watch.get('device:d1')
    couch.on_read = None
    before = couch.reads
    watch.get('device:d1')
    assert couch.reads == before + 1


def test_reads_go_to_the_database_until_the_feed_is_live(couch):
    couch.fail_feed = True
    watch = DocWatch(couch, 'directory', prefixes=('device:',), poll_seconds=0.5,
                     grace_seconds=0.5)
    try:
        couch.write({'_id': 'device:d1', 'status': 'active'})
        couch.fail_feed = True
        for _ in range(3):
            watch.get('device:d1')
        assert couch.reads == 3
        assert not watch.trusted
    finally:
        watch.close()
        couch.wake()


def test_a_feed_failure_empties_and_distrusts_the_cache(watch, couch):
    couch.write({'_id': 'device:d1', 'status': 'active'})
    _live(watch, couch)
    watch.get('device:d1')
    couch.fail_feed = True
    couch.wake()
    _until(lambda: not watch.trusted)
    before = couch.reads
    watch.get('device:d1')
    watch.get('device:d1')
    assert couch.reads == before + 2


def test_unwatched_ids_and_misses_are_never_kept(watch, couch):
    couch.write({'_id': 'session:s1', 'user': 'u'})
    _live(watch, couch)
    before = couch.reads
    watch.get('session:s1')
    watch.get('session:s1')
    assert watch.get('device:unknown') is None
    assert watch.get('device:unknown') is None
    assert couch.reads == before + 4


def test_callers_get_copies_they_may_change(watch, couch):
    couch.write({'_id': 'device:d1', 'status': 'active'})
    _live(watch, couch)
    watch.get('device:d1')['status'] = 'tampered'
    assert watch.get('device:d1')['status'] == 'active'


def test_a_closed_watch_reads_through(watch, couch):
    couch.write({'_id': 'device:d1', 'status': 'active'})
    _live(watch, couch)
    watch.get('device:d1')
    watch.close()
    before = couch.reads
    watch.get('device:d1')
    assert couch.reads == before + 1


def test_a_feed_answer_it_cannot_read_distrusts_the_cache(watch, couch):
    couch.write({'_id': 'device:d1', 'status': 'active'})
    _live(watch, couch)
    watch.get('device:d1')
    original = couch.changes
    couch.changes = lambda *args, **kwargs: {'results': 'not a list of rows'}
    couch.write({'_id': 'other:x'})  # wakes nothing now; the next poll reads garbage
    _until(lambda: not watch.trusted)
    couch.changes = original
    before = couch.reads
    watch.get('device:d1')
    assert couch.reads == before + 1
