"""Live tablets under the deployment's default gunicorn settings.

Waiting long-polls hold no worker thread (the service keeps answering while
more polls wait than a threaded worker has threads), one device still holds
a bounded share, and a staff session ended on one instance ends on another
instance of the same database. Every wait here is bounded; nothing asserts
how fast anything is.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.integration.conftest import Service

pytestmark = pytest.mark.integration

PASSWORD = 'correct horse battery staple'


class _Poll(threading.Thread):
    """One streamed ``_changes`` long-poll with heartbeats, read to its end."""

    def __init__(self, url: str, creds: dict, db: str) -> None:
        super().__init__(daemon=True)
        self._url = f'{url}/sync/{db}/_changes'
        self._auth = (creds['device_id'], creds['secret'])
        self.serving = threading.Event()  # the first heartbeat arrived
        self.done = threading.Event()
        self.status: int | None = None

    def run(self) -> None:
        try:
            with httpx.stream('GET', self._url, auth=self._auth, timeout=120,
                              params={'feed': 'longpoll', 'since': 'now',
                                      'heartbeat': 300}) as response:
                self.status = response.status_code
                for chunk in response.iter_raw():
                    if chunk:
                        self.serving.set()
        except httpx.HTTPError:
            pass
        finally:
            self.done.set()


def _restart_with(stack, **env) -> None:
    stack.service.stop()
    stack.service.env.update(env)
    stack.service.start()


def _wait_serving(polls, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    for poll in polls:
        if not poll.serving.wait(max(deadline - time.monotonic(), 0)):
            return False
    return True


def test_waiting_long_polls_hold_no_thread_and_the_service_keeps_answering(stack):
    # Polls wait up to 50 s here, so every one opened below is still waiting
    # when the checks run; 24 of them are three times a threaded worker's 8.
    _restart_with(stack, FIELDVAULT_LONGPOLL_MAX_SECONDS='50')
    devices = [stack.enroll(f'w-live-{index}') for index in range(12)]
    polls = [_Poll(stack.service.url, creds, db) for creds in devices
             for db in ('records', 'config')]
    for poll in polls:
        poll.start()
    try:
        assert _wait_serving(polls, 40), (
            f'{sum(not p.serving.is_set() for p in polls)} of {len(polls)} waiting polls '
            'were never served')
        assert httpx.get(stack.service.url + '/healthz', timeout=40).status_code == 200
        assert all(poll.status == 200 for poll in polls)
        # Answered while every poll is still open: none of them was ended to make room.
        assert not any(poll.done.is_set() for poll in polls)
    finally:
        stack.service.stop()


def test_one_device_holds_a_bounded_share_under_the_default_worker(stack):
    _restart_with(stack, FIELDVAULT_LONGPOLL_MAX_SECONDS='50',
                  FIELDVAULT_DEVICE_MAX_CONCURRENT='4')
    greedy, other = stack.enroll('w-greedy'), stack.enroll('w-other')
    polls = [_Poll(stack.service.url, greedy, 'records') for _ in range(4)]
    for poll in polls:
        poll.start()
    try:
        assert _wait_serving(polls, 40)
        extra = httpx.get(stack.service.url + '/sync/records/',
                          auth=(greedy['device_id'], greedy['secret']), timeout=40)
        assert extra.status_code == 429
        assert extra.json()['code'] == 'too_many_requests'
        assert int(extra.headers['Retry-After']) >= 1
        served = httpx.get(stack.service.url + '/sync/records/',
                           auth=(other['device_id'], other['secret']), timeout=40)
        assert served.status_code == 200
        assert not any(poll.done.is_set() for poll in polls)
    finally:
        stack.service.stop()


def _login(url: str, username: str) -> dict:
    answer = httpx.post(url + '/auth/login', json={'username': username, 'password': PASSWORD},
                        timeout=30)
    assert answer.status_code == 200, answer.text
    return {'Authorization': 'Bearer ' + answer.json()['token']}


def _me(url: str, headers: dict) -> int:
    return httpx.get(url + '/auth/me', headers=headers, timeout=30).status_code


def _until_refused(url: str, headers: dict, seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    while (status := _me(url, headers)) == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    return status


@pytest.fixture
def second(stack):
    """A second instance of the service on the same databases."""
    other = Service(stack.service.env['FIELDVAULT_COUCHDB_URL'],
                    stack.service.env['FIELDVAULT_DB_PREFIX'], stack.tmp_path).start()
    yield other
    other.stop()


def test_a_logout_on_one_instance_ends_the_session_on_another(stack, second):
    stack.services.accounts.create_user('sam-staff', PASSWORD, ['supervisor'])
    headers = _login(stack.service.url, 'sam-staff')
    # Served several times by the second instance first, so it holds the
    # session in memory when the logout lands.
    assert [_me(second.url, headers) for _ in range(5)] == [200] * 5
    answer = httpx.post(stack.service.url + '/auth/logout', headers=headers, timeout=30)
    assert answer.status_code == 200
    assert _me(stack.service.url, headers) == 401
    assert _until_refused(second.url, headers) == 401


def test_disabling_a_user_on_one_instance_ends_their_sessions_on_another(stack, second):
    stack.services.accounts.create_user('ada-admin', PASSWORD, ['admin'])
    stack.services.accounts.create_user('tom-staff', PASSWORD, ['supervisor'])
    admin, headers = _login(stack.service.url, 'ada-admin'), _login(second.url, 'tom-staff')
    assert [_me(second.url, headers) for _ in range(5)] == [200] * 5
    answer = httpx.patch(stack.service.url + '/users/tom-staff', json={'disabled': True},
                         headers=admin, timeout=30)
    assert answer.status_code == 200, answer.text
    assert _until_refused(second.url, headers) == 401


def test_a_role_change_on_one_instance_ends_the_sessions_on_another(stack, second):
    # A role change ends the user's sessions (they log in again with the new
    # roles), so the other instance must stop serving the roles it held.
    stack.services.accounts.create_user('ada-admin', PASSWORD, ['admin'])
    stack.services.accounts.create_user('kim-staff', PASSWORD, ['supervisor'])
    admin, headers = _login(stack.service.url, 'ada-admin'), _login(second.url, 'kim-staff')
    assert [_me(second.url, headers) for _ in range(5)] == [200] * 5
    answer = httpx.patch(stack.service.url + '/users/kim-staff', json={'roles': ['worker']},
                         headers=admin, timeout=30)
    assert answer.status_code == 200, answer.text
    assert _until_refused(second.url, headers) == 401
    again = httpx.get(second.url + '/auth/me', headers=_login(second.url, 'kim-staff'),
                      timeout=30)
    assert again.status_code == 200 and again.json()['roles'] == ['worker']
