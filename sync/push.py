"""The push half of replication: what ``_bulk_docs`` does with pushed documents.

Every pushed document is checked (revision metadata, the record rules, the
stored owner, envelope creation only, the key manifest, sealed youths); the
accepted ones are written upstream in one ``_bulk_docs`` per target database
and chunk, the refused ones are answered ``forbidden`` and kept, redacted, in
quarantine. The lookup of what is stored and the writes run on an executor
the gateway owns or receives, while the request thread validates.
"""

from __future__ import annotations

import collections
import dataclasses
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from sync import filtering, key_policy, sealed
from sync.couch import CouchDBClient
from sync.devices import DeviceIdentity
from sync.errors import BadRequest, TooManyDocuments

__all__ = ['Push', 'RecordRules']

#: A push batch with at least this many records is checked and written in two
#: halves: the first half is written while the second is validated, so schema
#: validation (Python, ~0.2-0.3 ms a record) and CouchDB's write overlap
#: instead of adding up. PouchDB's batches (100 documents) are written in one
#: ``_bulk_docs``: on a single-threaded database every request costs a few ms
#: of its one core whatever its size, and the database is the shared part
#: (docs/BENCHMARKS.md); couch_replicator's (500) are split.
_SPLIT_AT_RECORDS = 200


@dataclasses.dataclass(frozen=True)
class RecordRules:
    """Validators the gateway applies to pushed documents (from schemas/keys).

    Attributes:
        record_types: Types a device may write.
        validate_document: Schema check of a record without metadata.
        schema_errors: Exceptions meaning "does not match its schema".
        unknown_schema_errors: Exceptions meaning "unknown type or version".
        validate_envelope: Structural check of an ``rk:`` envelope.
        envelope_errors: Exceptions meaning "malformed envelope".
        manifest_body: Returns the verified current key manifest body (or
            None); when given, pushed envelopes must be sealed to a key version
            it still accepts (``sync.key_policy``). Read once per push batch.
        sealed_registry: The sealed-youth registry (``sync.sealed``); when
            given, records and envelopes of a sealed youth are refused.
        check_capture: ``(doc, worker, stored doc or None)`` -> ``(rule,
            reason)`` or None: whether a worker may capture this record
            (type, case actions), given the revision stored.
        check_guards: ``(doc, stored doc or None, the batch's documents)``
            -> ``(guard, reason)`` or None: whether the case actions a
            record adds pass their guards against the youth's other records.
    """

    record_types: tuple[str, ...]
    validate_document: Callable[[dict[str, Any]], Any]
    schema_errors: tuple[type[Exception], ...]
    unknown_schema_errors: tuple[type[Exception], ...]
    validate_envelope: Callable[[dict[str, Any]], Any]
    envelope_errors: tuple[type[Exception], ...]
    manifest_body: Callable[[], dict[str, Any] | None] | None = None
    sealed_registry: Any = None
    check_capture: Callable[[dict[str, Any], str, dict[str, Any] | None],
                            tuple[str, str] | None] | None = None
    check_guards: Callable[[dict[str, Any], dict[str, Any] | None, list[Any]],
                           tuple[str, str] | None] | None = None



def _envelope_id(doc: Any) -> str | None:
    """Return the ``_id`` of a pushed ``rk:`` envelope, or None for anything else."""
    if isinstance(doc, dict):
        doc_id = doc.get('_id')
        if isinstance(doc_id, str) and doc_id.startswith(filtering.ENVELOPE_PREFIX):
            return doc_id
    return None


@dataclasses.dataclass(frozen=True)
class _Stored:
    """What a push batch is checked against, read once per batch.

    Attributes:
        envelopes: For each pushed envelope id keyvault holds, the pushed
            revisions it already has.
        deleted_envelopes: Those of them whose winning revision is deleted
            (only a sealing deletes envelopes: shredded).
        records: The winning revision of each pushed record id stored live
            (its ``owner`` is the stored owner), by id.
    """

    envelopes: dict[str, frozenset[str]]
    deleted_envelopes: frozenset[str] = frozenset()
    records: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


_ENVELOPE_EXISTS = filtering.Refusal(
    'envelope_exists',
    'An envelope with this id is already stored; devices may only create envelopes.')


@dataclasses.dataclass
class _Batch:
    """The state of one ``_bulk_docs`` request while its chunks are decided."""

    stored: Any = None  # Future[_Stored], submitted before the first chunk
    manifest: list[Any] = dataclasses.field(default_factory=list)  # read at most once
    answers: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    refused: list[tuple[Any, filtering.Refusal]] = dataclasses.field(default_factory=list)
    envelope_revs: dict[str, Any] = dataclasses.field(default_factory=dict)
    late: sealed.LateArrivals | None = None  # built at the first document
    new_edits: bool = True

    def refuse(self, index: int, doc: Any, refusal: filtering.Refusal) -> None:
        """Answer ``forbidden`` for ``docs[index]`` and keep it for quarantine."""
        doc_id = doc.get('_id') if isinstance(doc, dict) else None
        answer: dict[str, Any] = {
            'id': doc_id if isinstance(doc_id, str) else None,
            'error': 'forbidden', 'reason': refusal.reason, 'rule': refusal.rule}
        if refusal.fields:
            # Schema messages are ours and name fields, never a value.
            answer['fields'] = refusal.fields
        if isinstance(doc, dict) and isinstance(doc.get('_rev'), str) and doc['_rev']:
            answer['rev'] = doc['_rev']
        self.answers[index] = answer
        self.refused.append((doc, refusal))

    def check_envelope_revision(
        self, doc: dict[str, Any], stored: _Stored,
    ) -> filtering.Refusal | None:
        """Refuse a revision that would change an envelope instead of creating it.

        Devices only ever create envelopes (rotation rewraps them on the
        server, and no device ever pulls one). So a pushed revision is
        accepted when keyvault does not hold the id yet (once per batch: a
        second, different revision of the same id in the batch would start
        a conflict), or when keyvault already has that very revision (a
        retried push, which writes nothing). Anything else would add a
        branch to an envelope that may be another worker's, whose winning
        revision an attacker could choose, so no advocate could open the
        record any more; on a deleted envelope it would undo a shredding
        (sealing leaves a deleted ``rk:`` document for every shredded key,
        even one whose envelope had not arrived yet).
        """
        doc_id, rev = doc['_id'], doc.get('_rev')
        if doc_id in stored.envelopes:
            if rev in stored.envelopes[doc_id]:
                return None
            return sealed.ENVELOPE_DELETED if doc_id in stored.deleted_envelopes else _ENVELOPE_EXISTS
        first = self.envelope_revs.setdefault(doc_id, rev)
        return None if first == rev else _ENVELOPE_EXISTS



class Push:
    """The write step of replication (``_bulk_docs``) for one deployment.

    Args:
        couch: CouchDB client.
        physical: Returns the physical name of a replicated logical database
            (raises ``UnknownDatabase`` for any other).
        databases: Physical names by logical name (keyvault, quarantine).
        rules: Validators for pushed documents.
        executor: Runs a batch's lookup of stored state and its chunk
            writes (I/O) while the request thread validates (CPU).
        max_doc_bytes: Largest accepted pushed document.
        max_bulk_docs: Most documents one ``_bulk_docs`` may name.
        audit: ``record(kind, actor=, subject=, details=)`` callable.
        clock: Injected time source.
    """

    def __init__(
        self,
        couch: CouchDBClient,
        physical: Callable[[str], str],
        databases: dict[str, str],
        rules: RecordRules,
        *,
        executor: Executor,
        max_doc_bytes: int,
        max_bulk_docs: int,
        audit: Callable[..., Any],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._couch = couch
        self._physical = physical
        self._dbs = databases
        self._rules = rules
        self._executor = executor
        self._max_doc_bytes = max_doc_bytes
        self._max_bulk_docs = max_bulk_docs
        self._audit = audit
        self._clock = clock

    def bulk_docs(
        self, device: DeviceIdentity, db: str, docs: list[Any], *, new_edits: bool
    ) -> list[dict[str, Any]]:
        """Validate and store pushed documents; return per-document results.

        Refused documents get ``{"id","rev","error":"forbidden","reason"}``
        in request order while the rest land, and a redacted copy goes to
        quarantine with who, when and why.

        One lookup of what is already stored (the owners of pushed records,
        the pushed envelopes keyvault already has) runs while the first
        chunk is validated; a batch of ``_SPLIT_AT_RECORDS`` records or more
        is checked and written in two halves, the first half's write running
        while the second half is validated. A failed write fails the request
        after the chunk before it landed; with ``new_edits=false`` the
        device's retry rewrites it harmlessly.

        Raises:
            TooManyDocuments: More than ``max_bulk_docs`` documents.
        """
        if not isinstance(docs, list):
            raise BadRequest('docs')
        if len(docs) > self._max_bulk_docs:
            raise TooManyDocuments('docs')
        physical = self._physical(db)
        batch = _Batch(new_edits=new_edits)
        if db == 'config':
            refusal = filtering.Refusal('read_only', 'The config database is read-only for devices.')
            for index, doc in enumerate(docs):
                batch.refuse(index, doc, refusal)
        else:
            batch.stored = self._executor.submit(self._stored_state, physical, docs)
            pending = None
            records = sum(1 for doc in docs if _envelope_id(doc) is None)
            chunk = -(-len(docs) // 2) if records >= _SPLIT_AT_RECORDS else max(len(docs), 1)
            try:
                for start in range(0, len(docs), chunk):
                    to_store = self._check_chunk(device, docs, start, chunk, batch)
                    if pending is not None:
                        pending.result()
                        pending = None
                    if to_store['records'] or to_store['keyvault']:
                        pending = self._executor.submit(self._store_chunk, physical, to_store,
                                                   batch.answers, new_edits)
                if pending is not None:
                    pending.result()
                    pending = None
            finally:
                if pending is not None:
                    pending.cancel()
        if batch.refused:
            self._quarantine(device, db, batch.refused)
        self._audit_accepted(device, db, docs, batch)
        return [batch.answers[index] for index in sorted(batch.answers)]

    def _audit_accepted(self, device: DeviceIdentity, db: str, docs: list[Any],
                        batch: _Batch) -> None:
        """One ``push_accepted`` event per batch that stored anything: counts only."""
        failed = {index for index, answer in batch.answers.items() if answer.get('error')}
        accepted = [doc for index, doc in enumerate(docs) if index not in failed]
        if not accepted:
            return
        envelopes = sum(1 for doc in accepted if _envelope_id(doc) is not None)
        deleted = sum(1 for doc in accepted
                      if _envelope_id(doc) is None and isinstance(doc, dict)
                      and doc.get('_deleted') is True)
        self._audit('push_accepted', actor=f'device:{device.device_id}', subject=None,
                    details={'db': db, 'worker': device.worker,
                             'records': len(accepted) - envelopes - deleted,
                             'envelopes': envelopes, 'deletions': deleted,
                             'refused': len(batch.refused)})

    def _check_chunk(self, device: DeviceIdentity, docs: list[Any], start: int, chunk: int,
                     batch: _Batch) -> dict[str, list[tuple[int, dict[str, Any]]]]:
        """Decide every document of ``docs[start:start + chunk]``.

        Revision metadata and attachments are checked first, for every
        document (``filtering.check_metadata``). Documents are then checked
        on their own (records as if new), then,
        once the batch's lookup of stored state is back, against it: a record
        whose stored owner is another worker gets the owner refusal (it
        precedes the schema rules), and an envelope whose id keyvault already
        holds under another revision is refused. Refusals go to ``batch``;
        the rest is returned by target database.
        """
        to_store: dict[str, list[tuple[int, dict[str, Any]]]] = {'records': [], 'keyvault': []}
        verdicts: list[tuple[int, str, Any, filtering.Refusal | None]] = []
        for index in range(start, min(start + chunk, len(docs))):
            doc = docs[index]
            refusal = filtering.check_metadata(doc, new_edits=batch.new_edits)
            if refusal is not None:
                verdicts.append((index, 'refused', doc, refusal))
                continue
            if _envelope_id(doc) is not None:
                verdicts.append((index, 'keyvault', doc, self._check_envelope(doc, batch)))
                continue
            verdicts.append((index, 'records', doc, self._check_record(device, doc, None)))
        stored = batch.stored.result()
        for index, target, doc, refusal in verdicts:
            if target == 'records':
                doc_id = doc.get('_id') if isinstance(doc, dict) else None
                current = stored.records.get(doc_id) if isinstance(doc_id, str) else None
                stored_owner = None if current is None else current.get('owner') or ''
                if stored_owner is not None and stored_owner != device.worker:
                    refusal = self._check_record(device, doc, stored_owner)
                if refusal is None:
                    refusal = self._check_capture(device, doc, current, docs)
                if refusal is None and doc.get('_deleted'):
                    # A tombstone keeps its metadata only, stamped with the
                    # owner so it stays attributable (and pullable).
                    # new_edits=false keeps the revision id as sent.
                    doc = filtering.tombstone(doc, device.worker)
            elif target == 'keyvault' and refusal is None:
                refusal = batch.check_envelope_revision(doc, stored)
            if refusal is None:
                refusal = self._check_sealed(doc, docs, batch)
            if refusal is None:
                to_store[target].append((index, doc))
            else:
                batch.refuse(index, doc, refusal)
        return to_store

    def _check_record(self, device: DeviceIdentity, doc: Any,
                      stored_owner: str | None) -> filtering.Refusal | None:
        refusal = filtering.check_pushed_record(
            doc, worker=device.worker, record_types=self._rules.record_types,
            max_doc_bytes=self._max_doc_bytes, validate=self._rules.validate_document,
            current_owner=stored_owner, schema_errors=self._rules.schema_errors,
            unknown_schema_errors=self._rules.unknown_schema_errors)
        return refusal

    def _check_capture(self, device: DeviceIdentity, doc: dict[str, Any],
                       current: dict[str, Any] | None,
                       docs: list[Any]) -> filtering.Refusal | None:
        """Refuse what this device's worker may not capture, given the stored revision."""
        if self._rules.check_capture is None or doc.get('_deleted'):
            return None
        problem = self._rules.check_capture(doc, device.worker, current)
        if problem is None and self._rules.check_guards is not None:
            problem = self._rules.check_guards(doc, current, docs)
        return None if problem is None else filtering.Refusal(*problem)

    def _check_sealed(self, doc: Any, docs: list[Any], batch: _Batch) -> filtering.Refusal | None:
        """Refuse a record or envelope of a sealed youth (``sync.sealed``).

        The registry is read once per batch (a cache hit while the
        directory's change feed reports no change); records of sealed youths
        refused in this batch are registered, so their envelopes are refused
        in a later batch too.
        """
        registry = self._rules.sealed_registry
        if registry is None:
            return None
        if batch.late is None:
            batch.late = sealed.LateArrivals(registry.snapshot(), docs)
            if batch.late.new_records:
                registry.add(record_ids=batch.late.new_records)
        return batch.late.refusal(doc)

    def _store_chunk(self, physical: str, to_store: dict[str, list[tuple[int, dict[str, Any]]]],
                     answers: dict[int, dict[str, Any]], new_edits: bool) -> None:
        """Write one chunk's accepted documents (records, then envelopes)."""
        for target, items in to_store.items():
            if not items:
                continue
            target_db = physical if target == 'records' else self._dbs['keyvault']
            stored = self._couch.bulk_docs(target_db, [doc for _i, doc in items],
                                           new_edits=new_edits)
            self._merge_upstream(items, stored, answers, new_edits)

    @staticmethod
    def _merge_upstream(items: list[tuple[int, dict[str, Any]]], stored: list[dict[str, Any]],
                        answers: dict[int, dict[str, Any]], new_edits: bool) -> None:
        if new_edits:
            for (index, _doc), result in zip(items, stored):
                answers[index] = result
            return
        # With new_edits=false CouchDB answers errors only (pouchdb-server
        # may list successes too): keep the errors, by id.
        by_id = {result.get('id'): result for result in stored if result.get('error')}
        for index, doc in items:
            if doc.get('_id') in by_id:
                answers[index] = by_id[doc['_id']]

    def _stored_state(self, physical: str, docs: list[Any]) -> _Stored:
        """Look up what a push batch must be checked against (I/O only).

        Owners (and the documents): the winning revision of each pushed
        record id that is stored and live. Envelopes: for each pushed ``rk:`` id keyvault already holds
        (live or deleted), which of the pushed revisions it already has.
        """
        record_ids: set[str] = set()
        envelope_revs: dict[str, set[str]] = {}
        for doc in docs:
            envelope = _envelope_id(doc)
            if envelope is not None:
                revs = envelope_revs.setdefault(envelope, set())
                if isinstance(doc.get('_rev'), str):
                    revs.add(doc['_rev'])
            elif (isinstance(doc, dict) and isinstance(doc.get('_id'), str)
                  and not doc['_id'].startswith('_')):
                record_ids.add(doc['_id'])
        current = self._couch.current_docs(physical, sorted(record_ids))
        return _Stored(*self._stored_envelope_revs(envelope_revs), records=current)

    def _stored_envelope_revs(
        self, pushed: dict[str, set[Any]],
    ) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
        """Look up pushed envelope ids in keyvault.

        ``_all_docs`` by key answers deleted documents too, so a shredded
        envelope counts as stored; ``_revs_diff`` then says which pushed
        revisions are already in its history (a retried or already rewrapped
        push writes nothing new and is accepted).

        Returns:
            ``({id: pushed revisions already stored}, ids whose winning
            revision is deleted)``, both over the ids keyvault holds.
        """
        if not pushed:
            return {}, frozenset()
        keyvault = self._dbs['keyvault']
        rows = [row for row in self._couch.all_docs(keyvault, keys=sorted(pushed))
                if isinstance(row.get('value'), dict)]
        if not rows:
            return {}, frozenset()
        asked = {row['id']: sorted(rev for rev in pushed[row['id']] if isinstance(rev, str))
                 for row in rows}
        winning = {row['id']: row['value'].get('rev') for row in rows}
        # A retried push names the winning revision itself: known without
        # asking; only other revisions need the history (``_revs_diff``).
        to_ask = {doc_id: [rev for rev in revs if rev != winning[doc_id]]
                  for doc_id, revs in asked.items()}
        to_ask = {doc_id: revs for doc_id, revs in to_ask.items() if revs}
        missing = self._couch.revs_diff(keyvault, to_ask) if to_ask else {}
        known = {doc_id: frozenset(rev for rev in revs
                                   if rev not in missing.get(doc_id, {}).get('missing', ()))
                 for doc_id, revs in asked.items()}
        return known, frozenset(row['id'] for row in rows if row['value'].get('deleted'))

    def _check_envelope(self, doc: dict[str, Any], batch: _Batch) -> filtering.Refusal | None:
        if filtering.doc_size(doc) > self._max_doc_bytes:
            return filtering.Refusal('max_doc_bytes',
                                     f'The envelope is larger than {self._max_doc_bytes} bytes.')
        if doc.get('_deleted'):
            return filtering.Refusal('envelope', 'Devices may not delete envelopes.')
        try:
            self._rules.validate_envelope(filtering.strip_meta(doc))
        except self._rules.envelope_errors:
            return filtering.Refusal('envelope', 'The record-key envelope is malformed.')
        if self._rules.manifest_body is not None:
            if not batch.manifest:
                batch.manifest.append(self._rules.manifest_body())
            reason = key_policy.check_new_envelope(doc, batch.manifest[0], self._clock())
            if reason is not None:
                return filtering.Refusal('key_version', str(reason))
        return None

    def _quarantine(self, device: DeviceIdentity, db: str,
                    refused: list[tuple[Any, filtering.Refusal]]) -> None:
        """Keep the refused documents of one batch, redacted, and audit them.

        One ``_bulk_docs`` into quarantine and one audit event for the whole
        batch, however many documents were refused (each request carries at
        most ``max_bulk_docs``), so a refused batch costs no more upstream
        writes than an accepted one. Only ids that passed the id rules are
        recorded (``filtering.safe_id``).
        """
        now = round(self._clock(), 3)
        batch = uuid.uuid4().hex
        entries = []
        for doc, refusal in refused:
            kept, redacted = filtering.redact_for_quarantine(
                doc, record_types=self._rules.record_types, worker=device.worker,
                device_id=device.device_id,
                # The sealed record key of a shredded record, or of a sealed
                # youth's, must not survive anywhere, quarantine included.
                key_material=refusal.rule not in (sealed.ENVELOPE_DELETED.rule,
                                                  sealed.YOUTH_SEALED.rule))
            entries.append({
                '_id': f'q:{uuid.uuid4().hex}', 'type': 'quarantine', 'device': device.device_id,
                'worker': device.worker, 'db': db, 'at': now, 'batch': batch,
                'rule': refusal.rule, 'reason': refusal.reason, 'fields': refusal.fields,
                'doc_id': filtering.safe_id(doc.get('_id') if isinstance(doc, dict) else None,
                                            self._rules.record_types),
                'doc': kept, 'redacted': redacted,
            })
        self._couch.bulk_docs(self._dbs['quarantine'], entries)
        rules = collections.Counter(entry['rule'] for entry in entries)
        self._audit('push_refused', actor=f'device:{device.device_id}',
                    subject=entries[0]['doc_id'] if len(entries) == 1 else None,
                    details={'db': db, 'count': len(entries), 'batch': batch,
                             'rules': dict(sorted(rules.items())),
                             'doc_ids': [entry['doc_id'] for entry in entries]})

