"""The CouchDB replication gateway: what each ``/sync/{db}`` request does.

Tablets (PouchDB 9) and the CouchDB replicator talk to the gateway as if it
were CouchDB. The gateway passes upstream sequences through verbatim, filters
the real ``_changes`` feed per device, validates every pushed document, and
stores checkpoints namespaced per device. Methods are named after the steps of
the CouchDB replication protocol and work on plain data; ``service`` maps them
to HTTP. See docs/SYNC.md for the rules and what is not covered.

``Gateway`` is the one object the service holds; the steps live by concern:
``sync.pull`` (what devices read), ``sync.push`` (what ``_bulk_docs``
stores or quarantines) and ``sync.checkpoints`` (the ``_local`` documents).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from sync.checkpoints import Checkpoints
from sync.couch import CouchDBClient
from sync.devices import DeviceIdentity
from sync.errors import BadRequest, TooManyDocuments, UnknownDatabase
from sync.pull import Pull
from sync.push import Push, RecordRules

__all__ = ['Gateway', 'RecordRules', 'SYNC_DATABASES', 'UnknownDatabase', 'BadRequest',
           'TooManyDocuments']

#: Logical databases devices replicate.
SYNC_DATABASES = ('records', 'config')

#: Threads of the executor a gateway makes when it is given none: a push
#: batch uses at most two at a time (its lookup, then one chunk write).
_PUSH_IO_THREADS = 16


class Gateway:
    """Replication endpoints of one deployment.

    Args:
        couch: CouchDB client.
        databases: Physical names by logical name (records, config, keyvault,
            quarantine).
        rules: Validators for pushed documents.
        server_uuid: Stable uuid answered at ``GET /sync/``.
        max_doc_bytes: Largest accepted pushed document.
        max_bulk_docs: Most documents one ``_bulk_docs`` or ``_bulk_get`` may name.
        longpoll_max_seconds: Longest a long-poll is held open.
        audit: ``record(kind, actor=, subject=, details=)`` callable.
        clock: Injected time source.
        monotonic: Injected monotonic clock (long-poll deadlines).
        executor: Runs a push's I/O (the lookup of stored state, the chunk
            writes) beside its validation. When omitted the gateway makes its
            own and shuts it down in ``close``; a given one stays the
            caller's to shut down.

    Attributes:
        pull: The read steps (``sync.pull``).
        push: The write step (``sync.push``).
        checkpoints: The devices' ``_local`` documents (``sync.checkpoints``).
    """

    def __init__(
        self,
        couch: CouchDBClient,
        databases: dict[str, str],
        rules: RecordRules,
        *,
        server_uuid: str,
        max_doc_bytes: int,
        longpoll_max_seconds: int,
        audit: Callable[..., Any],
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        max_bulk_docs: int = 1000,
        executor: Executor | None = None,
    ) -> None:
        self._couch = couch
        self._dbs = databases
        self.server_uuid = server_uuid
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=_PUSH_IO_THREADS, thread_name_prefix='fv-push-io')
        self.pull = Pull(couch, self.physical, databases['keyvault'],
                         max_bulk_docs=max_bulk_docs, longpoll_max_seconds=longpoll_max_seconds,
                         monotonic=monotonic)
        self.push = Push(couch, self.physical, databases, rules, executor=self._executor,
                         max_doc_bytes=max_doc_bytes, max_bulk_docs=max_bulk_docs,
                         audit=audit, clock=clock)
        self.checkpoints = Checkpoints(couch, self.physical)

    def close(self) -> None:
        """Shut down the executor the gateway made, after its running writes.

        Pushes after this fail; the app calls it once, when its worker exits.
        """
        if self._own_executor:
            self._executor.shutdown(wait=True)

    @staticmethod
    def derive_server_uuid(org: str) -> str:
        """Return a uuid that is the same on every instance of one org."""
        return uuid.uuid5(uuid.NAMESPACE_URL, f'fieldvault:{org}').hex

    def physical(self, db: str) -> str:
        """Return the physical name of a replicated logical database.

        Raises:
            UnknownDatabase: ``db`` is not replicated to devices.
        """
        if db not in SYNC_DATABASES:
            raise UnknownDatabase(db)
        return self._dbs[db]

    # -- peer information -------------------------------------------------

    def server_info(self) -> dict[str, Any]:
        """Return the welcome document of ``GET /sync/``."""
        return {'couchdb': 'Welcome', 'version': '3.3.3', 'vendor': {'name': 'fieldvault'},
                'uuid': self.server_uuid}

    def db_info(self, db: str) -> dict[str, Any]:
        """Return ``GET /{db}``: name, upstream update_seq, instance_start_time."""
        info = self._couch.db_info(self.physical(db))
        # NOTE: no doc_count: it would tell a device how much other workers hold.
        return {'db_name': db, 'update_seq': info.get('update_seq', 0),
                'instance_start_time': '0'}

    # -- checkpoints (sync.checkpoints) -------------------------------------

    def read_checkpoint(self, device: DeviceIdentity, db: str, local_id: str) -> dict[str, Any]:
        """Return a device's ``_local`` document (``Checkpoints.read``)."""
        return self.checkpoints.read(device, db, local_id)

    def write_checkpoint(
        self, device: DeviceIdentity, db: str, local_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Store a device's ``_local`` document (``Checkpoints.write``)."""
        return self.checkpoints.write(device, db, local_id, body)

    # -- pull (sync.pull) ---------------------------------------------------

    def changes(
        self,
        device: DeviceIdentity,
        db: str,
        *,
        since: str | None,
        limit: int | None,
        feed: str,
        timeout_ms: int | None,
        style_all_docs: bool = True,
    ) -> dict[str, Any]:
        """Return the device's filtered ``_changes`` (``Pull.changes``)."""
        return self.pull.changes(device, db, since=since, limit=limit, feed=feed,
                                 timeout_ms=timeout_ms, style_all_docs=style_all_docs)

    def changes_stream(
        self,
        device: DeviceIdentity,
        db: str,
        *,
        since: str | None,
        limit: int | None,
        timeout_ms: int | None,
        heartbeat_ms: int,
        style_all_docs: bool = True,
    ) -> dict[str, Any] | Iterator[bytes]:
        """Return a ``feed=longpoll&heartbeat=`` answer (``Pull.changes_stream``)."""
        return self.pull.changes_stream(device, db, since=since, limit=limit,
                                        timeout_ms=timeout_ms, heartbeat_ms=heartbeat_ms,
                                        style_all_docs=style_all_docs)

    def bulk_get(
        self, device: DeviceIdentity, db: str, requests: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Return ``_bulk_get`` results (``Pull.bulk_get``)."""
        return self.pull.bulk_get(device, db, requests)

    def all_docs_by_keys(
        self, device: DeviceIdentity, db: str, keys: list[Any], *, include_docs: bool
    ) -> dict[str, Any]:
        """Return ``POST /{db}/_all_docs`` by ``keys`` (``Pull.all_docs_by_keys``)."""
        return self.pull.all_docs_by_keys(device, db, keys, include_docs=include_docs)

    def open_revs(
        self, device: DeviceIdentity, db: str, doc_id: str, open_revs: str | None
    ) -> Any:
        """Return ``GET /{db}/{id}`` (``Pull.open_revs``)."""
        return self.pull.open_revs(device, db, doc_id, open_revs)

    def revs_diff(self, device: DeviceIdentity, db: str,
                  revs: dict[str, Any]) -> dict[str, Any]:
        """Return which revisions the gateway lacks (``Pull.revs_diff``)."""
        return self.pull.revs_diff(device, db, revs)

    # -- push (sync.push) ---------------------------------------------------

    def bulk_docs(
        self, device: DeviceIdentity, db: str, docs: list[Any], *, new_edits: bool
    ) -> list[dict[str, Any]]:
        """Validate and store pushed documents (``Push.bulk_docs``)."""
        return self.push.bulk_docs(device, db, docs, new_edits=new_edits)
