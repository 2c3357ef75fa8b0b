"""Schemathesis against ``/openapi.json`` of a live gunicorn, as a device, a
worker, an advocate and an admin: no operation answers 5xx, and no answer
repeats a canary planted in an undeclared member or query parameter.

Bounded: a fixed number of examples per operation and role, generated from a
fixed seed (``derandomize``), so a failure replays and the whole run stays
within a few minutes on two cores. Each principal fuzzes the operations its
role may call and the public ones; the others answer 403 before any handler
runs (``test_authorization_matrix.py`` covers that). The service runs on a
pouchdb-server of its own, so a request that upsets the database cannot take
the rest of the test session down with it.
"""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from schemathesis import GenerationMode

from service.app import build_services
from service.cli import ensure_databases
from service.config import Config
from service.embedded_db import EmbeddedDB, free_port
from sync.devices import Devices
from tests.integration.conftest import ORG, Service

pytestmark = pytest.mark.integration

PASSWORD = 'correct horse battery staple'
#: Planted as an undeclared member's name, its value, and a query parameter.
CANARY_KEY = 'JaneDoeQzxCanary'
CANARY_VALUE = 'Jane Doe qzxcanary'
#: Each mark has letters outside hex, so no request id or uuid holds one by chance.
CANARY_MARKS = ('QzxCanary', 'qzxcanary')
EXAMPLES = 30
ROLES = ('device', 'worker', 'advocate', 'admin')


@pytest.fixture(scope='module')
def fuzz_target(tmp_path_factory):
    """A live service with one principal of each fuzzed role: ``(url, headers)``."""
    tmp = tmp_path_factory.mktemp('fuzz')
    database = EmbeddedDB(free_port(), tmp / 'pouchdb').start()
    prefix = f'f{uuid.uuid4().hex[:10]}_'
    config = Config(couchdb_url=database.url, db_prefix=prefix, org=ORG,
                    password_hash_memory_kib=1024, password_hash_iterations=1)
    services = build_services(config)
    ensure_databases(services)
    service = Service(database.url, prefix, tmp).start()
    try:
        headers = {}
        for role in ('worker', 'advocate', 'admin'):
            services.accounts.create_user(f'fz-{role}', PASSWORD, [role], team='team-fz')
            login = httpx.post(service.url + '/auth/login', timeout=30,
                               json={'username': f'fz-{role}', 'password': PASSWORD})
            assert login.status_code == 200, login.text
            headers[role] = {'Authorization': f'Bearer {login.json()["token"]}'}
        devices = Devices(services.couch, services.db('directory'), services.db('config'))
        code = devices.register('fz-worker')['enrollment_code']
        enrolled = httpx.post(service.url + '/devices/enroll', json={'code': code}, timeout=30)
        assert enrolled.status_code == 201, enrolled.text
        creds = enrolled.json()
        basic = base64.b64encode(f'{creds["device_id"]}:{creds["secret"]}'.encode()).decode()
        headers['device'] = {'Authorization': f'Basic {basic}'}
        yield service.url, headers
    finally:
        service.stop()
        services.couch.close()
        database.stop()


def _operations(schema, role: str):
    operations = []
    for result in schema.get_all_operations():
        operation = result.ok()
        roles = operation.definition.raw.get('x-roles')
        if roles is None or role in roles:
            operations.append(operation)
    # Logging out ends the principal's session, so it goes last.
    return sorted(operations, key=lambda op: op.path == '/auth/logout')


def _plant(case) -> None:
    """Put the canary where only an error message could send it back."""
    if isinstance(case.body, dict):
        case.body = {**case.body, CANARY_KEY: CANARY_VALUE}
    case.query = {**(case.query or {}), CANARY_KEY: CANARY_VALUE}


@pytest.mark.parametrize('role', ROLES)
def test_no_operation_answers_5xx_or_repeats_a_canary(fuzz_target, role):
    url, headers = fuzz_target
    spec = httpx.get(url + '/openapi.json', timeout=30).json()
    schema = schemathesis.openapi.from_dict(spec)
    failures: list[str] = []
    statuses: list[int] = []
    operations = _operations(schema, role)
    assert len(operations) >= 8
    for operation in operations:
        cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                          operation.as_strategy(GenerationMode.NEGATIVE))

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=cases, plant=st.booleans())
        def probe(case, plant):
            if plant:
                _plant(case)
            answer = case.call(base_url=url, headers=headers[role], timeout=60)
            statuses.append(answer.status_code)
            where = f'{role} {operation.method.upper()} {operation.path}'
            if answer.status_code >= 500:
                failures.append(f'{where}: {answer.status_code} for {case.as_curl_command()}')
            text = answer.text + str(answer.headers)
            if plant and any(mark in text for mark in CANARY_MARKS):
                failures.append(f'{where}: canary repeated by {case.as_curl_command()}')

        probe()
    assert not failures, '\n'.join(sorted(set(failures))[:40])
    # Every operation was exercised, and not only refused.
    assert len(statuses) >= len(operations) * EXAMPLES // 2
    assert any(status < 400 for status in statuses)

