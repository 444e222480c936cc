"""Forgot password in a phone-sized browser: the request, the mail, the link, the new
password, the other session signed out, and the second factor at the next sign-in."""

import re

from playwright.sync_api import expect

from accounts.mfa import mfa_backup_codes_replace
from outbox.worker import deliver_pending
from tests.browser.conftest import sign_in

NEW_PASSWORD = "Lantern-Orchard-4471"
PHONE = {"width": 390, "height": 844}


def fits_the_width(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_forgot_password_from_the_sign_in_page_to_the_next_sign_in(
    page, browser, live_server, smtp_server, agent, password
):
    desk_context = browser.new_context(base_url=live_server.url)
    try:
        desk = desk_context.new_page()
        sign_in(desk, agent.username, password)
        desk.goto("/support/validate/")
        expect(desk).to_have_url(re.compile(r"/support/validate/"))

        page.set_viewport_size(PHONE)
        page.goto("/accounts/login/")
        page.get_by_role("link", name="Forgot your password?").click()
        expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
        assert fits_the_width(page)
        email = page.get_by_label("Email address")
        email.fill("not an address")
        page.get_by_role("button", name="Email me a link").click()
        expect(email).to_have_attribute("aria-invalid", "true")
        expect(email).to_have_accessible_description(re.compile("Enter a valid email address"))
        page.get_by_label("Email address").fill(agent.email)
        page.get_by_role("button", name="Email me a link").click()
        expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
        assert fits_the_width(page)

        while deliver_pending():
            pass
        (message,) = smtp_server.messages
        assert message["To"] == agent.email
        link = re.search(r"http://\S+/accounts/password-reset/\S+/", message.get_payload()).group(0)

        page.goto(link)
        expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
        assert "/set-password/" in page.url  # the token is no longer in the address
        assert fits_the_width(page)
        new = page.get_by_label("New password", exact=True)
        again = page.get_by_label("New password confirmation")
        new.fill("short")
        again.fill("short")
        page.get_by_role("button", name="Set password").click()
        expect(again).to_have_attribute("aria-invalid", "true")
        expect(again).to_have_accessible_description(re.compile("at least 12 characters"))
        assert fits_the_width(page)
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Set password").click()
        expect(page.get_by_role("heading", name="Your password is changed")).to_be_visible()
        assert fits_the_width(page)

        # The other session was signed out, and this browser was not signed in.
        desk.reload()
        expect(desk).to_have_url(re.compile(r"/accounts/login/"))
        expect(desk.get_by_role("status")).to_contain_text(
            "signed out because the account's password was changed"
        )
        page.goto("/support/validate/")
        expect(page).to_have_url(re.compile(r"/accounts/login/"))

        # The link works once.
        page.goto(link)
        expect(page.get_by_role("alert")).to_contain_text("This link is not valid any more")

        # The next sign-in asks for the second factor (a backup code: the desk used this
        # time step's app code a moment ago, and a replay is refused).
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(agent.username)
        page.get_by_label("Password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/accounts/login/mfa/"))
        assert fits_the_width(page)
        code = mfa_backup_codes_replace(acting_user=agent, ip=None)[0]
        page.get_by_label("Backup code").check()
        page.get_by_label("Code", exact=True).fill(code)
        page.get_by_role("button", name="Verify").click()
        page.goto("/support/validate/")
        expect(page).to_have_url(re.compile(r"/support/validate/"))
    finally:
        desk_context.close()
