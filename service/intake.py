"""The rules of desk submissions, shared by desk intake and desk correction.

A record sealed on a staff member's machine (``POST /records``,
``PUT /caseload/{id}``) meets the rules a pushed record meets at the sync
gateway: its envelopes pass the envelope rules (``service.envelope_policy``,
with the one key rule of ``sync.key_policy``), and nothing is added for a
sealed youth (``sync.sealed``). Refusals are domain errors that
``service.errors`` maps to HTTP.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

import schemas
from schemas.lifecycle import TransitionRefused
from service.envelope_policy import check_desk_envelopes
from service.keystore import KeyStore
from service.program import CaptureGuards
from sync import filtering
from sync.sealed import LateArrivals, SealedRegistry

__all__ = ['DeskIntake', 'LateArrivalRefused']


class LateArrivalRefused(Exception):
    """A submission would add a record or envelope of a sealed youth.

    Attributes:
        rule: The rule's code (``youth_sealed``, ``envelope_deleted``).
        reason: One sentence naming the rule, never a value.
    """

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason


class DeskIntake:
    """Checks desk submissions and keeps what a sealing rule refuses.

    Args:
        services: The app's collaborators.
        key_store: The key store (the current manifest).
    """

    def __init__(self, services, key_store: KeyStore) -> None:
        self._couch = services.couch
        self._keyvault_db = services.db('keyvault')
        self._quarantine_db = services.db('quarantine')
        self._audit = services.audit
        self._key_store = key_store
        self._sealed = SealedRegistry(services.couch, services.db('directory'),
                                      services.device_watch)
        self._guards = CaptureGuards(services)

    def check_guards(self, document: dict[str, Any]) -> None:
        """Check a new case's field actions against the lifecycle guards.

        The same guards the sync gateway applies to a case captured on a
        tablet (assent, signed consent, eligible age), with the youth's
        stored records.

        Raises:
            TransitionRefused: A guard failed; ``guard`` names it.
        """
        failed = self._guards(document, None)
        if failed is not None:
            raise TransitionRefused(*failed)

    def check_envelopes(self, document: dict[str, Any], envelopes: list[Any], *,
                        expected: Iterable[str], unexpected_reason: str) -> None:
        """Check a submission's envelopes against the current manifest.

        Raises:
            InvalidKeyMaterial: An envelope is malformed.
            EnvelopeRefused: An envelope is refused, or one is missing.
        """
        check_desk_envelopes(document, envelopes, expected=expected,
                             unexpected_reason=unexpected_reason,
                             manifest_body=self._key_store.manifest_body(), now=time.time())

    def sealed_refusal(self, doc: dict[str, Any]):
        """Return the sealing rule a record breaks (``sync.sealed``), or None."""
        return LateArrivals(self._sealed.snapshot(), [doc]).refusal(doc)

    def refuse_late_arrival(self, principal, document: dict[str, Any],
                            envelopes: list[dict[str, Any]]) -> None:
        """Refuse a submission that would add anything for a sealed youth.

        The same rule as a sync push: the record of a sealed youth (by
        linking key or id), and any envelope a sealing shredded (keyvault
        holds it deleted, so it could otherwise be written again). The
        whole submission goes to quarantine, the record as the gateway keeps
        one, every envelope as metadata only.

        Raises:
            LateArrivalRefused: Naming the rule.
        """
        late = LateArrivals(self._sealed.snapshot(), [document])
        rows = self._couch.all_docs(self._keyvault_db,
                                    keys=[envelope['_id'] for envelope in envelopes])
        shredded = {row['id'] for row in rows
                    if isinstance(row.get('value'), dict) and row['value'].get('deleted')}
        refusals = [refusal for refusal in (late.refusal(doc, shredded)
                                            for doc in [document, *envelopes]) if refusal]
        if not refusals:
            return
        if late.new_records:
            self._sealed.add(record_ids=late.new_records)
        refusal, now = refusals[0], round(time.time(), 3)
        entries = []
        for doc in [document, *envelopes]:
            # The same allow-list as the gateway's quarantine; envelopes keep
            # no key material (a sealed youth's record key must not survive).
            kept, redacted = filtering.redact_for_quarantine(
                doc, record_types=schemas.RECORD_TYPES, worker=principal.id, device_id='',
                key_material=False)
            entries.append({
                '_id': f'q:{uuid.uuid4().hex}', 'type': 'quarantine', 'source': 'desk_intake',
                'user': principal.id, 'db': 'records', 'at': now, 'rule': refusal.rule,
                'reason': refusal.reason, 'fields': {}, 'doc_id': doc['_id'],
                'doc': kept, 'redacted': redacted,
            })
        self._couch.bulk_docs(self._quarantine_db, entries)
        for entry in entries:
            self._audit.record('intake_refused', actor=f'user:{principal.id}',
                               subject=entry['doc_id'], team=principal.team,
                               details={'rule': refusal.rule, 'quarantine': entry['_id']})
        raise LateArrivalRefused(refusal.rule, refusal.reason)
