"""Sealing a youth's records (crypto-shredding), by two people.

The rules and the work; ``service/resources/sealing.py`` is the HTTP side.

``POST /sealings`` proposes sealing every record of one youth, named by a
non-identifying linking key: ``client_id`` (the random UUID that identity and
consent records require and contact and screening records may carry) and/or
``youth_code`` (the generated pseudonym such as ``quiet-river-07`` that
contact and screening records carry before an identity exists).
``POST /sealings/{id}/approve`` by a *different* person holding the *other*
role (admin proposes and supervisor approves, or the other way round)
carries it out. The two are distinct, pre-existing staff: the approver's
account must not have been created, nor its roles or team changed, within
``FIELDVAULT_SEALING_WAITING_DAYS`` before the proposal, and the proposer's
not by the approver in that window, so one admin cannot create a
supervisor account and approve their own proposal with it. A proposal
names the youth's team (an admin proposes for any team; that team's
supervisor sees and approves it), expires after
``FIELDVAULT_SEALING_PROPOSAL_TTL_DAYS``, and can be cancelled by its
proposer or an admin (``POST /sealings/{id}/cancel``). Approval:

0. the youth enters the sealed-youth registry (``sync.sealed``): from then
   on, records and envelopes of the youth that arrive by sync or desk intake
   are refused;
1. a ``shredded:<rkid>`` tombstone per record key is written to ``keyvault``
   first (so a key-vault restore, even of a backup taken a minute earlier,
   skips those envelopes; the sealing document in ``directory`` lists them
   too);
2. every leaf revision of every ``rk:`` envelope of those records is deleted
   (found by the envelope's own ``doc`` member, so envelopes of conflicting
   record revisions are caught as well as those listed in ``fle.keys``); an
   envelope that has not arrived yet gets a deleted ``rk:`` document, so the
   gateway refuses it when a tablet pushes it late;
3. quarantined copies of those envelopes are deleted;
4. ``keyvault`` and ``quarantine`` are compacted, which drops the bodies of
   the deleted revisions; on pouchdb-server, whose LevelDB files keep them
   anyway, they are then rebuilt into fresh files (``sync.erasure``).

Record documents are not touched: they keep their non-identifying fields
for aggregate counts, and their sealed fields stay as ciphertext nobody can
open. Stripping the ciphertext would add nothing: copies of it exist on
tablets, in old revisions and in backups anyway, and the guarantee has to
hold for those; it also would create record edits racing tablets' own.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

import fle
from sync.erasure import is_embedded, rebuild_database
from sync.errors import DocumentConflict, DocumentNotFound
from sync.sealed import SealedRegistry

__all__ = ['SEALERS', 'TOMBSTONE_PREFIX', 'Sealer', 'SealingConflict',
           'SealingError', 'SealingForbidden', 'SealingNotFound', 'leave_deleted_envelopes',
           'public_view', 'sealer_roles', 'shredded_rkids']

SEALERS = ('supervisor', 'admin')
_DAY = 86400
TOMBSTONE_PREFIX = 'shredded:'
_ENVELOPE_PREFIX = fle.ENVELOPE_PREFIX
_SEALING_ID = re.compile(r'[0-9a-f]{32}')


class SealingError(Exception):
    """A sealing request refused; the message names the rule, never a value.

    Attributes:
        code: Snake-case token naming the rule.
        message: One sentence for a person.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SealingNotFound(SealingError):
    """No such sealing or youth on the caller's caseload (answered as missing)."""

    def __init__(self, message: str) -> None:
        super().__init__('not_found', message)


class SealingForbidden(SealingError):
    """The caller may not take this part in the sealing."""


class SealingConflict(SealingError):
    """The sealing's state does not allow this now."""


def leave_deleted_envelopes(couch, keyvault_db: str, envelope_ids: Iterable[str]) -> None:
    """Give every shredded envelope id the vault has no document for a deleted one.

    An envelope still on its way from a tablet (its record arrived, it did
    not yet) must not land later: a deleted ``rk:`` document makes the
    gateway refuse it (``envelope_deleted``) and makes opening the record
    answer that it was sealed. Sealings call this, and so does a key-vault
    restore for every key any sealing shredded.
    """
    ids = sorted(envelope_ids)
    if not ids:
        return
    never_stored = [row['key'] for row in couch.all_docs(keyvault_db, keys=ids)
                    if 'value' not in row]
    if never_stored:
        couch.bulk_docs(keyvault_db, [{'_id': envelope_id, '_deleted': True}
                                      for envelope_id in never_stored])


def shredded_rkids(couch, keyvault_db: str, directory_db: str) -> set[str]:
    """Return every rkid a sealing shredded (key-vault tombstones and sealing docs)."""
    found = {doc['_id'][len(TOMBSTONE_PREFIX):]
             for doc in couch.iter_prefix(keyvault_db, TOMBSTONE_PREFIX)}
    for doc in couch.iter_prefix(directory_db, 'sealing:'):
        found.update(doc.get('rkids') or ())
    return found


def sealer_roles(principal) -> set[str]:
    """Return the caller's roles that may take part in a sealing."""
    return set(principal.roles) & set(SEALERS)


class Sealer:
    """Proposes, approves, cancels and carries out sealings.

    Args:
        services: The app's collaborators.
    """

    def __init__(self, services) -> None:
        self.couch = services.couch
        self.audit = services.audit
        self.records_db = services.db('records')
        self.keyvault_db = services.db('keyvault')
        self.directory_db = services.db('directory')
        self.quarantine_db = services.db('quarantine')
        self.registry = SealedRegistry(services.couch, self.directory_db, services.device_watch)
        self.clock = services.clock
        self.waiting_seconds = services.config.sealing_waiting_days * _DAY
        self.proposal_ttl_seconds = services.config.sealing_proposal_ttl_days * _DAY

    def youth_team(self, record_ids: list[str]) -> str | None:
        """Return the one team the records belong to, or None when not exactly one."""
        teams = set()
        for record_id in record_ids:
            doc = self.couch.get_or_none(self.records_db, record_id)
            teams.add(self.team_of_user((doc or {}).get('owner')))
        return teams.pop() if len(teams) == 1 else None

    def too_recent(self, approver: str, proposal: dict[str, Any]) -> bool:
        """Say whether the two people of a sealing fail to be distinct, pre-existing staff.

        The approver must have existed, with the roles and team they hold,
        for the whole waiting period before the proposal; the proposer must
        not have been created or changed by the approver within it.
        """
        since = proposal['proposed_at'] - self.waiting_seconds
        mine = self.couch.get_or_none(self.directory_db, f'user:{approver}') or {}
        if (mine.get('created_at') or 0) > since or (mine.get('changed_at') or 0) > since:
            return True
        theirs = self.couch.get_or_none(self.directory_db,
                                        f'user:{proposal["proposed_by"]}') or {}
        return ((theirs.get('created_by') == approver and (theirs.get('created_at') or 0) > since)
                or (theirs.get('changed_by') == approver
                    and (theirs.get('changed_at') or 0) > since))

    def expired(self, proposal: dict[str, Any]) -> bool:
        """Say whether a proposal is past its approval window."""
        return proposal['status'] == 'proposed' and self.clock() > proposal.get(
            'expires_at', proposal['proposed_at'] + self.proposal_ttl_seconds)

    def team_of_user(self, username: str | None) -> str | None:
        if not username:
            return None
        user = self.couch.get_or_none(self.directory_db, f'user:{username}')
        return user.get('team') if user else None

    def matching_records(self, client_id: str | None, youth_code: str | None,
                         principal) -> list[str]:
        """Return the ids of the youth's records; none for a supervisor outside them.

        A paged scan of ``records`` (bounded memory); a sealing is rare.
        """
        found = []
        teams = set()
        for doc in self.couch.iter_prefix(self.records_db, ''):
            if doc['_id'].startswith('_'):
                continue
            if (client_id and doc.get('client_id') == client_id) or \
                    (youth_code and doc.get('youth_code') == youth_code):
                found.append(doc['_id'])
                teams.add(self.team_of_user(doc.get('owner')))
        # APPSEC: a supervisor (who is not also an admin) seals only their
        # own team's youth; anything else answers as if nothing matched.
        if 'admin' not in principal.roles and (not principal.team or teams - {principal.team}):
            return []
        return found

    def envelope_ids(self, record_ids: list[str]) -> set[str]:
        wanted = set(record_ids)
        ids = set()
        for record_id in record_ids:
            doc = self.couch.get_or_none(self.records_db, record_id)
            for rkid in ((doc or {}).get('fle') or {}).get('keys', {}):
                ids.add(f'{_ENVELOPE_PREFIX}{rkid}')
        for envelope in self.couch.iter_prefix(self.keyvault_db, _ENVELOPE_PREFIX):
            if envelope.get('doc') in wanted:
                ids.add(envelope['_id'])
        return ids

    def delete_every_leaf(self, db: str, doc_id: str) -> bool:
        """Delete a document and every conflicting leaf; True when it existed."""
        existed = False
        for _attempt in range(20):
            try:
                doc = self.couch.get(db, doc_id, conflicts='true')
            except DocumentNotFound:
                return existed
            existed = True
            revs = [doc['_rev'], *doc.get('_conflicts', [])]
            self.couch.bulk_docs(db, [{'_id': doc_id, '_rev': rev, '_deleted': True}
                                      for rev in revs])
        raise SealingConflict('conflict', 'An envelope kept changing; retry the approval.')

    def compact(self, db: str, *, wait_seconds: float = 60) -> None:
        self.couch.compact(db)
        deadline = time.monotonic() + wait_seconds
        while self.couch.db_info(db).get('compact_running') and time.monotonic() < deadline:
            time.sleep(0.2)

    def register(self, sealing: dict[str, Any], record_ids: list[str]) -> list[str]:
        """Enter the youth in the sealed registry (``sync.sealed``), before any shredding.

        Every linking key the youth's records carry is registered, not only
        the one the sealing names, so a later record linked by the other
        (a screening with the same ``client_id``) is refused too. A record
        of the youth stored after the approval found the records and before
        the registry refused more (a sync in that window) is looked for
        once the registry is written, among the same teams' records.

        Returns:
            The record ids to seal: ``record_ids`` and any such record.
        """
        docs = [row.get('doc') or {} for row in self.couch.all_docs(
            self.records_db, keys=record_ids, include_docs=True)]
        self.registry.add(
            client_ids=[sealing.get('client_id'), *(doc.get('client_id') for doc in docs)],
            youth_codes=[sealing.get('youth_code'), *(doc.get('youth_code') for doc in docs)],
            record_ids=record_ids)
        teams = {self.team_of_user(doc.get('owner')) for doc in docs}
        known, late = set(record_ids), []
        for doc in self.couch.iter_prefix(self.records_db, ''):
            if doc['_id'] in known or doc['_id'].startswith('_'):
                continue
            if any(sealing.get(name) and doc.get(name) == sealing[name]
                   for name in ('client_id', 'youth_code')) \
                    and self.team_of_user(doc.get('owner')) in teams:
                late.append(doc['_id'])
        if late:
            self.registry.add(record_ids=late)
        return sorted(known | set(late))

    def shred(self, sealing: dict[str, Any], record_ids: list[str]) -> dict[str, int]:
        record_ids = self.register(sealing, record_ids)
        envelope_ids = self.envelope_ids(record_ids)
        rkids = sorted(envelope_id[len(_ENVELOPE_PREFIX):] for envelope_id in envelope_ids)
        # Tombstones and the list first: a crash after this point leaves a
        # sealing that a restore already honours, and approving it again
        # finishes the job.
        sealing.update({'status': 'approving', 'records_sealed': sorted(record_ids),
                        'rkids': sorted(set(sealing.get('rkids') or ()) | set(rkids))})
        sealing['_rev'] = self.couch.put(self.directory_db, sealing)
        existing = {row['id'] for row in self.couch.all_docs(
            self.keyvault_db, keys=[TOMBSTONE_PREFIX + rkid for rkid in rkids])
            if 'value' in row and not row['value'].get('deleted')}
        tombstones = [{'_id': TOMBSTONE_PREFIX + rkid, 'type': 'shredded',
                       'sealing': sealing['_id']}
                      for rkid in rkids if TOMBSTONE_PREFIX + rkid not in existing]
        if tombstones:
            self.couch.bulk_docs(self.keyvault_db, tombstones)
        deleted = sum(self.delete_every_leaf(self.keyvault_db, envelope_id)
                      for envelope_id in sorted(envelope_ids))
        leave_deleted_envelopes(self.couch, self.keyvault_db, envelope_ids)
        wanted = set(record_ids)
        quarantined = [doc['_id'] for doc in self.couch.iter_prefix(self.quarantine_db, 'q:')
                       if doc.get('doc_id') in envelope_ids
                       or (isinstance(doc.get('doc'), dict) and doc['doc'].get('doc') in wanted
                           and str(doc.get('doc_id', '')).startswith(_ENVELOPE_PREFIX))]
        for quarantine_id in quarantined:
            self.delete_every_leaf(self.quarantine_db, quarantine_id)
        self.compact(self.keyvault_db)
        if quarantined:
            self.compact(self.quarantine_db)
        if is_embedded(self.couch):
            # LevelDB keeps deleted bodies in its files; fresh files keep none.
            rebuild_database(self.couch, self.keyvault_db)
            if quarantined:
                rebuild_database(self.couch, self.quarantine_db)
        return {'records': len(record_ids), 'envelopes': deleted,
                'quarantined': len(quarantined)}

    def find(self, sealing_id: str, principal) -> dict[str, Any]:
        """Return a sealing the caller may see (an admin any, a supervisor their team's).

        Raises:
            SealingNotFound: No such sealing, or one of another team.
        """
        doc = None
        if _SEALING_ID.fullmatch(sealing_id):
            doc = self.couch.get_or_none(self.directory_db, f'sealing:{sealing_id}')
        if doc is None or ('admin' not in principal.roles and doc.get('team') != principal.team):
            raise SealingNotFound('No such sealing.')
        return doc

    def listed(self, principal) -> list[dict[str, Any]]:
        """Return the sealings the caller may see, in their public view."""
        return [self.shown(doc) for doc in self.couch.iter_prefix(self.directory_db, 'sealing:')
                if 'admin' in principal.roles
                or (principal.team and doc.get('team') == principal.team)]

    def propose(self, principal, client_id: str | None, youth_code: str | None,
                reason: str) -> dict[str, Any]:
        """Propose sealing one youth's records; return the stored proposal.

        Raises:
            SealingNotFound: No records of that youth on the caller's caseload.
        """
        records = self.matching_records(client_id, youth_code, principal)
        if not records:
            raise SealingNotFound('No records of that youth on your caseload.')
        sealing_id = uuid.uuid4().hex
        now = self.clock()
        # The youth's team, whatever the proposer's own: that team's
        # supervisor is the one who lists and approves it.
        team = self.youth_team(records)
        doc = {'_id': f'sealing:{sealing_id}', 'type': 'sealing', 'status': 'proposed',
               'client_id': client_id, 'youth_code': youth_code, 'reason': reason,
               'proposed_by': principal.id, 'proposed_roles': sorted(sealer_roles(principal)),
               'proposed_at': round(now, 3),
               'expires_at': round(now + self.proposal_ttl_seconds, 3), 'team': team,
               'records': len(records)}
        self.couch.put(self.directory_db, doc)
        # The audit names the sealing, never the youth's linking keys.
        self.audit.record('sealing_proposed', actor=f'user:{principal.id}',
                          subject=f'sealing:{sealing_id}', team=team,
                          details={'reason': reason, 'records': len(records)})
        return doc

    def approve(self, principal, doc: dict[str, Any]) -> dict[str, Any]:
        """Carry out a proposal as its second person; return the sealed document.

        Raises:
            SealingConflict: Sealed, running, cancelled or expired already.
            SealingForbidden: The approver is not a second, pre-existing
                person with the other role.
            SealingNotFound: The youth's records are not the approver's to seal.
        """
        if doc['status'] == 'sealed':
            raise SealingConflict('already_sealed', 'This sealing was already carried out.')
        if doc['status'] == 'approving' and doc.get('approved_by') != principal.id:
            raise SealingConflict('approval_running', 'Another approver is carrying this out.')
        if doc['status'] == 'cancelled':
            raise SealingConflict('proposal_cancelled', 'This proposal was cancelled.')
        if self.expired(doc):
            raise SealingConflict('proposal_expired',
                                  'This proposal has expired; propose the sealing again.')
        mine = sealer_roles(principal)
        theirs = set(doc.get('proposed_roles') or ())
        # APPSEC: two people, two roles: admin + supervisor in either order.
        if principal.id == doc['proposed_by'] or not any(
                a != b for a in mine for b in theirs):
            raise SealingForbidden('second_person_required',
                                   'A different person with the other role (admin or '
                                   'supervisor) must approve a sealing.')
        # APPSEC: the second person must be pre-existing staff, not an
        # account the proposer just made or re-roled; else one admin could
        # seal alone.
        if doc['status'] == 'proposed' and self.too_recent(principal.id, doc):
            raise SealingForbidden('approver_too_recent',
                                   'The approver must have held their account, roles and team '
                                   'for the waiting period before the proposal, and neither '
                                   'person may have created or changed the other in it.')
        records = self.matching_records(doc.get('client_id'), doc.get('youth_code'), principal)
        if not records:
            raise SealingNotFound('No such sealing.')
        doc['approved_by'] = principal.id
        counts = self.shred(doc, records)
        doc.update({'status': 'sealed', 'sealed_at': round(self.clock(), 3),
                    'envelopes_deleted': counts['envelopes'] + (doc.get('envelopes_deleted') or 0),
                    'records': counts['records']})
        self.couch.put(self.directory_db, doc)
        self.audit.record('youth_sealed', actor=f'user:{principal.id}',
                          subject=doc['_id'], team=doc.get('team'),
                          details={'reason': doc['reason'],
                                   'proposed_by': doc['proposed_by'], **counts})
        return doc

    def cancel(self, principal, doc: dict[str, Any]) -> dict[str, Any]:
        """Withdraw a proposal (its proposer or an admin); return the document.

        Raises:
            SealingForbidden: The caller is neither the proposer nor an admin.
            SealingConflict: The sealing is no longer a proposal, or changed.
        """
        if principal.id != doc['proposed_by'] and 'admin' not in principal.roles:
            raise SealingForbidden('not_proposer', 'Only the proposer or an admin can cancel it.')
        if doc['status'] != 'proposed':
            raise SealingConflict('not_cancellable',
                                  f"A sealing that is {doc['status']} cannot be cancelled.")
        doc.update({'status': 'cancelled', 'cancelled_by': principal.id,
                    'cancelled_at': round(self.clock(), 3)})
        try:
            self.couch.put(self.directory_db, doc)
        except DocumentConflict:
            raise SealingConflict('conflict', 'The sealing changed meanwhile; retry.') from None
        self.audit.record('sealing_cancelled', actor=f'user:{principal.id}',
                          subject=doc['_id'], team=doc.get('team'),
                          details={'reason': doc['reason']})
        return doc

    def shown(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The public view, with an expired proposal shown as ``expired``."""
        shown = public_view(doc)
        if self.expired(doc):
            shown['status'] = 'expired'
        shown['expires_at'] = doc.get('expires_at')
        return shown


def public_view(doc: dict[str, Any]) -> dict[str, Any]:
    """Return what a sealing's answer shows: ids, codes, people and counts."""
    return {'id': doc['_id'][len('sealing:'):], 'status': doc['status'],
            'client_id': doc.get('client_id'), 'youth_code': doc.get('youth_code'),
            'reason': doc['reason'], 'proposed_by': doc['proposed_by'],
            'approved_by': doc.get('approved_by'), 'records': doc.get('records', 0),
            'envelopes': doc.get('envelopes_deleted')}
