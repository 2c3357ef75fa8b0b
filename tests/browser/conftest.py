"""A real headless Chromium (Debian's ``chromium``) driven by Playwright."""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

CHROMIUM = os.environ.get('FIELDVAULT_CHROMIUM', '/usr/bin/chromium')


@pytest.fixture(scope='session')
def browser():
    if not shutil.which(CHROMIUM):
        pytest.skip(f'no chromium at {CHROMIUM} (apt-get install -y chromium)')
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={'width': 1280, 'height': 800})
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def shots(tmp_path):
    """Where screenshots go: ``FIELDVAULT_DESK_SCREENSHOTS`` (docs/screenshots) or a temp dir."""
    target = pathlib.Path(os.environ.get('FIELDVAULT_DESK_SCREENSHOTS') or tmp_path)
    target.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> None:
        page.screenshot(path=str(target / f'{name}.png'))
    return take
