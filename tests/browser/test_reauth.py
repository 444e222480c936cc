"""Confirming who one is in the browser: the action that asked for it happens after it.

The confirmation window (REAUTH_SECONDS) is made to have lapsed by dating the
session's last confirmation six minutes back, as if the user had confirmed
then and kept working.
"""

import re
import time

from django.conf import settings
from playwright.sync_api import expect

from accounts.reauth import REAUTH_AT
from accounts.roles import Role
from accounts.session_store import SessionStore
from audit.models import AuditEvent
from break_glass.models import BreakGlassGrant
from tests.browser.conftest import confirm_it_is_you, sign_in
from tests.factories import make_user
from tests.support_pin.helpers import current_pin


def confirmation_lapsed(page) -> None:
    """Date the browser session's last confirmation six minutes back."""
    cookie = next(c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = SessionStore(session_key=cookie["value"])
    session[REAUTH_AT] = time.time() - 6 * 60
    session.save()


def test_an_export_after_the_window_shows_the_prompt_then_the_download(page, provider, password):
    make_user(Role.COMPLIANCE_OFFICER, practice=provider.practice, username="compliance")
    sign_in(page, "compliance", password)
    page.goto("/audit/")
    confirmation_lapsed(page)
    saved = []
    page.on("download", lambda download: saved.append(download.suggested_filename))

    page.get_by_role("link", name="Export to File").click()
    # The prompt is on screen; nothing was saved.
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    assert saved == []

    with page.expect_download() as download_info:
        confirm_it_is_you(page, "compliance", password)
    assert download_info.value.suggested_filename.startswith("audit-log_")
    assert download_info.value.suggested_filename.endswith(".csv")
    # The prompt does not stay behind, filled in, as if nothing had happened.
    expect(page.get_by_role("heading", name="Confirmed: your download starts")).to_be_visible()
    expect(page.get_by_role("heading", name="Confirm it is you")).to_have_count(0)
    page.get_by_role("link", name="Back to where you were").click()
    expect(page.get_by_role("heading", name="Audit Log Report")).to_be_visible()
    assert not [name for name in saved if name.endswith(".html")], saved
    assert AuditEvent.objects.filter(kind="audit.exported").count() == 1


def test_generate_new_pin_after_the_window_generates_it_after_the_password(
    page, provider, password
):
    sign_in(page, "dorothy", password)
    page.goto("/account/settings/")
    before = current_pin(provider)
    confirmation_lapsed(page)

    page.get_by_role("button", name="Generate New PIN").click()
    confirm_it_is_you(page, "dorothy", password)

    expect(page.get_by_text("A new Support PIN was generated.")).to_be_visible()
    assert current_pin(provider) != before
    generated = AuditEvent.objects.filter(kind="support_pin.generated")
    assert generated.count() == 1
    # Going back and reloading performs nothing again: the kept action was used once.
    page.go_back()
    page.reload()
    assert generated.count() == 1


def test_break_glass_after_the_window_opens_with_the_justification_typed(
    page, live_server, provider, password
):
    make_user(Role.SUPPORT_AGENT, username="agent")
    sign_in(page, "agent", password)
    page.goto(f"/support/break-glass/{provider.pk}/")
    confirm_it_is_you(page, "agent", password)
    justification = "Caller lost her phone and cannot read the Support PIN; ticket 4411."
    page.get_by_label("Why is this access needed?").fill(justification)
    confirmation_lapsed(page)  # the agent took a while to write it
    page.get_by_role("button", name="Open break-glass access").click()

    confirm_it_is_you(page, "agent", password)
    expect(page).to_have_url(re.compile(r"/support/break-glass/grant/\d+/$"))
    grant = BreakGlassGrant.objects.get()
    assert grant.justification == justification
    assert page.url == f"{live_server.url}/support/break-glass/grant/{grant.pk}/"
