"""Closing the app releases what it started: the gateway's push executor, and
the CouchDB client when the app built it; gunicorn's ``worker_exit`` does it."""

from __future__ import annotations

import runpy
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from service.app import build_gateway, create_app
from service.cli import ensure_databases
from service.keystore import KeyStore


def _sync_gateway(app):
    return next(resource for path, resource in app.fieldvault_routes
                if path == '/sync/{db}/_changes')._gateway


def test_closing_an_app_shuts_its_push_executor_and_the_client_it_built(test_config):
    app = create_app(test_config)
    ensure_databases(app.fieldvault_services)
    executor = _sync_gateway(app).push._executor
    assert executor.submit(lambda: 'ran').result() == 'ran'
    app.close()
    with pytest.raises(RuntimeError):
        executor.submit(lambda: 'ran')
    assert app.fieldvault_services.couch.closed
    app.close()  # a second close has nothing left to release


def test_an_app_leaves_open_the_client_it_was_given(services):
    app = create_app(services=services)
    app.close()
    assert not services.couch.closed
    assert services.couch.server_info()


def test_a_gateway_leaves_open_an_executor_it_was_given(services):
    given = ThreadPoolExecutor(max_workers=1)
    try:
        made = build_gateway(services, KeyStore(services))
        gateway = type(made)(
            services.couch, made._dbs, made.push._rules, server_uuid=made.server_uuid,
            max_doc_bytes=1000, longpoll_max_seconds=1, audit=services.audit.record,
            executor=given)
        made.close()
        gateway.close()
        assert given.submit(lambda: 'ran').result() == 'ran'
    finally:
        given.shutdown()


def test_gunicorn_closes_the_app_when_a_worker_exits(test_config):
    settings = runpy.run_path(str(Path(__file__).parents[2] / 'gunicorn.conf.py'))
    app = create_app(test_config)
    executor = _sync_gateway(app).push._executor
    settings['worker_exit'](None, types.SimpleNamespace(wsgi=app))
    with pytest.raises(RuntimeError):
        executor.submit(lambda: 'ran')
    assert app.fieldvault_services.couch.closed
    # A worker whose app failed to load has nothing to close.
    settings['worker_exit'](None, types.SimpleNamespace())
