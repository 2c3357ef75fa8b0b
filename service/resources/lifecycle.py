"""Key lifecycle endpoints: recovery key record, envelope paging and rewrap
write-back, census, grant deletion (retire, revoke), rewrap-run audit.

The server still never opens anything. Rewrap happens on a supervisor's own
machine (it needs the old org key version, which only grants give back):
the server pages out ``rk:`` envelopes of one ``kek`` and accepts them back
re-sealed, with the ``_rev`` the supervisor read, through ``_bulk_docs`` so
a concurrent change answers a per-document conflict instead of being
overwritten. Record documents are never read or written here.
"""

from __future__ import annotations

import math
import time
from typing import Any

import keys
from fle import is_identifier
from keys.advocates import RECOVERY_ADVOCATE
from service.errors import ApiError
from service.keystore import ENVELOPE_PREFIX, census
from service.openapi_bodies import (MAX_PAGE, CertificateBody, RewrapRunBody, RewrappedBody,
                                    load_body)
from service.resources import ADMIN
from sync import key_policy
from sync.errors import DocumentConflict

__all__ = ['lifecycle_routes']

RECOVERY_ID = 'recovery-key'
#: Most keyvault rows one ``GET /keys/envelopes`` scans before answering.
MAX_SCAN = 5000
#: Envelope members a rewrap may change; every other member must stay as stored.
_REWRAPPED = frozenset({'kek', 'suite', 'enc', 'ct', '_rev'})
CUSTODIANS = ('supervisor',)


def _kid(value: Any, name: str) -> str:
    if not isinstance(value, str) or not is_identifier(value):
        raise ApiError(422, 'validation_failed', f'{name} must be a key id.',
                       fields={name: ['Not a valid key id.']})
    return value


def _rows_to_read(wanted: int, found: int, scanned: int) -> int:
    """Return how many keyvault rows to read for ``wanted`` more envelopes.

    Rows read beyond the last envelope a page returns are read again by the
    next page, and pouchdb-server pays for every row on its one thread (a
    fixed read of ``MAX_PAGE`` rows for a page of 500 doubled the read cost
    of a rewrap). So the first read asks for exactly ``wanted`` rows and a
    follow-up one for ``wanted`` at the match rate seen so far, plus 10%;
    when nothing has matched yet, it doubles what was scanned, so a vault
    that is mostly rewrapped already is still crossed in few reads.
    """
    if scanned == 0:
        return wanted
    if found == 0:
        return scanned
    return math.ceil(wanted * scanned / found * 1.1)


class _Base:
    def __init__(self, services, store) -> None:
        self._services = services
        self._couch = services.couch
        self._keyvault_db = services.db('keyvault')
        self._directory_db = services.db('directory')
        self._records_db = services.db('records')
        self._store = store
        self._audit = services.audit

    def _manifest_or_409(self) -> dict[str, Any]:
        body = self._store.manifest_body()
        if body is None:
            raise ApiError(409, 'no_manifest', 'No key manifest is published yet.')
        return body


class RecoveryResource(_Base):
    """``GET``/``PUT /keys/recovery``: the recovery key's public record,
    certified by the org signing key (so a server cannot substitute its own:
    the admin's CLI verifies the certificate against the pinned signer)."""

    auth = {'GET': ADMIN, 'PUT': ADMIN}

    def on_get(self, req, resp):
        doc = self._couch.get_or_none(self._directory_db, RECOVERY_ID)
        if doc is None:
            raise ApiError(404, 'not_found', 'No recovery key is registered.')
        resp.media = {'certificate': doc['certificate']}

    def on_put(self, req, resp):
        body = load_body(req, CertificateBody)
        certified = keys.verify_certificate(body['certificate'], self._store.signer_public())
        if certified['advocate'] != RECOVERY_ADVOCATE:
            raise ApiError(422, 'key_mismatch', 'The certificate is not for the recovery key.')
        existing = self._couch.get_or_none(self._directory_db, RECOVERY_ID)
        doc = {'_id': RECOVERY_ID, 'type': 'recovery-key', 'certificate': body['certificate']}
        if existing is not None:
            doc['_rev'] = existing['_rev']
        try:
            self._couch.put(self._directory_db, doc)
        except DocumentConflict:
            raise ApiError(409, 'conflict', 'The recovery key changed concurrently; retry.') \
                from None
        self._audit.record('recovery_key_registered', actor=f'user:{req.context.principal.id}',
                           details={'apk': certified['apk'],
                                    'fingerprint': certified['fingerprint']})
        resp.media = {'apk': certified['apk'], 'fingerprint': certified['fingerprint']}


def team_envelope_ids(couch, records_db: str, directory_db: str, docs: list[dict[str, Any]],
                      team: str | None) -> set[str]:
    """Return the ids of the envelopes in ``docs`` whose record belongs to ``team``.

    A record belongs to its owner's team; an envelope whose record or owner
    is unknown belongs to no team, and a caller without a team gets nothing.
    """
    if not team or not docs:
        return set()
    record_ids = sorted({doc['doc'] for doc in docs if isinstance(doc.get('doc'), str)})
    owners = {row['id']: row['doc'].get('owner') for row in couch.all_docs(
        records_db, keys=record_ids, include_docs=True) if row.get('doc')}
    user_ids = sorted({f'user:{owner}' for owner in owners.values() if isinstance(owner, str)})
    teams = {row['id'][len('user:'):]: row['doc'].get('team') for row in couch.all_docs(
        directory_db, keys=user_ids, include_docs=True) if row.get('doc')}
    return {doc['_id'] for doc in docs
            if teams.get(owners.get(doc.get('doc'))) == team}


class EnvelopesResource(_Base):
    """``GET /keys/envelopes?kek=K&limit=N&after=ID``: one page of envelopes
    sealed to ``kek``, in ``_id`` order after ``after``, for rewrap.

    A custodian receives only the envelopes of their own team's records (a
    record belongs to its owner's team), and every page released is audited
    like a record release (``envelopes_released``: the key version, the
    purpose ``rewrap`` and the record ids, never a value).

    At most ``MAX_SCAN`` keyvault rows are scanned per call, so a page may
    hold fewer than ``limit`` envelopes; ``next`` is the cursor to pass as
    ``after`` and is null once the key vault is exhausted.
    """

    auth = {'GET': CUSTODIANS}

    def on_get(self, req, resp):
        kek = _kid(req.get_param('kek'), 'kek')
        try:
            limit = int(req.get_param('limit') or 500)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_PAGE:
            raise ApiError(422, 'validation_failed', f'limit must be 1 to {MAX_PAGE}.',
                           fields={'limit': [f'Send 1 to {MAX_PAGE}.']})
        after = req.get_param('after')
        if after is not None and not after.startswith(ENVELOPE_PREFIX):
            raise ApiError(422, 'validation_failed', 'after must be an envelope id.',
                           fields={'after': ['Send the "next" cursor of the previous page.']})
        principal = req.context.principal
        found: list[dict[str, Any]] = []
        scanned = 0
        start, skip = (after, 1) if after else (ENVELOPE_PREFIX, 0)
        cursor: str | None = after
        exhausted = False
        while len(found) < limit and scanned < MAX_SCAN:
            chunk = min(MAX_PAGE, MAX_SCAN - scanned,
                        _rows_to_read(limit - len(found), len(found), scanned))
            rows = self._couch.all_docs(self._keyvault_db, include_docs=True, start_key=start,
                                        end_key=ENVELOPE_PREFIX + '\ufff0', limit=chunk,
                                        skip=skip)
            # APPSEC: a custodian rewraps their own team's envelopes only.
            ours = team_envelope_ids(
                self._couch, self._records_db, self._directory_db,
                [row['doc'] for row in rows if row.get('doc') and row['doc'].get('kek') == kek],
                principal.team)
            for row in rows:
                scanned += 1
                cursor = row['id']
                doc = row.get('doc')
                if doc and doc.get('kek') == kek and row['id'] in ours:
                    found.append(doc)
                    if len(found) >= limit:
                        break
            if len(rows) < chunk and (not rows or cursor == rows[-1]['id']):
                exhausted = True
                break
            start, skip = cursor, 1
        if found:
            self._audit.record('envelopes_released', actor=f'user:{principal.id}',
                               team=principal.team,
                               details={'kek': kek, 'purpose': 'rewrap', 'count': len(found),
                                        'records': sorted({doc.get('doc') for doc in found
                                                           if isinstance(doc.get('doc'), str)})})
        resp.media = {'envelopes': found, 'next': None if exhausted else cursor,
                      'scanned': scanned}


class RewrappedResource(_Base):
    """``POST /keys/envelopes/rewrapped``: write back re-sealed envelopes.

    Body ``{"from": OLD, "to": NEW, "envelopes": [...]}``. Each envelope must
    carry the ``_rev`` it was read at, be sealed to the manifest's active key
    ``to``, and differ from the stored one only in ``kek``, ``suite``,
    ``enc`` and ``ct``; the stored one must still be sealed to ``from``.
    Writing goes through ``_bulk_docs`` with those ``_rev``s, so a document
    changed meanwhile is answered as a conflict, never overwritten.
    """

    auth = {'POST': CUSTODIANS}

    def on_post(self, req, resp):
        body = load_body(req, RewrappedBody)
        old, new, envelopes = body['from'], body['to'], body['envelopes']
        manifest = self._manifest_or_409()
        status = {entry['kid']: entry['status'] for entry in manifest['keys']}
        if status.get(new) != 'active':
            raise ApiError(422, 'not_active', 'Rewrap must seal to the active key version.',
                           fields={'to': ['Not the active key of the manifest.']})
        if status.get(old) not in ('decrypt-only', 'retired') or old == new:
            raise ApiError(422, 'validation_failed', 'from must be a demoted key version.',
                           fields={'from': ['Not a decrypt-only key of the manifest.']})
        problems: dict[str, list[str]] = {}
        for index, envelope in enumerate(envelopes):
            try:
                keys.validate_envelope(envelope)
            except keys.errors.KeysError as ex:
                problems[str(index)] = [str(ex)]
                continue
            if not isinstance(envelope.get('_rev'), str) or envelope['kek'] != new:
                problems[str(index)] = ['Send the _rev read, sealed to the "to" key.']
        ids = [envelope['_id'] for envelope in envelopes if isinstance(envelope.get('_id'), str)]
        if not problems and len(set(ids)) != len(ids):
            problems['_schema'] = ['An envelope is listed twice.']
        if problems:
            raise ApiError(422, 'invalid_envelope', 'Some envelopes were refused.',
                           fields={'envelopes': problems})
        # The current winning revision of each envelope; missing and deleted
        # ids are absent, so they are reported as conflicts below.
        stored = self._couch.current_docs(self._keyvault_db, ids)
        to_write, conflicts, mismatched = [], [], []
        for envelope in envelopes:
            current = stored.get(envelope['_id'])
            if current is None or current['_rev'] != envelope['_rev'] \
                    or current.get('kek') != old:
                conflicts.append(envelope['_id'])
                continue
            same = {k: v for k, v in current.items() if k not in _REWRAPPED}
            if same != {k: v for k, v in envelope.items() if k not in _REWRAPPED}:
                mismatched.append(envelope['_id'])
                continue
            to_write.append(envelope)
        written = 0
        if to_write:
            for result in self._couch.bulk_docs(self._keyvault_db, to_write):
                if result.get('error'):
                    conflicts.append(result.get('id'))
                else:
                    written += 1
        resp.media = {'written': written, 'conflicts': conflicts, 'refused': mismatched}

class CensusResource(_Base):
    """``GET /keys/census``: envelopes per key version (counts only)."""

    auth = {'GET': ('supervisor', 'admin')}

    def on_get(self, req, resp):
        counts = census(self._couch, self._keyvault_db)
        resp.media = {'census': counts, 'total': sum(counts.values())}


class RewrapRunsResource(_Base):
    """``POST /keys/rewrap-runs``: a custodian's CLI reports a rewrap run's
    start or end for the audit log (counts and key ids only)."""

    auth = {'POST': CUSTODIANS}

    def on_post(self, req, resp):
        body = load_body(req, RewrapRunBody)
        old, new = body['from'], body['to']
        counts = body.get('counts', {})
        census_ = body.get('census', {})
        principal = req.context.principal
        self._audit.record('rewrap_run', actor=f'user:{principal.id}', team=principal.team,
                           details={'from': old, 'to': new, 'phase': body['phase'],
                                    'counts': counts, 'census': census_})
        resp.status = 201
        resp.media = {'recorded': True}


class KeyGrantsResource(_Base):
    """``DELETE /keys/grants/{kek}``: retire step, delete every grant of a
    key version. Refused while the key is active, while its
    ``accept_until`` has not passed, or while any envelope is still sealed
    to it (deleting its grants then would lose those records)."""

    auth = {'DELETE': ADMIN}

    def on_delete(self, req, resp, kek):
        kek = _kid(kek, 'kek')
        manifest = self._manifest_or_409()
        entry = next((item for item in manifest['keys'] if item['kid'] == kek), None)
        if entry is None:
            raise ApiError(404, 'not_found', 'The manifest lists no such key version.')
        if entry['status'] == 'active':
            raise ApiError(409, 'key_active', 'The active key version cannot be retired.')
        if entry['status'] == 'decrypt-only' and (
                'accept_until' not in entry
                or not key_policy.accept_until_passed(entry['accept_until'], time.time())):
            raise ApiError(409, 'still_accepting',
                           'The key version still accepts new envelopes (accept_until).')
        remaining = census(self._couch, self._keyvault_db).get(kek, 0)
        if remaining:
            raise ApiError(409, 'envelopes_remain',
                           f'{remaining} envelopes are still sealed to this key version; '
                           'run `fieldvault keys rewrap` first.')
        grants = list(self._couch.iter_prefix(self._keyvault_db, f'grant:{kek}:'))
        deleted = _delete_docs(self._couch, self._keyvault_db, grants)
        self._audit.record('grants_deleted', actor=f'user:{req.context.principal.id}',
                           details={'kek': kek, 'count': deleted, 'reason': 'retire'})
        resp.media = {'kek': kek, 'deleted': deleted}


class AdvocateGrantsResource(_Base):
    """``DELETE /advocates/keys/{advocate}/grants``: revocation step, delete
    every grant of one advocate (all versions) and mark their key revoked so
    the next rotation seals no grant to it. Refused with 409 ``recovery_only``
    when it would leave a version with live envelopes held by no active
    staff, unless ``?accept_recovery_only=true``."""

    auth = {'DELETE': ADMIN}

    def on_delete(self, req, resp, advocate):
        if advocate == RECOVERY_ADVOCATE:
            raise ApiError(422, 'validation_failed', 'The recovery key cannot be revoked here.',
                           fields={'advocate': ['Not an advocate.']})
        from service.resources.custody import custody_of, refuse_recovery_only
        refuse_recovery_only(custody_of(self._services), self._audit, req, {advocate},
                             action='advocate_revoke', subject=f'user:{advocate}')
        grants = self._store.grants_for(advocate)
        deleted = _delete_docs(self._couch, self._keyvault_db, grants)
        key_doc = self._store.advocate_key(advocate)
        if key_doc is not None and key_doc.get('status') != 'revoked':
            key_doc['status'] = 'revoked'
            self._store.put_directory(key_doc)
        self._audit.record('grants_deleted', actor=f'user:{req.context.principal.id}',
                           subject=f'user:{advocate}',
                           details={'count': deleted, 'keks': sorted(g['kek'] for g in grants),
                                    'reason': 'revoke'})
        resp.media = {'advocate': advocate, 'deleted': deleted,
                      'key': 'revoked' if key_doc is not None else None}


class GrantResource(_Base):
    """``DELETE /keys/grants/{kek}/{advocate}``: remove one grant (admin, audited).

    For a stray or mistaken grant (one version, one person); revoking a
    person uses ``/advocates/keys/{advocate}/grants``, retiring a version
    ``/keys/grants/{kek}``.
    """

    auth = {'DELETE': ADMIN}

    def on_delete(self, req, resp, kek, advocate):
        kek = _kid(kek, 'kek')
        if not is_identifier(advocate):
            raise ApiError(422, 'validation_failed', 'advocate must be a user name.',
                           fields={'advocate': ['Not a valid identifier.']})
        grant = self._couch.get_or_none(self._keyvault_db, f'grant:{kek}:{advocate}')
        if grant is None:
            raise ApiError(404, 'not_found', 'No such grant.')
        deleted = _delete_docs(self._couch, self._keyvault_db, [grant])
        self._audit.record('grant_removed', actor=f'user:{req.context.principal.id}',
                           subject=f'user:{advocate}', details={'kek': kek})
        resp.media = {'kek': kek, 'advocate': advocate, 'deleted': deleted}


def _delete_docs(couch, db: str, docs: list[dict[str, Any]]) -> int:
    if not docs:
        return 0
    results = couch.bulk_docs(db, [{'_id': doc['_id'], '_rev': doc['_rev'], '_deleted': True}
                                   for doc in docs])
    if any(result.get('error') for result in results):
        raise ApiError(409, 'conflict', 'Some grants changed concurrently; retry.')
    return len(results)


def lifecycle_routes(services, store) -> list[tuple[str, Any]]:
    """Return the key lifecycle routes."""
    return [
        ('/keys/recovery', RecoveryResource(services, store)),
        ('/keys/envelopes', EnvelopesResource(services, store)),
        ('/keys/envelopes/rewrapped', RewrappedResource(services, store)),
        ('/keys/census', CensusResource(services, store)),
        ('/keys/rewrap-runs', RewrapRunsResource(services, store)),
        ('/keys/grants/{kek}', KeyGrantsResource(services, store)),
        ('/keys/grants/{kek}/{advocate}', GrantResource(services, store)),
        ('/advocates/keys/{advocate}/grants', AdvocateGrantsResource(services, store)),
    ]
