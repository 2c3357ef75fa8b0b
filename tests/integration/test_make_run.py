"""The README's run command on non-default ports: ``make run EMBEDDED_PORT=…``
with ``FIELDVAULT_BIND_PORT`` set starts the embedded database on that port,
creates the databases there (the CLI reads the same URL) and serves on the
bind port: one setting carries through make, the CLI and gunicorn."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import time

import httpx
import pytest

from service.embedded_db import free_port

pytestmark = pytest.mark.integration

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _wait_ready(url: str, process: subprocess.Popen, seconds: float = 180) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f'make run ended with {process.returncode}')
        try:
            answer = httpx.get(url, timeout=2)
            if answer.status_code == 200:
                return answer
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f'{url} did not answer 200 within {seconds} s')


def test_make_run_carries_the_embedded_port_to_the_cli_and_gunicorn(tmp_path):
    db_port, http_port = free_port(), free_port()
    env = {name: value for name, value in os.environ.items()
           if not name.startswith('FIELDVAULT_') and not name.startswith('MAKE')}
    env.update(FIELDVAULT_BIND_PORT=str(http_port), FIELDVAULT_DB_PREFIX='mkrun_',
               FIELDVAULT_LOG_LEVEL='WARNING')
    log = open(tmp_path / 'make-run.log', 'wb')  # noqa: SIM115
    process = subprocess.Popen(
        ['make', '--no-print-directory', 'run', f'EMBEDDED_PORT={db_port}',
         f'EMBEDDED_DIR={tmp_path}'],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        ready = _wait_ready(f'http://127.0.0.1:{http_port}/readyz', process)
        assert ready.json()['status'] == 'ready'
        databases = httpx.get(f'http://127.0.0.1:{db_port}/_all_dbs', timeout=5).json()
        assert {'mkrun_records', 'mkrun_keyvault', 'mkrun_directory'} <= set(databases)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        subprocess.run(['make', '--no-print-directory', 'stop', f'EMBEDDED_DIR={tmp_path}'],
                       cwd=ROOT, env=env, check=False, capture_output=True)
    assert not (tmp_path / 'pouchdb.pid').exists()
    output = (tmp_path / 'make-run.log').read_text(errors='replace')
    assert f'listening on http://127.0.0.1:{db_port}' in output, output[-2000:]
