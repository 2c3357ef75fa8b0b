"""The ``/sync/{db}`` replication endpoints (CouchDB protocol, devices only)
and the conflict listing for case staff. Thin: ``sync.gateway`` does the work."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from service.accounts import Forbidden
from service.errors import ApiError
from service.resources import CASE_STAFF
from service.throttle import Throttle
from sync.devices import DeviceIdentity
from sync.errors import DocumentNotFound
from sync.gateway import BadRequest, Gateway, RecordRules, TooManyDocuments, UnknownDatabase

__all__ = ['ConflictsResource', 'SyncUnroutedSink', 'SyncWiring', 'sync_routes']

DEVICE = ('device',)


@contextlib.contextmanager
def _gateway_errors():
    try:
        yield
    except UnknownDatabase:
        raise ApiError(404, 'not_found', 'Database does not exist.') from None
    except TooManyDocuments:
        raise ApiError(413, 'too_many_documents',
                       'The request names more documents than one request may carry.') from None
    except BadRequest as ex:
        raise ApiError(400, 'bad_request', f'Malformed request: {ex.args[0]}.') from None


def _device(req) -> DeviceIdentity:
    principal = req.context.principal
    return DeviceIdentity(device_id=principal.id, worker=principal.worker)


#: A numeric query parameter: ASCII digits only (``str.isdigit`` also
#: accepts ``²`` and other digits ``int`` refuses), and few enough of them
#: that every later use is cheap; the gateway clamps the value itself.
_INT_PARAM = re.compile(r'[0-9]{1,20}')


def _int_param(req, name: str) -> int | None:
    raw = req.get_param(name)
    if raw is None or raw == '':
        return None
    if not _INT_PARAM.fullmatch(raw):
        raise ApiError(400, 'bad_request', f'Malformed request: {name}.')
    return int(raw)


def _json_object(req, kind=dict):
    body = req.get_media()
    if not isinstance(body, kind):
        raise ApiError(400, 'bad_request', 'Malformed request: body.')
    return body


class _SyncResource:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway


class SyncRootResource(_SyncResource):
    """``GET /sync/``: the server welcome with a stable uuid."""

    auth = {'GET': DEVICE, 'HEAD': DEVICE}

    def on_get(self, req, resp):
        resp.media = self._gateway.server_info()

    on_head = on_get


class SyncDatabaseResource(_SyncResource):
    """``GET /sync/{db}``: database info (update_seq, instance_start_time)."""

    auth = {'GET': DEVICE, 'HEAD': DEVICE, 'PUT': DEVICE}

    def on_get(self, req, resp, db):
        with _gateway_errors():
            resp.media = self._gateway.db_info(db)

    def on_head(self, req, resp, db):
        with _gateway_errors():
            self._gateway.db_info(db)

    def on_put(self, req, resp, db):
        # PouchDB creates a database only after a 404; ours always exist.
        with _gateway_errors():
            self._gateway.physical(db)
        raise ApiError(412, 'file_exists', 'The database could not be created, the file already exists.')


class SyncLocalResource(_SyncResource):
    """``GET/PUT /sync/{db}/_local/{local_id}``: per-device checkpoints."""

    auth = {'GET': DEVICE, 'PUT': DEVICE}

    def on_get(self, req, resp, db, local_id):
        with _gateway_errors():
            resp.media = self._gateway.read_checkpoint(_device(req), db, local_id)

    def on_put(self, req, resp, db, local_id):
        with _gateway_errors():
            resp.media = self._gateway.write_checkpoint(_device(req), db, local_id,
                                                        _json_object(req))
        resp.status = 201


class SyncChangesResource(_SyncResource):
    """``GET /sync/{db}/_changes``: the device's filtered feed (normal, longpoll)."""

    auth = {'GET': DEVICE}

    def on_get(self, req, resp, db):
        style = req.get_param('style') or 'main_only'
        heartbeat = _int_param(req, 'heartbeat')
        if req.get_param('feed') == 'longpoll' and heartbeat:
            # PouchDB's live pull: newlines while waiting, streamed unbuffered
            # (a generator; nothing on the path compresses /sync responses).
            with _gateway_errors():
                answer = self._gateway.changes_stream(
                    _device(req), db, since=req.get_param('since'),
                    limit=_int_param(req, 'limit'), timeout_ms=_int_param(req, 'timeout'),
                    heartbeat_ms=heartbeat, style_all_docs=style == 'all_docs')
            if isinstance(answer, dict):
                resp.media = answer
            else:
                resp.content_type = 'application/json'
                resp.stream = answer
            return
        with _gateway_errors():
            resp.media = self._gateway.changes(
                _device(req), db,
                since=req.get_param('since'),
                limit=_int_param(req, 'limit'),
                feed=req.get_param('feed') or 'normal',
                timeout_ms=_int_param(req, 'timeout'),
                style_all_docs=style == 'all_docs',
            )


class SyncRevsDiffResource(_SyncResource):
    """``POST /sync/{db}/_revs_diff``: which revisions the server lacks."""

    auth = {'POST': DEVICE}

    def on_post(self, req, resp, db):
        with _gateway_errors():
            resp.media = self._gateway.revs_diff(_device(req), db, _json_object(req))


class SyncBulkDocsResource(_SyncResource):
    """``POST /sync/{db}/_bulk_docs``: validated writes, per-doc refusals, 201."""

    auth = {'POST': DEVICE}

    def on_post(self, req, resp, db):
        body = _json_object(req)
        new_edits = body.get('new_edits', True)
        if not isinstance(new_edits, bool):
            raise ApiError(400, 'bad_request', 'Malformed request: new_edits.')
        with _gateway_errors():
            resp.media = self._gateway.bulk_docs(_device(req), db, body.get('docs'),
                                                 new_edits=new_edits)
        resp.status = 201


class SyncBulkGetResource(_SyncResource):
    """``POST /sync/{db}/_bulk_get``: documents 1:1 in request order."""

    auth = {'POST': DEVICE}

    def on_post(self, req, resp, db):
        docs = _json_object(req).get('docs')
        with _gateway_errors():
            resp.media = self._gateway.bulk_get(_device(req), db, docs)


class SyncAllDocsResource(_SyncResource):
    """``POST /sync/{db}/_all_docs`` by ``keys`` (PouchDB 7 replicators)."""

    auth = {'POST': DEVICE}

    def on_post(self, req, resp, db):
        body = _json_object(req)
        include_docs = req.get_param_as_bool('include_docs') or body.get('include_docs') is True
        with _gateway_errors():
            resp.media = self._gateway.all_docs_by_keys(_device(req), db, body.get('keys'),
                                                        include_docs=include_docs)


class SyncEnsureFullCommitResource(_SyncResource):
    """``POST /sync/{db}/_ensure_full_commit``: 201, as couch_replicator needs."""

    auth = {'POST': DEVICE}

    def on_post(self, req, resp, db):
        with _gateway_errors():
            self._gateway.physical(db)
        resp.status = 201
        resp.media = {'ok': True, 'instance_start_time': '0'}


class SyncDocumentResource(_SyncResource):
    """``GET /sync/{db}/{doc_id}``: one visible document, or ``open_revs`` (JSON)."""

    auth = {'GET': DEVICE}

    def on_get(self, req, resp, db, doc_id):
        with _gateway_errors():
            resp.media = self._gateway.open_revs(_device(req), db, doc_id,
                                                 req.get_param('open_revs'))


class SyncUnroutedSink:
    """Any other path under ``/sync/``: answered as a missing document.

    Falcon decodes ``%2F`` before routing, so ``GET /sync/{db}/a%2Fb`` (an
    id with ``/``) matches no route. It is answered here, without the
    database, exactly as a missing id: 404 ``not_found``/``missing``, or
    with ``open_revs`` as a list a ``{"missing": rev}`` per revision, as
    CouchDB and pouchdb-server answer a missing id.

    Args:
        authenticate: The auth middleware's ``authenticate`` (devices only).
    """

    def __init__(self, authenticate) -> None:
        self._authenticate = authenticate

    def __call__(self, req, resp, **_kwargs) -> None:
        if req.method == 'OPTIONS':
            return
        principal = self._authenticate(req)
        if not principal.has_any(DEVICE):
            raise Forbidden()
        open_revs = req.get_param('open_revs')
        if req.method == 'GET' and open_revs not in (None, 'all'):
            try:
                revs = json.loads(open_revs)
            except ValueError:
                revs = None
            if not (isinstance(revs, list) and all(isinstance(rev, str) for rev in revs)):
                raise ApiError(400, 'bad_request', 'Malformed request: open_revs.')
            resp.media = [{'missing': rev} for rev in revs]
            return
        raise DocumentNotFound(404, 'not_found', 'unrouted')


class ConflictsResource:
    """``GET /records/conflicts``: ids of the caller's team's records with conflicts.

    Advocates and supervisors see their own team's records only (a record
    belongs to its owner's team); admins and liaisons see none (DESIGN.md
    §1: case data belongs to the team's case staff).
    """

    auth = {'GET': CASE_STAFF}

    def __init__(self, gateway: Gateway, team_of_users) -> None:
        self._gateway = gateway
        self._team_of_users = team_of_users

    def on_get(self, req, resp):
        team = req.context.principal.team

        def owners_seen(owners: set[str]) -> set[str]:
            teams = self._team_of_users(owners)
            return {owner for owner in owners if team is not None and teams.get(owner) == team}

        resp.media = {'conflicts': self._gateway.conflicted_records(owners_seen)}


def sync_routes(gateway: Gateway) -> list[tuple[str, object]]:
    """Return the ``/sync`` routes (with and without trailing slashes)."""
    root = SyncRootResource(gateway)
    database = SyncDatabaseResource(gateway)
    return [
        ('/sync', root),
        ('/sync/', root),
        ('/sync/{db}', database),
        ('/sync/{db}/', database),
        ('/sync/{db}/_local/{local_id}', SyncLocalResource(gateway)),
        ('/sync/{db}/_changes', SyncChangesResource(gateway)),
        ('/sync/{db}/_revs_diff', SyncRevsDiffResource(gateway)),
        ('/sync/{db}/_bulk_docs', SyncBulkDocsResource(gateway)),
        ('/sync/{db}/_bulk_get', SyncBulkGetResource(gateway)),
        ('/sync/{db}/_all_docs', SyncAllDocsResource(gateway)),
        ('/sync/{db}/_ensure_full_commit', SyncEnsureFullCommitResource(gateway)),
        ('/sync/{db}/{doc_id}', SyncDocumentResource(gateway)),
    ]


class SyncWiring:
    """The device store, gateway, auth adapter and routes of one app.

    Args:
        services: The app's collaborators.
    """

    def __init__(self, services) -> None:
        # Imported here so the resource module stays importable without them
        # in unit tests of the resources alone.
        import keys
        import keys.errors
        import schemas
        import schemas.errors
        import schemas.lifecycle
        from service.accounts import AccountError
        from service.resources.devices import (
            DeviceAuthenticator, DeviceResource, DeviceRevokeResource, DevicesResource,
            EnrollResource)
        from service.program import CaptureGuards
        from sync.devices import Devices
        from sync.sealed import SealedRegistry

        config = services.config
        self.devices = Devices(services.couch, config.db_name('directory'),
                               config.db_name('config'), enrollment_ttl=config.enrollment_ttl,
                               watch=services.device_watch)
        rules = RecordRules(
            record_types=tuple(schemas.RECORD_TYPES),
            validate_document=lambda doc: schemas.validate_document(doc, sealed=True),
            identifying_paths=schemas.identifying_paths,
            schema_errors=(schemas.errors.SchemaValidationError,),
            unknown_schema_errors=(schemas.errors.UnknownSchema,),
            validate_envelope=keys.validate_envelope,
            envelope_errors=(keys.errors.InvalidKeyMaterial, keys.errors.KeysError),
            manifest_body=_manifest_reader(services),
            sealed_registry=SealedRegistry(services.couch, config.db_name('directory'),
                                           services.device_watch),
            check_capture=lambda doc, worker, stored: schemas.lifecycle.capture_refusal(
                doc, by=worker, roles=('worker',), stored=stored),
            check_guards=CaptureGuards(services),
        )
        self.gateway = Gateway(
            services.couch,
            {name: config.db_name(name) for name in ('records', 'config', 'keyvault',
                                                     'quarantine')},
            rules,
            server_uuid=config.server_uuid or Gateway.derive_server_uuid(config.org),
            max_doc_bytes=config.max_doc_bytes,
            max_bulk_docs=config.max_bulk_docs,
            longpoll_max_seconds=config.longpoll_max_seconds,
            audit=services.audit.record,
        )
        self.device_auth = DeviceAuthenticator(self.devices)

        def worker_exists(username: str) -> bool:
            try:
                return 'worker' in services.accounts.get_user(username)['roles']
            except AccountError:
                return False

        self.routes = [
            ('/devices', DevicesResource(self.devices, services.audit, worker_exists)),
            ('/devices/enroll', EnrollResource(
                self.devices, services.audit, services.couch, config.db_name('config'),
                throttle=Throttle(services.couch, config.db_name('directory'), scope='enroll',
                                  limit=config.enroll_max_attempts,
                                  window=config.enroll_window_seconds))),
            ('/devices/{device_id}', DeviceResource(self.devices)),
            ('/devices/{device_id}/revoke', DeviceRevokeResource(self.devices, services.audit)),
            ('/records/conflicts', ConflictsResource(self.gateway, _team_reader(services))),
            *sync_routes(self.gateway),
        ]


def _manifest_reader(services):
    """Return a callable giving the verified key manifest body, or None.

    The manifest document comes from the config watch (no read while the
    config feed reports no change) and the verified body is cached by its
    ``_rev``, so a warm push batch costs no read and no signature check.
    """
    from service.resources.keys import KeyStore

    store = KeyStore(services)
    cache: dict[str, Any] = {}

    def read():
        current = store.manifest()
        if current is None:
            return None
        if cache.get('rev') != current['_rev']:
            body = store.manifest_body()
            cache.clear()
            cache.update(rev=current['_rev'], body=body)
        return cache['body']

    return read


def _team_reader(services):
    """Return a callable giving ``{username: team}`` of existing users, in one read."""
    directory = services.db('directory')

    def teams(usernames):
        if not usernames:
            return {}
        rows = services.couch.all_docs(directory, keys=[f'user:{name}' for name in sorted(usernames)],
                                       include_docs=True)
        return {row['doc']['username']: row['doc'].get('team')
                for row in rows if row.get('doc') and row['doc'].get('username')}

    return teams
