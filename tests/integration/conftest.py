"""Integration fixtures: the service under gunicorn (a subprocess on a free
port, against the session pouchdb-server) and tablets running PouchDB 9."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from service.app import build_services
from service.cli import ensure_databases
from service.config import Config
from service.embedded_db import free_port
from sync.devices import Devices

ROOT = pathlib.Path(__file__).resolve().parents[2]
TABLET = ROOT / 'tests' / 'integration' / 'node' / 'tablet.mjs'
ORG = 'org-test'


class Service:
    """fieldvault under gunicorn, restartable on the same port."""

    def __init__(self, couch_url: str, prefix: str, log_dir: pathlib.Path) -> None:
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        # Only the service's own FIELDVAULT_* settings: it refuses unknown ones,
        # and the tests' own (the screenshot folder) are not its.
        self.env = {
            **{name: value for name, value in os.environ.items()
               if name != 'FIELDVAULT_TEST_SCREENSHOTS'},
            'FIELDVAULT_COUCHDB_URL': couch_url,
            'FIELDVAULT_DB_PREFIX': prefix,
            'FIELDVAULT_ORG': ORG,
            'FIELDVAULT_PASSWORD_HASH_MEMORY_KIB': '1024',
            'FIELDVAULT_PASSWORD_HASH_ITERATIONS': '1',
            'FIELDVAULT_LONGPOLL_MAX_SECONDS': '5',
            'FIELDVAULT_LOG_LEVEL': 'WARNING',
        }
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None

    def start(self) -> 'Service':
        log = open(self.log_dir / f'gunicorn-{time.time_ns()}.log', 'wb')  # noqa: SIM115
        self.process = subprocess.Popen(
            # The deployment's own settings (gunicorn.conf.py: the default
            # worker class), one worker so one process holds every session.
            [sys.executable, '-m', 'gunicorn', '--config', 'gunicorn.conf.py',
             '--bind', f'127.0.0.1:{self.port}', '--workers', '1',
             'service.app:create_app()'],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + '/healthz', timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError('gunicorn did not start')

    def kill(self) -> None:
        """Kill the whole service abruptly (SIGKILL), as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        # SIGKILL of the arbiter leaves its worker; wait until the port is free.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + '/healthz', timeout=0.5)
                time.sleep(0.2)
            except httpx.HTTPError:
                return

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def stack(couch_server, tmp_path):
    """A fresh deployment: databases, the service under gunicorn, helpers."""
    prefix = f'i{uuid.uuid4().hex[:10]}_'
    config = Config(couchdb_url=couch_server.url, db_prefix=prefix, org=ORG,
                    password_hash_memory_kib=1024, password_hash_iterations=1)
    services = build_services(config)
    ensure_databases(services)
    service = Service(couch_server.url, prefix, tmp_path).start()
    yield Stack(service, services, tmp_path)
    service.stop()
    services.couch.close()


class Stack:
    """The running service plus direct database access for assertions."""

    def __init__(self, service: Service, services, tmp_path: pathlib.Path) -> None:
        self.service = service
        self.services = services
        self.tmp_path = tmp_path
        self.devices = Devices(services.couch, services.db('directory'), services.db('config'))

    def enroll(self, worker: str) -> dict:
        """Create the worker (if needed), register a device and enroll it over HTTP."""
        try:
            self.services.accounts.create_user(worker, 'correct horse battery staple', ['worker'])
        except Exception:  # noqa: BLE001 - the worker exists
            pass
        code = self.devices.register(worker)['enrollment_code']
        answer = httpx.post(self.service.url + '/devices/enroll', json={'code': code}, timeout=10)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def tablet(self, creds: dict, action: str, *, name: str, db: str = 'records',
               docs=None, bearer: bool = False, timeout: float = 120, background=False, **extra):
        """Run the node tablet; return its JSON result (or the process)."""
        config = {'dir': str(self.tmp_path / f'tablet-{name}'), 'url': self.service.url + '/sync/',
                  'db': db, 'action': action, 'docs': docs or [], **extra}
        if bearer:
            config['token'] = creds['token']
        else:
            config['auth'] = {'username': creds['device_id'], 'password': creds['secret']}
        path = self.tmp_path / f'{name}-{action}-{time.time_ns()}.json'
        path.write_text(json.dumps(config))
        process = subprocess.Popen(['node', str(TABLET), str(path)], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if background:
            return process
        out, err = process.communicate(timeout=timeout)
        assert out, err.decode()[-2000:]
        return json.loads(out.decode().strip().splitlines()[-1])

    def records(self) -> list[dict]:
        return [row['doc'] for row in self.services.couch.all_docs(
            self.services.db('records'), include_docs=True)
            if not row['id'].startswith('_design/')]
