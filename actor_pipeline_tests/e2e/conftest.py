"""Fixtures of the end-to-end UI tests: a page in headless Debian Chromium, driven by Playwright
(no browser download; ``.ci/run`` installs ``chromium`` with apt-get)."""

import os
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect, sync_playwright

from actor_pipeline_tests.e2e.devserver import ARTIFACTS

CHROMIUM = Path("/usr/bin/chromium")
UI_TIMEOUT_MS = 30_000  # default wait of every Playwright action and expect() (its own default: 5 s)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Keep each phase's report on the test item, so ``page`` knows whether the test failed."""
    report: pytest.TestReport = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(request: pytest.FixtureRequest) -> Iterator[Page]:
    """A 1600x1000 page in headless Chromium (skipped, or failed on CI, without Chromium). When
    the test fails, what the page showed last is kept as ``test-artifacts/<test>-failure.png``."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it with apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run the UI tests")
    expect.set_options(timeout=UI_TIMEOUT_MS)  # the UI loads statuses after the page: often over 5 s
    failure_screenshot = ARTIFACTS / f"{request.node.name}-failure.png"
    failure_screenshot.unlink(missing_ok=True)  # an earlier run's
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            opened = browser.new_page(viewport={"width": 1600, "height": 1000})
            opened.set_default_timeout(UI_TIMEOUT_MS)
            yield opened
            report = getattr(request.node, "report_call", None)
            if report is not None and report.failed:
                with suppress(PlaywrightError):
                    opened.screenshot(path=failure_screenshot, timeout=5_000)
        finally:
            browser.close()
