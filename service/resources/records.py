"""Record validation (and, with encryption, desk intake and opening)."""

from __future__ import annotations


import schemas
from schemas import lifecycle
from service.errors import ApiError
from service.intake import DeskIntake
from service.keystore import envelope_rows
from service.openapi_bodies import OpenFailureBody, RecordIntakeBody, ReleaseBody, load_body
from service.resources import ALL_STAFF
from service.teams import team_record
from sync.errors import DocumentConflict

#: CouchDB revision metadata: a document carrying any of it is an edit.
_REVISION_FIELDS = frozenset({'_rev', '_revisions', '_deleted', '_conflicts'})


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
    material. The rules are ``service.intake``'s, shared with desk correction.
    """

    auth = {'POST': ('worker', 'advocate', 'supervisor')}

    def __init__(self, services, intake: DeskIntake) -> None:
        self._couch = services.couch
        self._records_db = services.db('records')
        self._keyvault_db = services.db('keyvault')
        self._intake = intake
        self._audit = services.audit

    def on_post(self, req, resp):
        body = load_body(req, RecordIntakeBody)
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
        self._intake.check_guards(document)
        self._intake.check_envelopes(
            document, body['envelopes'], expected=(document.get('fle') or {}).get('keys', {}),
            unexpected_reason='The envelope is not listed in the document header.')
        self._intake.refuse_late_arrival(principal, document, body['envelopes'])
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
    openapi_request = {'POST': 'ReleaseBody'}

    def __init__(self, services) -> None:
        self._couch = services.couch
        self._records_db = services.db('records')
        self._keyvault_db = services.db('keyvault')
        self._directory_db = services.db('directory')
        self._audit = services.audit

    def on_post(self, req, resp, record_id):
        purpose = load_body(req, ReleaseBody)['purpose']
        principal = req.context.principal
        document = team_record(self._couch, self._records_db, self._directory_db, record_id,
                               principal.team)
        rkids = list((document.get('fle') or {}).get('keys', {}))
        rows = envelope_rows(self._couch, self._keyvault_db, rkids)
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

    The body is ``{"code": ...}``, one of ``schemas.codes.OPEN_FAILURES``, never a value or
    free text; audited as ``record_open_failed`` with the record id and code.
    The same team rule as the release applies.
    """

    auth = {'POST': ('advocate', 'supervisor')}
    openapi_request = {'POST': 'OpenFailureBody'}

    def __init__(self, services) -> None:
        self._couch = services.couch
        self._records_db = services.db('records')
        self._directory_db = services.db('directory')
        self._audit = services.audit

    def on_post(self, req, resp, record_id):
        code = load_body(req, OpenFailureBody)['code']
        principal = req.context.principal
        team_record(self._couch, self._records_db, self._directory_db, record_id,
                    principal.team)
        self._audit.record('record_open_failed', actor=f'user:{principal.id}',
                           subject=record_id, team=principal.team, details={'code': code})
        resp.status = 201
        resp.media = {'recorded': True}
