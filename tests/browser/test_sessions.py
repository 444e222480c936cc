import re

from playwright.sync_api import expect

from accounts.roles import Role
from tests.browser.conftest import confirm_it_is_you, sign_in
from tests.factories import make_user


def test_revoke_another_session_and_see_it_die(page, browser, live_server, provider, password):
    other_context = browser.new_context(base_url=live_server.url)
    try:
        other = other_context.new_page()
        sign_in(other, "dorothy", password)
        other.goto("/account/settings/")
        expect(other.get_by_role("heading", name="Account Settings")).to_be_visible()

        sign_in(page, "dorothy", password)
        page.goto("/account/security/")
        sessions = page.locator("section[aria-labelledby=sessions-title]")
        rows = sessions.locator("tbody tr")
        expect(rows).to_have_count(2)
        sessions.get_by_label("Your password").fill(password)  # asked at that moment
        rows.filter(has_not_text="This session").get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("status")).to_contain_text("That session is signed out.")
        expect(rows).to_have_count(1)

        other.reload()  # the session is gone from the store: straight back to sign-in
        expect(other).to_have_url(re.compile(r"/accounts/login/"))
        expect(other.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(other.get_by_role("status")).to_contain_text(
            "This session was signed out remotely: from another of your sessions, or by an administrator."
        )
    finally:
        other_context.close()


LINES = "el => { const r = document.createRange(); r.selectNodeContents(el); return r.getClientRects().length; }"


def test_an_address_stays_on_one_line(page, provider, password):
    from django.db import transaction

    from accounts.models import UserSession
    from audit import kinds
    from audit.services import audit_event_record

    page.set_viewport_size({"width": 900, "height": 700})
    sign_in(page, "dorothy", password)
    address = "2001:db8:85a3:8d3:1319:8a2e:370:7348"
    UserSession.objects.filter(user=provider).update(ip=address)
    with transaction.atomic():  # a row for the report's IP column
        audit_event_record(
            kind=kinds.PROFILE_UPDATED, acting_user=provider, account=provider, ip=address
        )
    page.goto("/account/security/")
    cell = page.locator("section[aria-labelledby=sessions-title] td.ip").first
    expect(cell).to_have_text(address)
    assert cell.evaluate(LINES) == 1
    page.goto("/audit/?last=year")
    cell = page.locator("td.ip", has_text=address).first
    expect(cell).to_have_text(address)
    assert cell.evaluate(LINES) == 1


def test_times_are_in_the_viewers_zone(page, provider, password):
    provider.time_zone = "America/Los_Angeles"
    provider.save(update_fields=["time_zone"])
    sign_in(page, "dorothy", password)
    page.goto("/account/security/")
    row = page.locator("section[aria-labelledby=sessions-title] tbody tr", has_text="This session")
    # The zone's own abbreviation, never UTC.
    expect(row).to_contain_text(re.compile(r"\d\d/\d\d/\d{4} \d\d:\d\d [AP]M P[SD]T"))


def test_an_admin_signs_a_nurse_out_everywhere_and_is_told_how_many(
    page, browser, live_server, nurse, password
):
    make_user(Role.PRACTICE_ADMIN, practice=nurse.practice, username="padmin")
    theirs = browser.new_context(base_url=live_server.url)
    try:
        their_page = theirs.new_page()
        sign_in(their_page, "dori", password)
        sign_in(page, "padmin", password)
        page.goto("/practice/staff/")
        row = page.get_by_role("row").filter(has_text="dori")
        row.get_by_role("button", name="Sign out everywhere").click()
        confirm_it_is_you(page, "padmin", password)  # signing in is not a confirmation
        # "1 session", not "1 session(s)".
        expect(page.get_by_role("status")).to_have_text(
            f"Signed {nurse.display_name} out of 1 session."
        )
        their_page.reload()
        expect(their_page).to_have_url(re.compile(r"/accounts/login/"))
    finally:
        theirs.close()
