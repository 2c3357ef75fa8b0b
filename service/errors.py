"""HTTP errors and the one boundary that maps domain errors to them.

Every 4xx and 5xx body has one shape::

    {"code": "validation_failed", "title": "Unprocessable Entity",
     "description": "The document does not match its schema.",
     "fields": {"age": ["Not a valid integer."]}}

``fields`` appears on 422 only. Under ``/sync/`` the body also carries
CouchDB's ``error`` and ``reason`` keys, because PouchDB and the CouchDB
replicator read those. Domain errors from ``schemas``, ``keys``, ``sync`` and
the service's own modules (key store, desk intake, program) are mapped here once; their text is never copied into a body unless the domain
error is declared safe (its messages name fields and rules, never values).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import falcon

from keys.errors import InvalidCiphertext, InvalidKeyMaterial, InvalidManifest, KeysError
from schemas.errors import SchemaValidationError, UnknownSchema
from schemas.lifecycle import TransitionRefused
from service.accounts import AccountError, Forbidden, LoginThrottled, NotAuthenticated
from service.openapi_bodies import RequestBodyInvalid
from service.envelope_policy import EnvelopeRefused
from service.intake import LateArrivalRefused
from service.keystore import GrantExists, NoSigner
from service.program import ProgramError
from service.sealing import SealingConflict, SealingError, SealingForbidden, SealingNotFound
from service.teams import NotOnCaseload
from sync.errors import DatabaseUnavailable, DocumentConflict, DocumentNotFound, SyncError

__all__ = ['ApiError', 'install_error_handling', 'public_fields']

log = logging.getLogger('fieldvault.errors')


class ApiError(falcon.HTTPError):
    """An HTTP error with a stable machine-readable ``code``.

    Args:
        status: HTTP status line or code.
        code: Snake-case token clients can branch on.
        description: One sentence for a person; never a submitted value.
        fields: Per-field messages (422 only).
        headers: Extra response headers.
    """

    def __init__(
        self,
        status: int | str,
        code: str,
        description: str,
        *,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, description=description, headers=headers)
        # falcon declares HTTPError.code an int but writes whatever it holds;
        # this API's codes are snake-case strings.
        self.code = code  # type: ignore[assignment]
        self.fields = fields

    def to_dict(self, obj_type=dict):
        body = super().to_dict(obj_type)
        body['code'] = self.code
        if self.fields is not None:
            body['fields'] = public_fields(self.fields)
        return body


def _code_for(ex: falcon.HTTPError) -> str:
    code = getattr(ex, 'code', None)
    if code:
        return code
    # Falcon titles read "404 Not Found"; the code is the words only.
    title = re.sub(r'^\d+\s*', '', ex.title or 'error')
    return re.sub(r'[^a-z0-9]+', '_', title.lower()).strip('_')


#: A member name safe to repeat: the names our schemas and resources declare,
#: or a list index (resources key per-item messages by the item's position).
_MEMBER_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]{0,63}|[0-9]{1,6}')
#: Messages that mean "a member you sent is not one we know".
_UNKNOWN_MESSAGES = frozenset({'Unknown field.', 'Unknown parameter.'})


def public_fields(fields: Any) -> Any:
    """Return per-field messages that repeat no submitted member name.

    Marshmallow and the resources key their messages by member name, and an
    unknown member's name is whatever the client sent (a youth's name, say).
    Unknown members are counted under ``_unknown``; any other key that is not
    a declared-looking name (or a list index) is counted under ``_invalid``,
    and so is a key whose messages are only about it as a mapping key or
    value (marshmallow's ``{"key": ..., "value": ...}`` shape).
    """
    if not isinstance(fields, dict):
        return fields
    public: dict[Any, Any] = {}
    unknown = invalid = 0
    for name, messages in fields.items():
        if isinstance(messages, list) and messages and all(
                isinstance(message, str) and message in _UNKNOWN_MESSAGES
                for message in messages):
            unknown += len(messages)
        elif isinstance(name, int) and not isinstance(name, bool):
            public[name] = public_fields(messages)
        elif isinstance(name, str) and _MEMBER_NAME.fullmatch(name) and not (
                isinstance(messages, dict) and messages
                and set(messages) <= {'key', 'value'}):
            public[name] = public_fields(messages)
        else:
            invalid += 1
    if unknown:
        public['_unknown'] = [f'{unknown} unknown member(s); send only the documented ones.']
    if invalid:
        public['_invalid'] = [f'{invalid} member(s) whose names are not repeated are not valid.']
    return public


def _serialize(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError) -> None:
    """Write every error in the one JSON shape (CouchDB keys under /sync)."""
    body: dict[str, Any] = {
        'code': _code_for(ex),
        'title': ex.title,
        'description': ex.description or ex.title,
    }
    fields = getattr(ex, 'fields', None)
    if fields is not None:
        # APPSEC: every 422 passes here, so no responder can repeat a
        # submitted member name, whoever built its message dict.
        body['fields'] = public_fields(fields)
    if req.path.startswith('/sync'):
        # PouchDB stops for good on "unauthorized"/"forbidden" and retries
        # anything else, so refused credentials must use CouchDB's names.
        couch_names = {401: 'unauthorized', 403: 'forbidden'}
        body['error'] = couch_names.get(int(str(ex.status).split()[0]), body['code'])
        body['reason'] = body['description']
    resp.content_type = falcon.MEDIA_JSON
    resp.media = body


def _raise(status, code, description, *, fields=None, headers=None):
    raise ApiError(status, code, description, fields=fields, headers=headers)


def _on_schema_invalid(req, resp, ex: SchemaValidationError, params):
    # APPSEC: schema messages are data written by us and name fields and
    # rules only; a test plants canary values and checks they never appear.
    _raise(422, 'validation_failed', 'The document does not match its schema.', fields=ex.messages)


def _on_body_invalid(req, resp, ex: RequestBodyInvalid, params):
    # Marshmallow's messages name members and rules; public_fields (in
    # ApiError) counts the members a client named itself.
    _raise(422, ex.code, ex.description, fields=ex.messages)


def _on_transition_refused(req, resp, ex: TransitionRefused, params):
    # The guard's message is written by us and names the rule, never a value.
    _raise(409, 'transition_refused', ex.message, fields={'guard': [ex.guard]})


def _on_program_error(req, resp, ex: ProgramError, params):
    _raise(ex.status, ex.code, ex.message, fields=ex.fields)


def _on_no_signer(req, resp, ex: NoSigner, params):
    _raise(409, 'no_signer', ex.message)


def _on_grant_exists(req, resp, ex: GrantExists, params):
    _raise(409, 'grant_exists', ex.message)


def _on_envelope_refused(req, resp, ex: EnvelopeRefused, params):
    _raise(422, ex.code, ex.message, fields=ex.fields)


def _on_late_arrival(req, resp, ex: LateArrivalRefused, params):
    # The sealing rules' reasons are written by us and name no value.
    _raise(403, ex.rule, ex.reason)


#: The HTTP status of each kind of refused sealing request.
_SEALING_STATUS = {SealingNotFound: 404, SealingForbidden: 403, SealingConflict: 409}


def _on_sealing_error(req, resp, ex: SealingError, params):
    # Sealing messages are written by us and name rules, never a youth.
    _raise(_SEALING_STATUS.get(type(ex), 409), ex.code, ex.message)


def _on_not_on_caseload(req, resp, ex: NotOnCaseload, params):
    # APPSEC: another team's record answers exactly like a missing one.
    _raise(404, 'not_found', 'No such record on your caseload.')


def _on_unknown_schema(req, resp, ex: UnknownSchema, params):
    _raise(422, 'unknown_schema', 'The document names an unknown type or schema version.')


def _on_key_material(req, resp, ex: InvalidKeyMaterial, params):
    _raise(422, 'invalid_key_material', str(ex))


def _on_manifest(req, resp, ex: InvalidManifest, params):
    _raise(422, 'invalid_manifest', 'The manifest signature or sequence is not acceptable.')


def _on_ciphertext(req, resp, ex: InvalidCiphertext, params):
    _raise(422, 'invalid_ciphertext', 'The sealed value could not be verified.')


def _on_keys_error(req, resp, ex: KeysError, params):
    _raise(422, 'key_error', 'The key material was refused.')


def _on_not_authenticated(req, resp, ex: NotAuthenticated, params):
    _raise(401, 'not_authenticated', 'Valid credentials are required.',
           headers={'WWW-Authenticate': 'Bearer realm="fieldvault"'})


def _on_forbidden(req, resp, ex: Forbidden, params):
    _raise(403, 'forbidden', 'Your role does not allow this.')


def _on_throttled(req, resp, ex: LoginThrottled, params):
    _raise(429, 'login_throttled', 'Too many failed logins; try again later.',
           headers={'Retry-After': str(ex.retry_after)})


def _on_account_error(req, resp, ex: AccountError, params):
    _raise(ex.status, ex.code, ex.description)


def _make_unavailable_handler(retry_after: int):
    def _on_unavailable(req, resp, ex: DatabaseUnavailable, params):
        log.warning('database unavailable', extra={'event': 'db_unavailable', 'detail': str(ex)})
        _raise(503, 'database_unavailable', 'The database is unavailable; retry later.',
               headers={'Retry-After': str(retry_after)})
    return _on_unavailable


def _on_not_found(req, resp, ex: DocumentNotFound, params):
    _raise(404, 'not_found', 'missing')


def _on_conflict(req, resp, ex: DocumentConflict, params):
    _raise(409, 'conflict', 'Document update conflict.')


def _on_sync_error(req, resp, ex: SyncError, params):
    log.error('sync error', extra={'event': 'sync_error', 'detail': type(ex).__name__})
    _raise(502, 'bad_gateway', 'The database answered unexpectedly.')


def _on_anything(req, resp, ex: Exception, params):
    if isinstance(ex, falcon.HTTPError):
        raise ex
    # APPSEC: the exception's text may quote data; log its type and where it
    # was raised, and give the client nothing internal.
    tb = ex.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f'{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}' if tb else '?'
    log.error('unhandled exception', extra={
        'event': 'unhandled', 'exception': type(ex).__name__, 'where': where})
    _raise(500, 'internal_error', 'The server failed to handle the request.')


def install_error_handling(app: falcon.App, retry_after: int) -> None:
    """Register the error serializer and every domain-error handler."""
    app.set_error_serializer(_serialize)
    # Falcon picks the most specific handler by MRO, so order does not matter.
    app.add_error_handler(Exception, _on_anything)
    app.add_error_handler(SchemaValidationError, _on_schema_invalid)
    app.add_error_handler(UnknownSchema, _on_unknown_schema)
    app.add_error_handler(RequestBodyInvalid, _on_body_invalid)
    app.add_error_handler(TransitionRefused, _on_transition_refused)
    app.add_error_handler(ProgramError, _on_program_error)
    app.add_error_handler(NoSigner, _on_no_signer)
    app.add_error_handler(GrantExists, _on_grant_exists)
    app.add_error_handler(EnvelopeRefused, _on_envelope_refused)
    app.add_error_handler(LateArrivalRefused, _on_late_arrival)
    app.add_error_handler(SealingError, _on_sealing_error)
    app.add_error_handler(NotOnCaseload, _on_not_on_caseload)
    app.add_error_handler(KeysError, _on_keys_error)
    app.add_error_handler(InvalidKeyMaterial, _on_key_material)
    app.add_error_handler(InvalidManifest, _on_manifest)
    app.add_error_handler(InvalidCiphertext, _on_ciphertext)
    app.add_error_handler(AccountError, _on_account_error)
    app.add_error_handler(NotAuthenticated, _on_not_authenticated)
    app.add_error_handler(Forbidden, _on_forbidden)
    app.add_error_handler(LoginThrottled, _on_throttled)
    app.add_error_handler(SyncError, _on_sync_error)
    app.add_error_handler(DatabaseUnavailable, _make_unavailable_handler(retry_after))
    app.add_error_handler(DocumentNotFound, _on_not_found)
    app.add_error_handler(DocumentConflict, _on_conflict)
