"""Request bodies of the API: checked by :func:`load_body`, described in ``/openapi.json``.

The bodies are Marshmallow schemas (the house style for data shapes). A
responder loads its body with :func:`load_body`, and apispec's marshmallow
plugin turns the same schemas into OpenAPI components, so the body a client
reads about is the body the service checks. A rule that belongs to a domain
module with its own error code (user names, passwords, roles and teams in
:mod:`service.accounts`) is described here in the field's metadata and
checked there. The CouchDB protocol bodies of ``/sync`` that are maps keyed by
document id are written as JSON Schema, which Marshmallow cannot express, and
are checked by the gateway; record documents are checked by ``schemas``.

A resource may declare its own body with an ``openapi_request`` attribute;
otherwise the body comes from :data:`REQUEST_BODIES`, keyed by
``(METHOD, path template)``. A test walks the mounted routes and fails on a
POST, PUT or PATCH without one, or on a described closed body whose responder
takes a member the description does not declare.
"""

from __future__ import annotations

import functools
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from schemas import lifecycle
from schemas.codes import OPEN_FAILURES, RELEASE_PURPOSES, SEALING_REASONS
from schemas.fields import FullMatch
from schemas.v1.contact import YOUTH_CODE_PATTERN
from service.accounts import MIN_PASSWORD_LENGTH, ROLES

__all__ = ['BODY_SCHEMAS', 'MAX_PAGE', 'MAX_SHARES', 'OPTIONAL_BODIES', 'QUERY_PARAMETERS',
           'REQUEST_BODIES', 'RequestBodyInvalid', 'load_body', 'path_parameter_schema']

_NAME = r'^[a-z0-9][a-z0-9._-]{1,62}$'
_TEAM = r'^[a-z0-9][a-z0-9._-]{0,62}$'
#: Key version ids: the identifier rule of ``keys`` (org, key, advocate ids).
_KID = r'^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'
_UUID4 = r'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
#: Largest page of envelopes a supervisor may ask for or send back.
MAX_PAGE = 1000
#: Most shares one request may carry.
MAX_SHARES = 200


class RequestBodyInvalid(Exception):
    """A request body that does not match its schema.

    Args:
        messages: Marshmallow's per-member messages; they name members and
            rules, never a submitted value (unknown members are counted, not
            named, where the error is mapped to HTTP).
        code: The error code clients branch on.
        description: One sentence for a person.
    """

    def __init__(self, messages: dict[str, Any], *, code: str = 'validation_failed',
                 description: str = 'The request body is not valid.') -> None:
        super().__init__(description)
        self.messages = messages
        self.code = code
        self.description = description


class _StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false``; Marshmallow's own also takes 1, "yes" and the like."""

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not bool:
            raise self.make_error('invalid')
        return value


class _Closed(Schema):
    """A body whose undeclared members are refused.

    ``refusal`` is the error code and sentence of a body that does not load.
    """

    refusal = ('validation_failed', 'The request body is not valid.')

    class Meta:
        unknown = 'raise'


class LoginBody(_Closed):
    """A user name and password."""

    refusal = ('validation_failed', 'username and password are required.')

    username = fields.String(required=True)
    password = fields.String(required=True)


def _team(**kwargs: Any) -> fields.Field:
    # Any JSON value loads: service.accounts refuses a bad team, a non-string
    # included, with its own code (invalid_team).
    return fields.Raw(allow_none=True, metadata={
        'type': 'string', 'pattern': _TEAM,
        'description': 'refused with 422 invalid_team unless it matches'}, **kwargs)


def _roles(**kwargs: Any) -> fields.Field:
    # Known roles, at least one: service.accounts checks them (invalid_roles).
    return fields.List(fields.String(metadata={'enum': list(ROLES)}),
                       metadata={'minItems': 1}, **kwargs)


def _password(**kwargs: Any) -> fields.Field:
    # The length is the account rule's (weak_password).
    return fields.String(metadata={'minLength': MIN_PASSWORD_LENGTH}, **kwargs)


class UserCreateBody(_Closed):
    """A new user; the account rules refuse a bad name, password, role or team (own codes)."""

    username = fields.String(required=True, metadata={'pattern': _NAME})
    password = _password(required=True)
    roles = _roles(required=True)
    team = _team()


class UserUpdateBody(_Closed):
    """Changes to a user; every member is optional."""

    roles = _roles()
    disabled = _StrictBoolean()
    team = _team()
    password = _password()


class DeviceCreateBody(_Closed):
    """A device to register for a worker."""

    worker = fields.String(required=True)
    label = fields.String(allow_none=True, validate=validate.Length(
        max=100, error='Must be text of at most 100 characters.'))


class EnrollBody(_Closed):
    """A one-time enrollment code."""

    code = fields.String(required=True)


class SignerBody(_Closed):
    """The org signing key to pin."""

    public = fields.String(required=True)


class ManifestBody(_Closed):
    """A signed key manifest."""

    signed = fields.Raw(required=True)


class AdvocateKeyBody(_Closed):
    """An advocate's public key record and passphrase-wrapped private key."""

    public = fields.Dict(required=True)
    wrapped = fields.Dict(required=True)


class CertificateBody(_Closed):
    """A certificate signed by the org signing key."""

    certificate = fields.Dict(required=True)


class GrantsBody(_Closed):
    """Key-version grants to store."""

    grants = fields.List(fields.Dict(), required=True, validate=validate.Length(
        min=1, error='Send a non-empty list.'))


class SharesBody(_Closed):
    """Shares of held key versions, sealed to newly certified staff."""

    shares = fields.List(fields.Dict(), required=True, validate=validate.Length(
        min=1, max=MAX_SHARES, error=f'Send 1 to {MAX_SHARES} shares.'))


def _kid(**kwargs: Any) -> fields.Field:
    return fields.String(validate=FullMatch(_KID, error='Not a valid key id.'), **kwargs)


class RewrappedBody(_Closed):
    """Envelopes re-sealed from one key version to another."""

    from_ = _kid(required=True, data_key='from')
    to = _kid(required=True)
    envelopes = fields.List(fields.Dict(), required=True, validate=validate.Length(
        min=1, max=MAX_PAGE, error=f'Send 1 to {MAX_PAGE} envelopes.'))


_REWRAP_COUNTS = ('rewrapped', 'conflicts', 'failed', 'already')


def _at_most(count: int):
    # validate.Length would be described as maxLength, a string's keyword.
    def check(value: dict[str, Any]) -> None:
        if len(value) > count:
            raise ValidationError(f'Send at most {count} members.')
    return check


class RewrapRunBody(_Closed):
    """A rewrap run's progress note: key ids and counts only."""

    from_ = _kid(required=True, data_key='from')
    to = _kid(required=True)
    phase = fields.String(required=True, validate=validate.OneOf(
        ('started', 'finished'), error='Send started or finished.'))
    counts = fields.Dict(keys=fields.String(validate=validate.OneOf(_REWRAP_COUNTS)),
                         values=fields.Integer(strict=True), metadata={
                             'description': f'names: {", ".join(_REWRAP_COUNTS)}'})
    census = fields.Dict(keys=fields.String(validate=FullMatch(_KID)),
                         values=fields.Integer(strict=True), validate=_at_most(64),
                         metadata={'maxProperties': 64, 'description': 'key id -> envelopes'})


class SealingBody(_Closed):
    """A proposal to seal one youth's records, named by client_id or youth_code."""

    client_id = fields.String(allow_none=True, validate=FullMatch(
        _UUID4, error='Must be a lowercase version 4 UUID.'))
    youth_code = fields.String(allow_none=True, validate=FullMatch(
        YOUTH_CODE_PATTERN, error='Must be a generated code such as quiet-river-07.'))
    reason = fields.String(required=True, validate=validate.OneOf(SEALING_REASONS))

    @validates_schema
    def _names_a_youth(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get('client_id') is None and data.get('youth_code') is None:
            raise ValidationError('Give client_id or youth_code to say whose records.',
                                  'client_id')


class SealingApproveBody(_Closed):
    """A confirmation of a sealing step (approve, cancel); the body is optional."""

    confirm = _StrictBoolean()


class CaseActionBody(_Closed):
    """A lifecycle action on a case and its parameters.

    Only the shapes are checked here: which action a role may take, from which
    state and under which guards (a hold's reason, a discharge's reason code,
    the program length's bounds) is the lifecycle's rule
    (``schemas.lifecycle``), answered 409 ``transition_refused`` naming the
    guard.
    """

    action = fields.String(required=True, metadata={
        'description': 'an action of the lifecycle: ' + ', '.join(sorted(lifecycle.ACTIONS))})
    hold_reason = fields.String(metadata={
        'description': 'hold: one of ' + ', '.join(lifecycle.HOLD_REASONS)})
    reason_code = fields.String(metadata={'description': 'discharge and withdraw: why'})
    program_length_weeks = fields.Integer(strict=True)
    assigned_advocate_id = fields.String()
    service_plan = fields.List(fields.String())
    program_start = fields.String(metadata={'description': 'a date, YYYY-MM-DD'})
    recipient_org = fields.String(metadata={'description': 'transfer: the receiving org'})


class RecordIntakeBody(_Closed):
    """A record sealed on the sender's machine and its record-key envelopes."""

    refusal = ('validation_failed', 'Send "document" and "envelopes".')

    document = fields.Dict(required=True)
    envelopes = fields.List(fields.Dict(), required=True)


class RecordCorrectionBody(RecordIntakeBody):
    """A corrected revision of a stored record and the envelopes of its new record key."""


class ReleaseBody(_Closed):
    """The coded purpose of a release of identifying details (audited)."""

    refusal = ('purpose_required',
               'State the purpose of this release as one of the listed codes.')

    purpose = fields.String(required=True, validate=validate.OneOf(RELEASE_PURPOSES))


class OpenFailureBody(_Closed):
    """Why a released record could not be opened, as a code."""

    refusal = ('validation_failed', 'Report one of the listed codes.')

    code = fields.String(required=True, validate=validate.OneOf(OPEN_FAILURES))


class ConflictResolutionBody(_Closed):
    """The revision of a conflicted record to keep."""

    keep = fields.String(required=True)


class EmptyBody(_Closed):
    """No members: the operation reads nothing from its body.

    Not loaded: a stray body is ignored, so that a logout, a device
    revocation or a quarantine release never fails on what it does not read.
    """


class BulkDocsBody(Schema):
    """CouchDB ``_bulk_docs``: documents to write."""

    docs = fields.List(fields.Dict(), required=True)
    new_edits = fields.Boolean()


class _BulkGetItem(Schema):
    id = fields.String(required=True)
    rev = fields.String()


class BulkGetBody(Schema):
    """CouchDB ``_bulk_get``: revisions to read."""

    docs = fields.List(fields.Nested(_BulkGetItem), required=True)


class AllDocsBody(Schema):
    """CouchDB ``_all_docs`` by keys."""

    keys = fields.List(fields.String(), required=True)
    include_docs = fields.Boolean()


#: Component name -> Marshmallow schema of every body below.
BODY_SCHEMAS: dict[str, type[Schema]] = {
    cls.__name__: cls for cls in (
        LoginBody, UserCreateBody, UserUpdateBody, DeviceCreateBody, EnrollBody, SignerBody,
        ManifestBody, AdvocateKeyBody, CertificateBody, GrantsBody, SharesBody, RewrappedBody,
        RewrapRunBody, SealingBody, SealingApproveBody, CaseActionBody, RecordIntakeBody,
        RecordCorrectionBody,
        ReleaseBody, OpenFailureBody, ConflictResolutionBody, EmptyBody,
        BulkDocsBody, BulkGetBody, AllDocsBody)
}

_REVS_DIFF = {'type': 'object', 'description': 'document id -> revisions the client has',
              'additionalProperties': {'type': 'array', 'items': {'type': 'string'}}}
_CHECKPOINT = {'type': 'object', 'description': 'a replication checkpoint document'}
_RECORD = {'oneOf': [{'$ref': f'#/components/schemas/{name}'}
                     for name in ('ContactV1', 'IdentityV1', 'ScreeningV1', 'ConsentV1')]}

#: (METHOD, path template) -> component name or inline JSON Schema.
REQUEST_BODIES: dict[tuple[str, str], Any] = {
    ('POST', '/auth/login'): 'LoginBody',
    ('POST', '/auth/logout'): 'EmptyBody',
    ('POST', '/users'): 'UserCreateBody',
    ('PATCH', '/users/{username}'): 'UserUpdateBody',
    ('POST', '/records/validate'): _RECORD,
    ('PUT', '/keys/signer'): 'SignerBody',
    ('PUT', '/keys/manifest'): 'ManifestBody',
    ('POST', '/keys/grants'): 'GrantsBody',
    ('POST', '/advocates/keys'): 'AdvocateKeyBody',
    ('PUT', '/advocates/keys/{advocate}/certificate'): 'CertificateBody',
    ('PUT', '/keys/recovery'): 'CertificateBody',
    ('POST', '/keys/envelopes/rewrapped'): 'RewrappedBody',
    ('POST', '/keys/rewrap-runs'): 'RewrapRunBody',
    ('POST', '/keys/shares'): 'SharesBody',
    ('POST', '/records'): 'RecordIntakeBody',
    ('POST', '/devices'): 'DeviceCreateBody',
    ('POST', '/devices/enroll'): 'EnrollBody',
    ('POST', '/devices/{device_id}/revoke'): 'EmptyBody',
    ('POST', '/sealings'): 'SealingBody',
    ('POST', '/sealings/{sealing_id}/approve'): 'SealingApproveBody',
    ('POST', '/sealings/{sealing_id}/cancel'): 'SealingApproveBody',
    ('PUT', '/sync/{db}'): 'EmptyBody',
    ('PUT', '/sync/{db}/'): 'EmptyBody',
    ('PUT', '/sync/{db}/_local/{local_id}'): _CHECKPOINT,
    ('POST', '/sync/{db}/_revs_diff'): _REVS_DIFF,
    ('POST', '/sync/{db}/_bulk_docs'): 'BulkDocsBody',
    ('POST', '/sync/{db}/_bulk_get'): 'BulkGetBody',
    ('POST', '/sync/{db}/_all_docs'): 'AllDocsBody',
    ('POST', '/sync/{db}/_ensure_full_commit'): 'EmptyBody',
}

#: Bodies a client may leave out.
OPTIONAL_BODIES = frozenset({'EmptyBody', 'SealingApproveBody'})


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {'name': name, 'in': 'query', 'required': False, 'schema': schema,
            'description': description}


_WHOLE = {'type': 'string', 'pattern': '^[0-9]+$'}

#: (METHOD, path template) -> query parameters the responder reads.
QUERY_PARAMETERS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ('GET', '/audit'): [
        _query('after', _WHOLE, 'sequence number to page after'),
        _query('limit', _WHOLE, 'events per page (1-500)'),
    ],
    ('GET', '/keys/envelopes'): [
        _query('kek', {'type': 'string'}, 'key version the envelopes are sealed to'),
        _query('after', {'type': 'string'}, 'the "next" cursor of the previous page'),
        _query('limit', _WHOLE, 'envelopes per page'),
    ],
    ('GET', '/sync/{db}/_changes'): [
        _query('since', {'type': 'string'}, 'update sequence to start after, or "now"'),
        _query('limit', _WHOLE, 'rows at most'),
        _query('feed', {'type': 'string', 'enum': ['normal', 'longpoll']}, 'feed type'),
        _query('timeout', _WHOLE, 'long-poll timeout in milliseconds'),
        _query('heartbeat', _WHOLE, 'long-poll heartbeat in milliseconds'),
        _query('style', {'type': 'string', 'enum': ['main_only', 'all_docs']}, 'leaf revisions'),
    ],
    ('POST', '/sync/{db}/_all_docs'): [
        _query('include_docs', {'type': 'string', 'enum': ['true', 'false']}, 'bodies too'),
    ],
    ('GET', '/sync/{db}/{doc_id}'): [
        _query('open_revs', {'type': 'string'}, '"all" or a JSON list of revisions'),
    ],
}

_SYNC_DATABASES = ['records', 'config']


def path_parameter_schema(path: str, name: str) -> dict[str, Any]:
    """Return the JSON Schema of one path parameter."""
    if name == 'db' and path.startswith('/sync/'):
        return {'type': 'string', 'enum': _SYNC_DATABASES}
    return {'type': 'string', 'minLength': 1}


@functools.cache
def _instance(schema: type[Schema]) -> Schema:
    return schema()


def load_body(req: Any, schema: type[Schema]) -> dict[str, Any]:
    """Return the request's JSON body once it matches ``schema``.

    The body comes back as sent (member names as on the wire, ``from`` for
    instance), checked member by member. A body the schema marks optional
    (:data:`OPTIONAL_BODIES`) may be left out; it then loads as ``{}``.

    Args:
        req: The Falcon request; its media handler has already refused
            malformed, oversized or too deep JSON.
        schema: One of the closed body schemas of this module.

    Raises:
        RequestBodyInvalid: The body is not a JSON object or does not match
            ``schema``; carries the schema's ``refusal`` code and sentence.
    """
    code, description = getattr(schema, 'refusal', _Closed.refusal)
    if schema.__name__ in OPTIONAL_BODIES and not req.content_length:
        return {}
    body = req.get_media()
    if not isinstance(body, dict):
        raise RequestBodyInvalid({'_schema': ['Send a JSON object.']}, code=code,
                                 description=description)
    try:
        _instance(schema).load(body)
    except ValidationError as ex:
        raise RequestBodyInvalid(ex.normalized_messages(), code=code,
                                 description=description) from None
    return body
