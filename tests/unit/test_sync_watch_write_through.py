"""ForgetOnWrite: what this process writes is never served stale from its own watch.

The fake database's feed lags here (its writes through ``put``/``delete``
are not reported), so only the write-through forgetting can make the next
read see them.
"""

from __future__ import annotations

import pytest

from sync.watch import DocWatch, ForgetOnWrite
from tests.unit.test_sync_watch import FakeCouch, _live

pytestmark = pytest.mark.unit


class LaggingCouch(FakeCouch):
    """Writes through the client that the feed has not reported yet."""

    def put(self, db, doc):
        self.docs[doc['_id']] = dict(doc)
        return 'rev'

    def delete(self, db, doc_id, rev):
        self.docs.pop(doc_id, None)


@pytest.fixture
def couch():
    return LaggingCouch()


@pytest.fixture
def watch(couch):
    watch = DocWatch(couch, 'directory', prefixes=('device:', 'user:', 'token:'), poll_seconds=0.2,
                     grace_seconds=5.0)
    yield watch
    watch.close()
    couch.wake()


def test_a_write_through_the_client_is_seen_by_the_next_read(watch, couch):
    couch.write({'_id': 'user:ana', 'disabled': False})
    _live(watch, couch)
    before = couch.reads
    assert watch.get('user:ana')['disabled'] is False
    assert watch.get('user:ana')['disabled'] is False
    assert couch.reads == before + 1  # served from memory the second time
    ForgetOnWrite(couch, watch, 'directory').put('directory', {'_id': 'user:ana',
                                                               'disabled': True})
    assert watch.get('user:ana')['disabled'] is True


def test_a_delete_through_the_client_is_seen_by_the_next_read(watch, couch):
    couch.write({'_id': 'token:abc', 'username': 'ana'})
    _live(watch, couch)
    assert watch.get('token:abc') is not None
    assert watch.get('token:abc') is not None
    ForgetOnWrite(couch, watch, 'directory').delete('directory', 'token:abc', '1-x')
    assert watch.get('token:abc') is None


def test_other_calls_reach_the_wrapped_client(watch, couch):
    couch.write({'_id': 'user:ana'})
    assert ForgetOnWrite(couch, watch, 'directory').db_info('directory') == {'update_seq': 1}
