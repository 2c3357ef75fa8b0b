"""The tablet app served by a separate static host: the worker types the
service's address at enrollment, and the service answers that origin only
when it is one of its configured CORS origins."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import uuid

import pytest

from service.embedded_db import free_port

pytestmark = pytest.mark.browser


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def static_host(app_build):
    """``tablet/dist`` served by python's http.server on its own loopback port."""
    handler = functools.partial(_Quiet, directory=str(app_build))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()
    thread.join(10)


def _allow(stack, origin: str) -> None:
    """Restart the service with ``origin`` as its only CORS origin."""
    stack.service.stop()
    stack.service.env['FIELDVAULT_CORS_ORIGINS'] = origin
    stack.service.start()


def _enroll_from(page, host: str, service: str, code: str) -> None:
    page.goto(host + '/')
    page.wait_for_selector('#enroll-code')
    page.fill('#enroll-code', code)
    page.fill('#enroll-service', service)
    page.click('#enroll-button')


def _screenings(stack) -> list[dict]:
    return [doc for doc in stack.records() if doc.get('type') == 'screening']


def test_an_app_on_a_configured_static_host_enrolls_captures_and_syncs_sealed(
        stack, static_host, field, context):
    _allow(stack, static_host)
    page = context.new_page()
    _enroll_from(page, static_host, stack.service.url, field.register())
    page.wait_for_selector('#instrument', timeout=60_000)
    page.wait_for_function(
        "document.querySelector('#save') && !document.querySelector('#save').disabled",
        timeout=60_000)
    device = json.loads(page.evaluate("localStorage.getItem('fieldvault.device')"))
    assert device['base'] == stack.service.url + '/'

    marker = uuid.uuid4().hex[:10]
    page.check('#confidentiality')
    page.select_option('#answer-QYIT_1', 'no')
    page.fill('#note-QYIT_1', f'CANARY-{marker}')
    code = page.input_value('#youth-code')
    page.click('#save')
    page.wait_for_selector(f'#saved:has-text("{code}")')
    page.wait_for_function(
        "document.querySelector('#status-pending')?.dataset.count === '0'", timeout=60_000)
    page.wait_for_selector('#intake-list li[data-state="synced"]')

    [stored] = _screenings(stack)
    assert stored['youth_code'] == code and stored['device'] == device['device_id']
    assert set(stored['response_notes']) == {'fle', 'rk', 'n', 'ct'}
    assert marker not in json.dumps(stack.records())


def test_an_app_on_a_host_that_is_not_configured_cannot_reach_the_service(
        stack, static_host, field, context):
    _allow(stack, 'http://127.0.0.1:1')
    page = context.new_page()
    code = field.register()
    _enroll_from(page, static_host, stack.service.url, code)
    page.wait_for_selector('#enroll-error:has-text("cannot be reached")')
    assert page.evaluate("localStorage.getItem('fieldvault.device')") is None
    assert page.is_visible('#enroll-code')

    # The browser never sent the code: it still enrolls the app the service serves.
    page.goto(field.app_url)
    page.fill('#enroll-code', code)
    page.click('#enroll-button')
    page.wait_for_selector('#instrument', timeout=60_000)
