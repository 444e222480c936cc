"""Playwright driving Debian's Chromium against Django's live_server.

Chromium comes from the operating system (`/usr/bin/chromium`, or CHROMIUM_PATH),
never from a test tool's own download. Without it these tests skip with the
reason, except under CI=true, where the skip is turned into a failure.
A failing test leaves a screenshot in test-artifacts/screenshots/.
"""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the suite may run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"Chromium not found at {CHROMIUM}: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made
    # by the test itself are still plain synchronous calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:  # Playwright gives every launch a fresh, temporary profile of its own
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS]
            )
            yield instance
            instance.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server, request):
    context = browser.new_context(base_url=live_server.url, accept_downloads=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    context.close()


def sign_in(page, username: str, password: str) -> None:
    """Sign in through the form, and through the code step when the account has one."""
    from accounts.models import User
    from tests.factories import totp_code

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    if "/accounts/login/mfa/" in page.url:
        page.get_by_label("Code", exact=True).fill(totp_code(User.objects.get(username=username)))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_load_state()


def confirm_it_is_you(page, username: str, password: str) -> None:
    """Answer the re-authentication prompt: the password, and a backup code where enrolled.

    A backup code rather than the app's code: the sign-in just used the current
    time step's code, and a replay within the step is refused.
    """
    from accounts.mfa import mfa_backup_codes_replace
    from accounts.models import User

    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    page.get_by_label("Your password").fill(password)
    if page.get_by_label("Code", exact=True).count():
        user = User.objects.get(username=username)
        code = mfa_backup_codes_replace(acting_user=user, ip=None)[0]
        page.get_by_label("Backup code").check()
        page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Confirm").click()
