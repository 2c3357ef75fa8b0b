"""Browser fixtures: the tablet app built from tablet/, the service under
gunicorn (the integration stack), and Debian's chromium driven by Playwright.

Playwright cannot download its own browser builds on this machine, so the
tests use the system chromium through ``executable_path``. Without it the
tests fail with an error saying how to install it: they are never skipped.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

import pytest

from tests.conftest import PASSWORD
from tests.integration.conftest import ORG, ROOT, stack  # noqa: F401 - fixture
from tests.support.lifecycle import Ceremony

_CODE = re.compile(r'enrollment code: (fve1\.\S+)')


@pytest.fixture(scope='session')
def app_build():
    """Build tablet/dist from the sources (fast; the same bytes every time)."""
    done = subprocess.run(['node', 'tablet/build.mjs'], cwd=ROOT, capture_output=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return ROOT / 'tablet' / 'dist'


@pytest.fixture(scope='session')
def chromium_path():
    path = shutil.which('chromium') or shutil.which('chromium-browser')
    if path is None:
        pytest.fail("Debian's chromium is missing: the browser tests need it. Install it "
                    "with 'apt-get install -y chromium' (make test does this as root).",
                    pytrace=False)
    return path


@pytest.fixture(scope='session')
def browser(chromium_path):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                              args=['--no-sandbox'])
        yield launched
        launched.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={'width': 820, 'height': 1180}, locale='en-US')
    yield context
    context.close()


class Field:
    """A deployment with its key ceremony done, ready to register tablets."""

    def __init__(self, stack, tmp_path) -> None:  # noqa: F811 - fixture value
        self.stack = stack
        services = stack.services
        self.ceremony = Ceremony(stack.service.url, tmp_path, ORG,
                                 lambda name, roles, team: services.accounts.create_user(
                                     name, PASSWORD, roles, team=team))
        self.ceremony.setup(advocates=('adv-1',), supervisors=(), workers=('worker-1',))
        self.app_url = stack.service.url + '/app/'

    def register(self, worker: str = 'worker-1') -> str:
        """Register a tablet through the admin's CLI; return the enrollment code."""
        out = self.ceremony.run(['devices', '--home', self.ceremony.homes['admin-1'],
                                 'register', worker]).output
        return _CODE.search(out).group(1)


@pytest.fixture
def field(stack, tmp_path, app_build):  # noqa: F811 - fixture
    return Field(stack, tmp_path)


@pytest.fixture
def page(browser):
    """A page at 1280x800, the desk's target screen."""
    context = browser.new_context(viewport={'width': 1280, 'height': 800})
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def shots(tmp_path):
    """Where screenshots go: ``FIELDVAULT_TEST_SCREENSHOTS`` (docs/screenshots) or a temp dir."""
    target = pathlib.Path(os.environ.get('FIELDVAULT_TEST_SCREENSHOTS') or tmp_path)
    target.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> None:
        page.screenshot(path=str(target / f'{name}.png'))
    return take
