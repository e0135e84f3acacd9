"""Fixtures for the dashboard's browser tests: Debian's Chromium driven by Playwright's sync API.

No browser can be downloaded here, so Playwright launches the system Chromium
(`apt-get install -y chromium`); without it these tests are skipped, saying so. Screenshots of
each main page go to test-artifacts/screenshots/ (git-ignored) for a person to look at.
"""
import os
from pathlib import Path

import pytest

from campaigns import services
from campaigns.models import Membership
from tests import factories

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "pw-for-tests-123"  # tests.factories.UserFactory's
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's Chromium (`apt-get install -y chromium`) "
                    "to run the dashboard's browser tests")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, and Django then refuses the ORM
    # calls a test makes between page actions. Nothing here is really async: lift the check while
    # the browser is up, and only then.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_context(chromium, live_server):
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900},
                                   locale="en-US")
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(browser_context):
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def shoot():
    """shoot(page, name): a full-page screenshot under test-artifacts/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, *, full_page: bool = True) -> Path:
        # Let players show their first frame rather than a loading spinner (at most 5 s).
        page.wait_for_function("Array.from(document.querySelectorAll('video'))"
                               ".every(v => v.readyState >= 2 || v.error)", timeout=5000)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


@pytest.fixture
def member():
    """member(role, organization=None) -> a user of that organization with that role."""

    def make(role: str = Membership.Role.ADMIN, organization=None, username: str | None = None):
        organization = organization or factories.OrganizationFactory(name="Trailhead Outdoor Co.")
        user = factories.UserFactory(**({"username": username} if username else {}))
        services.membership_set(user=user, organization=organization, role=role)
        return user

    return make


def sign_in(page, user) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
