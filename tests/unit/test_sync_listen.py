"""ChangeListener: one shared feed wakes only the waiters a change concerns.

A fake CouchDB stands in for the server (a feed whose timing the test
controls); tests/integration/test_live_fleet.py and the long-poll tests run
the same path against pouchdb-server.
"""

from __future__ import annotations

import pytest

from sync.listen import ChangeListener
from tests.unit.test_sync_watch import FakeCouch, _until

pytestmark = pytest.mark.unit


class FeedCouch(FakeCouch):
    """The fake feed, with the documents of the changes (as include_docs gives)."""

    def changes(self, db, *, since, feed, limit, style_all_docs, timeout_ms, include_docs=False):
        page = super().changes(db, since=since, feed=feed, limit=limit,
                               style_all_docs=style_all_docs, timeout_ms=timeout_ms)
        for row in page['results']:
            row['doc'] = self.docs.get(row['id'])
        return page


@pytest.fixture
def couch():
    return FeedCouch()


@pytest.fixture
def listener(couch):
    made = ChangeListener(couch, 'records', include_docs=True, poll_seconds=0.2,
                          grace_seconds=5.0, idle_seconds=0.5)
    yield made
    couch.fail_feed = True  # ends the fake feed's wait; the listener idles out
    couch.wake()


def _owned_by(worker):
    return lambda row: (row.get('doc') or {}).get('owner') == worker


def test_a_change_wakes_only_the_waiter_it_concerns(listener, couch):
    ana = listener.register(0, _owned_by('ana'))
    ben = listener.register(0, _owned_by('ben'))
    _until(lambda: listener.live)
    couch.write({'_id': 'contact:1', 'owner': 'ana'})
    assert ana.wait(10)
    assert not ben.wait(0.5)
    listener.unregister(ana)
    listener.unregister(ben)


def test_an_unconcerned_waiter_is_moved_past_the_batch_without_a_read(listener, couch):
    listener.register(0, _owned_by('x'))
    _until(lambda: listener.live)
    ben = listener.register(couch.seq, _owned_by('ben'))
    couch.write({'_id': 'contact:2', 'owner': 'ana'})
    _until(lambda: ben.position == couch.seq)
    assert not ben.wait(0.1)


def test_a_failed_feed_wakes_every_waiter_and_is_not_trusted(listener, couch):
    ben = listener.register(0, _owned_by('ben'))
    _until(lambda: listener.live)
    couch.fail_feed = True
    couch.wake()
    assert ben.wait(10)
    _until(lambda: not listener.live)


def test_a_failing_visibility_check_wakes_its_waiter(listener, couch):
    def broken(row):
        raise KeyError('owner')

    odd = listener.register(0, broken)
    _until(lambda: listener.live)
    couch.write({'_id': 'contact:3'})
    assert odd.wait(10)


def test_a_waiter_whose_request_dropped_it_unregistered_leaves_no_trace(listener, couch):
    # A streamed long-poll answer that the server drops before it starts
    # never runs its own unregistering; the listener must not keep it.
    kept = listener.register(0, _owned_by('ana'))
    listener.register(0, _owned_by('ben'))  # dropped at once
    assert list(listener._waiters) == [kept]
    listener.unregister(kept)
    assert not list(listener._waiters)


def test_a_waiter_whose_position_lies_inside_a_batch_is_moved_past_it(listener, couch):
    listener.register(0, _owned_by('x'))
    _until(lambda: listener.live)
    with couch._changed:  # both changes reach the shared feed in one batch
        couch.write({'_id': 'contact:4', 'owner': 'ana'})
        ben = listener.register(couch.seq, _owned_by('ben'))
        couch.write({'_id': 'contact:5', 'owner': 'ana'})
    _until(lambda: ben.position == couch.seq)
    assert not ben.wait(0.1)
