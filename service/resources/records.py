"""Record validation (and, with encryption, desk intake and opening)."""

from __future__ import annotations

import re
import time
import uuid

import keys
import schemas
from schemas import lifecycle
from schemas.codes import RELEASE_PURPOSES
from schemas.fields import DocumentId
from service.errors import ApiError
from service.program import CaptureGuards
from service.resources import ALL_STAFF
from sync import filtering, key_policy
from sync.errors import DocumentConflict
from sync.sealed import LateArrivals, SealedRegistry

#: CouchDB revision metadata: a document carrying any of it is an edit.
_REVISION_FIELDS = frozenset({'_rev', '_revisions', '_deleted', '_conflicts'})
#: Why a released record could not be opened on the caller's machine (codes only).
OPEN_FAILURES = ('no_grant', 'grant_unopenable', 'record_unopenable')

_RECORD_ID = re.compile(DocumentId.PATTERN.strip('^$'))


class ValidateResource:
    """``POST /records/validate``: check a document as it would be stored.

    Identifying fields must already be sealed (fle/1): plaintext there is
    refused with 422 naming the field, so identifying values never need to
    reach the server in the clear.
    """

    auth = {'POST': tuple(role for role in ALL_STAFF if role != 'liaison')}

    def on_post(self, req, resp):
        body = req.get_media()
        if not isinstance(body, dict):
            raise ApiError(422, 'validation_failed', 'A JSON object is required.',
                           fields={'_schema': ['Send a JSON object.']})
        document = schemas.validate_document(body, sealed=True)
        resp.media = {'valid': True, 'type': document['type'], 'schema': document['schema']}


class RecordsResource:
    """``POST /records``: desk intake of a record sealed on the sender's machine.

    The body is ``{"document": <sealed record>, "envelopes": [<rk: docs>]}``.
    The document is validated as stored (identifying fields must be sealed),
    each envelope must be well formed, belong to this document, be listed in
    its ``fle`` header, and name a key the current manifest accepts.

    Desk intake creates records; it never edits one. A document carrying
    CouchDB revision metadata is refused, so nobody can overwrite a stored
    record (someone else's included) by sending its current ``_rev``. The
    record is stored first and its envelopes after it: an id that exists
    (the same file submitted twice) is refused before any envelope is
    written, and if an envelope cannot be stored the new record is deleted
    again, so a refusal leaves neither an orphan envelope nor a record no
    key opens.

    Nothing is added for a sealed youth: the gateway's sealing rule
    (``sync.sealed``) applies here too, so a record of a sealed youth, or an
    envelope a sealing shredded, is refused with 403 naming the rule
    (``youth_sealed``, ``envelope_deleted``) and quarantined without key
    material.
    """

    auth = {'POST': ('worker', 'advocate', 'supervisor')}

    def __init__(self, services, key_store) -> None:
        self._couch = services.couch
        self._records_db = services.db('records')
        self._keyvault_db = services.db('keyvault')
        self._key_store = key_store
        self._audit = services.audit
        self._quarantine_db = services.db('quarantine')
        self._sealed = SealedRegistry(services.couch, services.db('directory'),
                                      services.device_watch)
        self._guards = CaptureGuards(services)

    def on_post(self, req, resp):
        body = req.get_media()
        if not isinstance(body, dict) or set(body) != {'document', 'envelopes'} \
                or not isinstance(body['document'], dict) or not isinstance(body['envelopes'], list):
            raise ApiError(422, 'validation_failed', 'Send "document" and "envelopes".',
                           fields={'_schema': ['Send exactly "document" (object) and '
                                               '"envelopes" (list).']})
        principal = req.context.principal
        revision_fields = sorted(_REVISION_FIELDS & set(body['document']))
        if revision_fields:
            raise ApiError(422, 'new_record_only', 'Desk intake creates new records only.',
                           fields={name: ['Not allowed: desk intake never edits a stored '
                                          'record.'] for name in revision_fields})
        document = schemas.validate_document(body['document'], sealed=True)
        if document.get('owner') != principal.id:
            raise ApiError(422, 'foreign_owner', 'The owner of a submitted record must be you.',
                           fields={'owner': ['Must be the submitting user.']})
        refused = lifecycle.capture_refusal(document, by=principal.id, roles=principal.roles)
        if refused is not None:
            raise ApiError(403, *refused)
        failed = self._guards(document, None)
        if failed is not None:
            raise ApiError(409, 'transition_refused', failed[1], fields={'guard': [failed[0]]})
        listed = set((document.get('fle') or {}).get('keys', {}))
        manifest = self._key_store.manifest_body()
        accepted = {entry['kid'] for entry in (manifest or {}).get('keys', [])
                    if entry['status'] in ('active', 'decrypt-only')}
        now = time.time()
        for index, envelope in enumerate(body['envelopes']):
            keys.validate_envelope(envelope)
            problems = []
            if envelope['doc'] != document['_id']:
                problems.append('The envelope belongs to another document.')
            if envelope['rkid'] not in listed:
                problems.append('The envelope is not listed in the document header.')
            if envelope['kek'] not in accepted:
                problems.append('The envelope is sealed to a key the manifest does not accept.')
            else:
                late = key_policy.check_envelope_key(envelope, manifest, now)
                if late is not None:
                    problems.append(str(late))
            if problems:
                raise ApiError(422, 'invalid_envelope', 'An envelope was refused.',
                               fields={'envelopes': {str(index): problems}})
        missing = listed - {envelope['rkid'] for envelope in body['envelopes']}
        if missing:
            raise ApiError(422, 'missing_envelope',
                           'Every record key in the header needs its envelope.',
                           fields={'envelopes': ['An envelope is missing for a header key.']})
        self._refuse_late_arrival(principal, document, body['envelopes'])
        try:
            rev = self._couch.put(self._records_db, document)
        except DocumentConflict:
            raise ApiError(409, 'conflict', 'A record with that id exists.') from None
        results = self._couch.bulk_docs(self._keyvault_db, body['envelopes'])
        if any(result.get('error') for result in results):
            stored = [{'_id': result['id'], '_rev': result['rev'], '_deleted': True}
                      for result in results if not result.get('error')]
            self._couch.bulk_docs(self._keyvault_db, stored)
            self._couch.delete(self._records_db, document['_id'], rev)
            raise ApiError(409, 'conflict', 'An envelope with that id exists.')
        self._audit.record('record_submitted', actor=f'user:{principal.id}',
                           subject=document['_id'], team=principal.team,
                           details={'type': document['type'], 'envelopes': len(results)})
        resp.status = 201
        resp.location = f'/records/{document["_id"]}'
        resp.media = {'id': document['_id']}


    def _refuse_late_arrival(self, principal, document, envelopes) -> None:
        """Refuse a submission that would add anything for a sealed youth.

        The same rule as a sync push: the record of a sealed youth (by
        linking key or id), and any envelope a sealing shredded (keyvault
        holds it deleted, so it could otherwise be written again). The
        whole submission goes to quarantine, the record as the gateway keeps
        one, every envelope as metadata only.

        Raises:
            ApiError: 403 naming the rule.
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
        raise ApiError(403, refusal.rule, refusal.reason)


def _team_record(couch, records_db: str, directory_db: str, record_id: str, team):
    """Return the record when it belongs to ``team``; else answer 404.

    APPSEC: a record outside the caller's team answers exactly like a
    missing one, so ids cannot be probed.
    """
    document = couch.get_or_none(records_db, record_id)
    owner = couch.get_or_none(directory_db, f'user:{document["owner"]}') if document else None
    if document is None or owner is None or owner.get('team') is None \
            or owner.get('team') != team:
        raise ApiError(404, 'not_found', 'No such record on your caseload.')
    return document


class RecordOpenResource:
    """``POST /records/{record_id}/open``: release a record and its envelopes.

    Only an advocate or supervisor of the record owner's team, stating a
    purpose, receives them; the release is audited as ``record_released``
    (who, which record, the purpose, when): the server hands out ciphertext,
    and whether it opened is only known on the caller's machine, which
    reports a failure through ``/records/{record_id}/open-failures``. The purpose is one of ``schemas.codes.RELEASE_PURPOSES``,
    never free text: the audit log must hold no identifying value, and a
    typed reason could name the youth. The server hands out ciphertext only:
    decryption happens on the advocate's machine.
    """

    auth = {'POST': ('advocate', 'supervisor')}
    openapi_request = {'POST': {
        'type': 'object', 'required': ['purpose'], 'additionalProperties': False,
        'properties': {'purpose': {'type': 'string', 'enum': list(RELEASE_PURPOSES)}}}}

    def __init__(self, services) -> None:
        self._couch = services.couch
        self._records_db = services.db('records')
        self._keyvault_db = services.db('keyvault')
        self._directory_db = services.db('directory')
        self._audit = services.audit

    def on_post(self, req, resp, record_id):
        body = req.get_media()
        purpose = body.get('purpose') if isinstance(body, dict) else None
        # The refusal lists the codes and never repeats what was sent.
        if purpose not in RELEASE_PURPOSES or set(body) != {'purpose'}:
            raise ApiError(422, 'purpose_required', 'State the purpose of this release as one '
                                                    'of the listed codes.',
                           fields={'purpose': [f'Must be one of: {", ".join(RELEASE_PURPOSES)}.']})
        principal = req.context.principal
        # Only a record id reaches the database: "_all_docs", "_design/..."
        # and the like would address something else.
        document = self._couch.get_or_none(self._records_db, record_id) \
            if _RECORD_ID.fullmatch(record_id) else None
        owner_name = document.get('owner') if document else None
        owner = self._couch.get_or_none(self._directory_db, f'user:{owner_name}') \
            if isinstance(owner_name, str) else None
        # APPSEC: a record outside the caller's team answers exactly like a
        # missing one, so ids cannot be probed.
        if document is None or owner is None or owner.get('team') is None \
                or owner.get('team') != principal.team:
            raise ApiError(404, 'not_found', 'No such record on your caseload.')
        rkids = list((document.get('fle') or {}).get('keys', {}))
        rows = self._couch.all_docs(self._keyvault_db, keys=[f'rk:{rkid}' for rkid in rkids],
                                    include_docs=True)
        envelopes = [row['doc'] for row in rows if row.get('doc')]
        # Only a sealing deletes envelopes, and it leaves a deleted one for
        # every key it shredded (a key-vault restore puts them back too).
        if rkids and all(isinstance(row.get('value'), dict) and row['value'].get('deleted')
                         for row in rows):
            # Nothing to release: say why, rather than hand over ciphertext
            # that no key opens any more and let the advocate's CLI report a
            # key failure.
            raise ApiError(410, 'sealed', "This youth's records were sealed: their identifying "
                                          'fields can no longer be opened.')
        self._audit.record('record_released', actor=f'user:{principal.id}', subject=record_id,
                           team=principal.team, details={'purpose': purpose,
                                                         'envelopes': len(envelopes)})
        resp.media = {'document': document, 'envelopes': envelopes}


class RecordOpenFailureResource:
    """``POST /records/{record_id}/open-failures``: the caller's CLI reports
    that a record released to it could not be opened locally.

    The body is ``{"code": ...}``, one of ``OPEN_FAILURES``, never a value or
    free text; audited as ``record_open_failed`` with the record id and code.
    The same team rule as the release applies.
    """

    auth = {'POST': ('advocate', 'supervisor')}
    openapi_request = {'POST': {
        'type': 'object', 'required': ['code'], 'additionalProperties': False,
        'properties': {'code': {'type': 'string', 'enum': list(OPEN_FAILURES)}}}}

    def __init__(self, services) -> None:
        self._couch = services.couch
        self._records_db = services.db('records')
        self._directory_db = services.db('directory')
        self._audit = services.audit

    def on_post(self, req, resp, record_id):
        body = req.get_media()
        code = body.get('code') if isinstance(body, dict) else None
        if code not in OPEN_FAILURES or set(body) != {'code'}:
            raise ApiError(422, 'validation_failed', 'Report one of the listed codes.',
                           fields={'code': [f'Must be one of: {", ".join(OPEN_FAILURES)}.']})
        principal = req.context.principal
        _team_record(self._couch, self._records_db, self._directory_db, record_id,
                     principal.team)
        self._audit.record('record_open_failed', actor=f'user:{principal.id}',
                           subject=record_id, team=principal.team, details={'code': code})
        resp.status = 201
        resp.media = {'recorded': True}
