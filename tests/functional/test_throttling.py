"""Login and enrollment throttling through the real HTTP path, against the
session's pouchdb-server: parallel guesses, the window, the reset after a
success, and device enrollment by source address."""

from __future__ import annotations

import threading

import httpx
import pytest
from falcon import testing

import service.accounts
from service.accounts import Accounts
from service.app import create_app
from tests.conftest import PASSWORD
from tests.support.live import LiveServer

pytestmark = pytest.mark.functional

WRONG = 'wrong password guess'


@pytest.fixture
def counted_checks(monkeypatch):
    """Count every password check the login path makes."""
    calls = []
    lock = threading.Lock()
    real = service.accounts.verify_password

    def counting(password, encoded):
        with lock:
            calls.append(1)
        return real(password, encoded)

    monkeypatch.setattr(service.accounts, 'verify_password', counting)
    return calls


def test_parallel_wrong_logins_check_at_most_the_limit(live, users, counted_checks,
                                                       test_config):
    users.create('adv-par', ['advocate'])
    guesses = 48
    barrier = threading.Barrier(guesses)
    statuses: list[int] = []
    lock = threading.Lock()

    def guess() -> None:
        with httpx.Client(base_url=live.url, timeout=60) as http:
            barrier.wait()
            answer = http.post('/auth/login', json={'username': 'adv-par', 'password': WRONG})
        with lock:
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=guess) for _ in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    limit = test_config.login_max_failures
    assert len(statuses) == guesses
    # A 503 (the database dropped a connection in the burst) refuses the
    # guess before its password is checked; no guess may get in.
    assert set(statuses) <= {401, 429, 503}, statuses
    assert 429 in statuses
    assert len(counted_checks) <= limit
    assert statuses.count(401) <= len(counted_checks)
    for _try in range(3):
        right = httpx.post(live.url + '/auth/login',
                           json={'username': 'adv-par', 'password': PASSWORD}, timeout=60)
        if right.status_code != 503:
            break
    assert right.status_code == 429, right.text
    assert right.json()['code'] == 'login_throttled'
    assert int(right.headers['Retry-After']) > 0
    assert len(counted_checks) <= limit


@pytest.fixture
def clocked(services):
    """An app whose accounts read an injected clock: ``(client, now)``."""
    now = [1_800_000_000.0]
    config = services.config
    services.accounts = Accounts(
        services.couch, services.db('directory'),
        max_failures=config.login_max_failures,
        lockout_seconds=config.login_lockout_seconds,
        password_params=(config.password_hash_memory_kib, config.password_hash_iterations),
        clock=lambda: now[0])
    return testing.TestClient(create_app(services=services)), now


def _login(client, password):
    return client.simulate_post('/auth/login', json={'username': 'adv-clk', 'password': password})


def test_throttle_ends_when_its_window_has_passed(clocked, users, test_config):
    client, now = clocked
    users.create('adv-clk', ['advocate'])
    for _ in range(test_config.login_max_failures):
        assert _login(client, WRONG).status_code == 401
    refused = _login(client, PASSWORD)
    assert refused.status_code == 429
    window = test_config.login_lockout_seconds
    assert 0 < int(refused.headers['Retry-After']) <= window + 1
    now[0] += window - 2
    assert _login(client, PASSWORD).status_code == 429
    now[0] += 3
    assert _login(client, PASSWORD).status_code == 200


def test_a_successful_login_forgets_earlier_failures(clocked, users, test_config):
    client, now = clocked
    users.create('adv-clk', ['advocate'])
    for _round in range(2):
        for _ in range(test_config.login_max_failures - 1):
            assert _login(client, WRONG).status_code == 401
            now[0] += 1
        assert _login(client, PASSWORD).status_code == 200
        now[0] += 1


def test_unknown_user_names_are_throttled_like_known_ones(client, test_config):
    for _ in range(test_config.login_max_failures):
        client.simulate_post('/auth/login', json={'username': 'nobody-here', 'password': WRONG})
    refused = client.simulate_post('/auth/login',
                                   json={'username': 'nobody-here', 'password': WRONG})
    assert refused.status_code == 429


def _enroll_code(client, users, role_tokens, worker='w-enroll'):
    users.create(worker, ['worker'])
    return client.simulate_post('/devices', json={'worker': worker},
                                headers=users.bearer(role_tokens['admin'])).json['enrollment_code']


def test_enrollment_guesses_from_one_address_are_throttled(client, users, role_tokens,
                                                           test_config):
    code = _enroll_code(client, users, role_tokens)
    for index in range(test_config.enroll_max_attempts):
        guess = client.simulate_post('/devices/enroll', json={'code': f'{index:043d}'})
        assert guess.status_code == 401, guess.text
    refused = client.simulate_post('/devices/enroll', json={'code': code})
    assert refused.status_code == 429
    assert refused.json['code'] == 'enrollment_throttled'
    assert int(refused.headers['Retry-After']) > 0
    other = client.simulate_post('/devices/enroll', json={'code': code},
                                 remote_addr='10.0.0.9')
    assert other.status_code == 201, other.text


def test_parallel_enrollment_guesses_reach_the_store_at_most_the_limit(
        services, users, role_tokens, client, test_config, monkeypatch):
    looked_up = []
    lock = threading.Lock()
    app = create_app(services=services)
    enroll = next(resource for path, resource in app.fieldvault_routes
                  if path == '/devices/enroll')
    real = enroll._devices.enroll

    def counting(code):
        with lock:
            looked_up.append(1)
        return real(code)

    monkeypatch.setattr(enroll._devices, 'enroll', counting)
    server = LiveServer(app)
    try:
        guesses = 40
        barrier = threading.Barrier(guesses)

        def guess(index: int) -> None:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                barrier.wait()
                http.post('/devices/enroll', json={'code': f'{index:043d}'})

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(guesses)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.stop()
    assert 0 < len(looked_up) <= test_config.enroll_max_attempts


def test_a_successful_enrollment_forgets_the_address_attempts(client, users, role_tokens,
                                                              test_config):
    for round_ in range(3):
        code = _enroll_code(client, users, role_tokens, worker=f'w-bulk-{round_}')
        for index in range(test_config.enroll_max_attempts - 1):
            client.simulate_post('/devices/enroll', json={'code': f'{index:043d}'})
        assert client.simulate_post('/devices/enroll', json={'code': code}).status_code == 201
