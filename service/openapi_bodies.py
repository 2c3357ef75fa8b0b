"""Request bodies and query parameters of the API, for ``/openapi.json``.

The bodies are Marshmallow schemas (the house style for data shapes), turned
into OpenAPI components by apispec's marshmallow plugin; the CouchDB protocol
bodies of ``/sync`` that are maps keyed by document id are written as JSON
Schema, which Marshmallow cannot express. They describe what each responder
accepts so that clients and fuzzers reach every operation; the responders
still check every body themselves.

A resource may declare its own body with an ``openapi_request`` attribute;
otherwise the body comes from :data:`REQUEST_BODIES`, keyed by
``(METHOD, path template)``. A test walks the mounted routes and fails on a
POST, PUT or PATCH without one.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

__all__ = ['BODY_SCHEMAS', 'OPTIONAL_BODIES', 'QUERY_PARAMETERS', 'REQUEST_BODIES',
           'path_parameter_schema']

_ROLES = ('worker', 'advocate', 'supervisor', 'admin', 'liaison')
_NAME = r'^[a-z0-9][a-z0-9._-]{1,62}$'
_TEAM = r'^[a-z0-9][a-z0-9._-]{0,62}$'
_KID = r'^[a-z0-9][a-z0-9._:-]{0,127}$'


class _Closed(Schema):
    class Meta:
        # Undeclared members are refused by every responder.
        unknown = 'raise'


class LoginBody(_Closed):
    """A user name and password."""

    username = fields.String(required=True)
    password = fields.String(required=True)


class UserCreateBody(_Closed):
    """A new user."""

    username = fields.String(required=True, validate=validate.Regexp(_NAME))
    password = fields.String(required=True, validate=validate.Length(min=12))
    roles = fields.List(fields.String(validate=validate.OneOf(_ROLES)), required=True)
    team = fields.String(allow_none=True, validate=validate.Regexp(_TEAM))


class UserUpdateBody(_Closed):
    """Changes to a user; every member is optional."""

    roles = fields.List(fields.String(validate=validate.OneOf(_ROLES)))
    disabled = fields.Boolean()
    team = fields.String(validate=validate.Regexp(_TEAM))
    password = fields.String(validate=validate.Length(min=12))


class DeviceCreateBody(_Closed):
    """A device to register for a worker."""

    worker = fields.String(required=True)
    label = fields.String(allow_none=True, validate=validate.Length(max=100))


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

    certificate = fields.Raw(required=True)


class GrantsBody(_Closed):
    """Key-version grants to store."""

    grants = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1))


class SharesBody(_Closed):
    """Shares of held key versions, sealed to newly certified staff."""

    shares = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1))


class RewrappedBody(_Closed):
    """Envelopes re-sealed from one key version to another."""

    from_ = fields.String(required=True, data_key='from', validate=validate.Regexp(_KID))
    to = fields.String(required=True, validate=validate.Regexp(_KID))
    envelopes = fields.List(fields.Dict(), required=True)


class RewrapRunBody(_Closed):
    """A rewrap run's progress note."""

    from_ = fields.String(required=True, data_key='from', validate=validate.Regexp(_KID))
    to = fields.String(required=True, validate=validate.Regexp(_KID))
    phase = fields.String(required=True, validate=validate.OneOf(('started', 'finished')))
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    census = fields.Dict(keys=fields.String(), values=fields.Integer())


class SealingBody(_Closed):
    """A proposal to seal one youth's records."""

    client_id = fields.String(validate=validate.Regexp(
        r'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'))
    youth_code = fields.String()
    reason = fields.String(required=True, validate=validate.OneOf(
        ('erasure_request', 'retention_expired', 'legal_order')))


class SealingApproveBody(_Closed):
    """A confirmation of a sealing step (approve, cancel); the body is optional."""

    confirm = fields.Boolean()


class RecordIntakeBody(_Closed):
    """A record sealed on the sender's machine and its record-key envelopes."""

    document = fields.Dict(required=True)
    envelopes = fields.List(fields.Dict(), required=True)


class EmptyBody(_Closed):
    """No members: the operation reads nothing from its body."""


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
        RewrapRunBody, SealingBody, SealingApproveBody, RecordIntakeBody, EmptyBody,
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
