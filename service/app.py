"""The application factory: ``create_app(config=None)``.

gunicorn calls it (``service.app:create_app()``); tests call it with their own
``Config``. It does all the wiring: collaborators, routes, middleware, error
handlers and media handlers. It does no network I/O, so the app can be built
before the database is up; ``/readyz`` says when it is.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, cast

import falcon
import falcon.media

import keys
import keys.errors
import schemas
import schemas.errors
import schemas.lifecycle
from service.accounts import AccountError, Accounts
from service.audit import AuditLog, directory_team_of
from service.config import Config
from service.conflicts import ConflictListing
from service.errors import install_error_handling
from service.intake import DeskIntake
from service.keystore import MANIFEST_ID, SIGNER_ID, KeyStore
from service.logs import configure_logging
from service.middleware import (AccessLogMiddleware, AuthMiddleware, CORSMiddleware,
                                DeviceShareMiddleware, SafeJSONHandler)
from service.openapi import Operation, build_spec
from service.program import CaptureGuards
from service.resources.app_static import app_routes
from service.openapi_bodies import QUERY_PARAMETERS, REQUEST_BODIES
from service.resources.audit import AuditResource
from service.resources.caseload import caseload_routes
from service.resources.sealing import sealing_routes
from service.resources.auth import LoginResource, LogoutResource, MeResource
from service.resources.health import HealthResource, ReadyResource
from service.resources.meta import InstrumentsResource, OpenAPIResource, SchemasResource
from service.resources.keys import key_routes
from service.resources.custody import custody_of, custody_routes
from service.resources.devices import (
    DeviceAuthenticator, DeviceResource, DeviceRevokeResource, DevicesResource, EnrollResource)
from service.resources.lifecycle import lifecycle_routes
from service.resources.program import program_routes
from service.resources.records import (
    RecordOpenFailureResource, RecordOpenResource, RecordsResource, ValidateResource)
from service.resources.sync import ConflictsResource, SyncUnroutedSink, sync_routes
from service.resources.users import UserResource, UsersResource
from service.throttle import Throttle
from sync.couch import CouchDBClient
from sync.devices import Devices
from sync.gateway import Gateway, RecordRules
from sync.sealed import REGISTRY_ID, SealedRegistry
from sync.watch import DocWatch, ForgetOnWrite

__all__ = ['Services', 'create_app', 'LOGICAL_DATABASES', 'VERSION']

VERSION = '0.1.0'

#: Every database the service uses, by logical name (see DESIGN.md §4).
LOGICAL_DATABASES = ('records', 'keyvault', 'directory', 'config', 'audit', 'quarantine')


@dataclasses.dataclass
class Services:
    """The collaborators resources receive; built once per app.

    Attributes:
        config: The configuration.
        couch: The pooled CouchDB client.
        accounts: Users and sessions.
        audit: The audit log writer.
        device_watch: ``device:``, ``user:`` and ``token:`` documents of the
            directory and the sealed-youth registry, kept while its change
            feed reports no change (every replication request authenticates
            a device and checks its worker, every staff request its session
            and user, and every push batch reads the registry).
        config_watch: The key manifest and the pinned signer, likewise.
        clock: Seconds since the epoch, for rules that count days (tests
            inject a later time instead of waiting).
    """

    config: Config
    couch: CouchDBClient
    accounts: Accounts
    audit: AuditLog
    device_watch: DocWatch
    config_watch: DocWatch
    clock: Callable[[], float] = time.time

    def db(self, logical: str) -> str:
        """Return a database's physical name."""
        return self.config.db_name(logical)


def build_services(config: Config, couch: CouchDBClient | None = None) -> Services:
    """Build the collaborators of an app (the CLI uses this too)."""
    couch = couch or CouchDBClient(
        config.couchdb_url,
        user=config.couchdb_user,
        password=config.couchdb_password,
        timeout=config.couchdb_timeout,
        # Room for every long-poll a worker may hold upstream at once (under
        # gevent, each waiting tablet's while the shared feed is down), and
        # a bounded number of other requests in flight.
        max_connections=(config.web_worker_connections if config.web_worker_class == 'gevent'
                         else max(8, config.web_threads * 2)),
        max_in_flight=config.couchdb_concurrency,
    )
    # Devices, users and sessions (every authenticated request reads them)
    # come from memory while the directory's change feed says they are
    # unchanged; accounts write through a client that forgets what it wrote.
    device_watch = DocWatch(couch, config.db_name('directory'),
                            prefixes=('device:', 'user:', 'token:', REGISTRY_ID))
    accounts = Accounts(
        # The wrapper delegates everything but its writes to the client.
        cast(CouchDBClient, ForgetOnWrite(couch, device_watch, config.db_name('directory'))),
        config.db_name('directory'),
        token_ttl=config.token_ttl,
        max_failures=config.login_max_failures,
        lockout_seconds=config.login_lockout_seconds,
        password_params=(config.password_hash_memory_kib, config.password_hash_iterations),
    )
    audit = AuditLog(couch, config.db_name('audit'),
                     team_of=directory_team_of(couch, config.db_name('directory'),
                                               read=device_watch.get))
    accounts.session_watch = device_watch
    return Services(
        config=config, couch=couch, accounts=accounts, audit=audit,
        device_watch=device_watch,
        config_watch=DocWatch(couch, config.db_name('config'), prefixes=(MANIFEST_ID, SIGNER_ID)),
    )


def build_gateway(services: Services, key_store: KeyStore) -> Gateway:
    """Build the sync gateway with the record rules of this service."""
    config = services.config
    rules = RecordRules(
        record_types=tuple(schemas.RECORD_TYPES),
        validate_document=lambda doc: schemas.validate_document(doc, sealed=True),
        schema_errors=(schemas.errors.SchemaValidationError,),
        unknown_schema_errors=(schemas.errors.UnknownSchema,),
        validate_envelope=keys.validate_envelope,
        envelope_errors=(keys.errors.InvalidKeyMaterial, keys.errors.KeysError),
        # The manifest comes from the config watch and its verified body is
        # kept per revision, so a warm push batch costs no read and no
        # signature check.
        manifest_body=key_store.manifest_body,
        sealed_registry=SealedRegistry(services.couch, config.db_name('directory'),
                                       services.device_watch),
        check_capture=lambda doc, worker, stored: schemas.lifecycle.capture_refusal(
            doc, by=worker, roles=('worker',), stored=stored),
        check_guards=CaptureGuards(services),
    )
    return Gateway(
        services.couch,
        {name: config.db_name(name) for name in ('records', 'config', 'keyvault', 'quarantine')},
        rules,
        server_uuid=config.server_uuid or Gateway.derive_server_uuid(config.org),
        max_doc_bytes=config.max_doc_bytes,
        max_bulk_docs=config.max_bulk_docs,
        longpoll_max_seconds=config.longpoll_max_seconds,
        audit=services.audit.record,
    )


def _device_routes(services: Services, devices: Devices) -> list[tuple[str, Any]]:
    config = services.config

    def worker_exists(username: str) -> bool:
        try:
            return 'worker' in services.accounts.get_user(username)['roles']
        except AccountError:
            return False

    return [
        ('/devices', DevicesResource(devices, services.audit, worker_exists)),
        ('/devices/enroll', EnrollResource(
            devices, services.audit, services.couch, config.db_name('config'),
            throttle=Throttle(services.couch, config.db_name('directory'), scope='enroll',
                              limit=config.enroll_max_attempts,
                              window=config.enroll_window_seconds))),
        ('/devices/{device_id}', DeviceResource(devices)),
        ('/devices/{device_id}/revoke', DeviceRevokeResource(devices, services.audit)),
    ]


def _routes(services: Services, key_store: KeyStore, devices: Devices,
            gateway: Gateway) -> list[tuple[str, Any]]:
    config = services.config
    packs = schemas.instruments.load_packs(config.instrument_dir)
    custody = custody_of(services)
    routes: list[tuple[str, Any]] = [
        ('/healthz', HealthResource()),
        ('/readyz', ReadyResource(
            services.couch, [config.db_name(name) for name in LOGICAL_DATABASES],
            config.retry_after_seconds)),
        ('/auth/login', LoginResource(services.accounts, services.audit)),
        ('/auth/logout', LogoutResource(services.accounts)),
        ('/auth/me', MeResource()),
        ('/users', UsersResource(services.accounts, services.audit)),
        ('/users/{username}', UserResource(services.accounts, services.audit, custody=custody)),
        ('/records/validate', ValidateResource()),
        ('/schemas', SchemasResource(schemas.export_json_schemas())),
        ('/instruments', InstrumentsResource(
            {pack_id: pack.to_dict() for pack_id, pack in packs.items()})),
    ]
    routes += key_routes(services, key_store, custody)
    routes += lifecycle_routes(services, key_store)
    routes += custody_routes(services, key_store)
    intake = DeskIntake(services, key_store)
    routes += [
        ('/records', RecordsResource(services, intake)),
        ('/records/{record_id}/open', RecordOpenResource(services)),
        ('/records/{record_id}/open-failures', RecordOpenFailureResource(services)),
    ]
    routes += caseload_routes(services, intake)
    routes += _device_routes(services, devices)
    routes += [('/records/conflicts', ConflictsResource(ConflictListing(
        services.couch, services.db('records'), services.db('directory'))))]
    routes += sync_routes(gateway)
    routes += [('/audit', AuditResource(services))] + sealing_routes(services)
    routes += app_routes()
    routes += program_routes(services)
    return routes


def _operations(routes: list[tuple[str, Any]]) -> list[Operation]:
    operations = []
    for path, resource in routes:
        summary = (type(resource).__doc__ or '').strip().splitlines()[0]
        for method, roles in getattr(resource, 'auth', {}).items():
            if method == 'HEAD':
                continue
            operations.append(Operation(
                path=path, method=method.lower(), summary=summary, roles=roles,
                request=getattr(resource, 'openapi_request', {}).get(method)
                or REQUEST_BODIES.get((method, path)),
                query=tuple(QUERY_PARAMETERS.get((method, path), ()))))
    return operations


class FieldvaultApp(falcon.App):
    """A Falcon app that also carries its wiring, for tests and tools.

    A WSGI app has no shutdown event, so whoever runs it calls ``close`` when
    it is done with it: gunicorn's ``worker_exit`` hook (gunicorn.conf.py),
    the tests' ``app`` fixture.
    """

    fieldvault_services: Services
    fieldvault_routes: list[tuple[str, Any]]
    fieldvault_auth: AuthMiddleware
    fieldvault_share: DeviceShareMiddleware
    fieldvault_closers: list[Callable[[], None]]

    def close(self) -> None:
        """Release what the app started, in order; requests after this fail."""
        closers, self.fieldvault_closers = self.fieldvault_closers, []
        for close in closers:
            close()


def create_app(config: Config | None = None, *, services: Services | None = None) -> falcon.App:
    """Build the fieldvault WSGI application.

    Args:
        config: Settings; read from ``FIELDVAULT_*`` variables when omitted.
        services: Prebuilt collaborators (tests inject clocks or transports).

    Returns:
        The Falcon app.
    """
    config = config or (services.config if services else Config.from_env())
    configure_logging(config.log_level)
    owns_services = services is None
    services = services or build_services(config)

    key_store = KeyStore(services)
    devices = Devices(services.couch, config.db_name('directory'), config.db_name('config'),
                      enrollment_ttl=config.enrollment_ttl, watch=services.device_watch)
    gateway = build_gateway(services, key_store)
    auth = AuthMiddleware(services.accounts.authenticate, DeviceAuthenticator(devices))
    share = DeviceShareMiddleware(config.device_max_concurrent)
    app = FieldvaultApp(middleware=[
        AccessLogMiddleware(),
        CORSMiddleware(config.cors_origins),
        auth,
        share,
    ])
    app.req_options.strip_url_path_trailing_slash = False
    json_handler = SafeJSONHandler(config.max_body_bytes, config.max_json_depth)
    app.req_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: json_handler})
    app.resp_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: json_handler})
    install_error_handling(app, config.retry_after_seconds)

    routes = _routes(services, key_store, devices, gateway)
    for path, resource in routes:
        app.add_route(path, resource)
    app.add_sink(SyncUnroutedSink(auth.authenticate), prefix='/sync/')
    spec = build_spec(_operations(routes), version=VERSION)
    app.add_route('/openapi.json', OpenAPIResource(spec))
    # Tests and the CLI reach the wiring through these attributes.
    app.fieldvault_services = services
    app.fieldvault_routes = routes
    app.fieldvault_auth = auth
    app.fieldvault_share = share
    # The gateway's push executor first: its last writes still use the client.
    app.fieldvault_closers = [gateway.close]
    if owns_services:
        app.fieldvault_closers.append(services.couch.close)
    return app
