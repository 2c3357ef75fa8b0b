"""Shared fixtures: one real pouchdb-server per test session, a fresh set of
databases per test, and ``TestClient(create_app(test_config))``.

The database server is the same pinned pouchdb-server ``make run`` starts,
on a free loopback port, with its data in a temporary folder.
"""

from __future__ import annotations

import io
import logging
import uuid

import pytest
from falcon import testing

from service.app import build_services, create_app
from service.cli import ensure_databases
from service.config import Config
from service.embedded_db import EmbeddedDB, free_port
from service.logs import JSONFormatter
from tests.support.live import LiveServer

#: Cheap Argon2id for login passwords in tests (one test checks the defaults).
TEST_PASSWORD_PARAMS = {'password_hash_memory_kib': 1024, 'password_hash_iterations': 1}
PASSWORD = 'correct horse battery staple'


@pytest.fixture(scope='session')
def couch_server(tmp_path_factory):
    """A real pouchdb-server for the whole test session."""
    server = EmbeddedDB(free_port(), tmp_path_factory.mktemp('pouchdb')).start()
    yield server
    server.stop()


@pytest.fixture
def test_config(couch_server) -> Config:
    """A config pointing at the session's server with a fresh database prefix."""
    return Config(
        couchdb_url=couch_server.url,
        db_prefix=f't{uuid.uuid4().hex[:10]}_',
        org='org-test',
        # Tests create their staff moments before a sealing; the waiting
        # period has its own tests, with a later clock.
        sealing_waiting_days=0,
        **TEST_PASSWORD_PARAMS,
    )


@pytest.fixture
def services(test_config):
    """Collaborators of the app, with the databases created."""
    built = build_services(test_config)
    ensure_databases(built)
    yield built
    drop_databases(built.couch, test_config.db_prefix)
    built.couch.close()


def drop_databases(couch, prefix: str) -> None:
    """Delete every database a test made (its prefix), with their view indexes.

    The session shares one pouchdb-server, which keeps each database and
    each view index open as LevelDB files: without this, a whole run holds
    tens of thousands of files open and the server fails when it runs out.
    """
    for name in couch.request('GET', '/_all_dbs').json():
        if name.startswith(prefix):
            couch.delete_db(name)


@pytest.fixture
def app(services):
    built = create_app(services=services)
    yield built
    built.close()


@pytest.fixture
def client(app) -> testing.TestClient:
    return testing.TestClient(app)


@pytest.fixture
def captured_logs():
    """Capture every ``fieldvault`` log line written during the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger('fieldvault')
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


class Users:
    """Creates users of each role and logs them in."""

    def __init__(self, services, client) -> None:
        self._services = services
        self._client = client

    def create(self, username: str, roles, *, team: str | None = 'team-a') -> dict:
        return self._services.accounts.create_user(username, PASSWORD, list(roles), team=team)

    def token(self, username: str, roles=None, *, team: str | None = 'team-a') -> str:
        if roles is not None:
            self.create(username, roles, team=team)
        result = self._client.simulate_post(
            '/auth/login', json={'username': username, 'password': PASSWORD})
        assert result.status_code == 200, result.text
        return result.json['token']

    @staticmethod
    def bearer(token: str) -> dict:
        return {'Authorization': f'Bearer {token}'}


@pytest.fixture
def users(services, client) -> Users:
    return Users(services, client)


@pytest.fixture
def role_tokens(users) -> dict[str, str]:
    """A logged-in user of every role: ``{'admin': token, ...}``."""
    return {role: users.token(f'{role}-1', [role]) for role in
            ('worker', 'advocate', 'supervisor', 'admin', 'liaison')}


@pytest.fixture
def live(app):
    """The test's app served over real HTTP on loopback (for the CLI)."""
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture
def env(test_config) -> dict[str, str]:
    """``FIELDVAULT_*`` variables that point operator CLI commands at the test's databases."""
    return {'FIELDVAULT_COUCHDB_URL': test_config.couchdb_url,
            'FIELDVAULT_DB_PREFIX': test_config.db_prefix,
            'FIELDVAULT_ORG': test_config.org,
            'FIELDVAULT_PASSWORD_HASH_MEMORY_KIB': '1024',
            'FIELDVAULT_PASSWORD_HASH_ITERATIONS': '1'}
