import re
from base64 import b32decode

from django_otp.oath import totp
from playwright.sync_api import expect

from accounts.models import AuthenticatorDevice
from tests.browser.conftest import sign_in


def code_from_secret(secret: str, *, steps_ahead: int = 0) -> str:
    """What an authenticator app would show for the key printed on the page (with a clock
    `steps_ahead` 30-second steps fast)."""
    return f"{totp(b32decode(secret.replace(' ', '')), drift=steps_ahead):06d}"


def test_enrol_an_authenticator_then_sign_in_with_a_code(page, provider, password):
    sign_in(page, "dorothy", password)
    page.goto("/account/settings/")
    page.get_by_role("link", name="Security").first.click()
    page.get_by_label("Your password").fill(password)  # asked again, at that moment
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.locator("code.secret").inner_text()
    enrolment_code = code_from_secret(secret)
    page.get_by_label("Code from the app").fill(enrolment_code)
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("status")).to_have_text("Two-factor authentication is on.")
    expect(page.get_by_role("list", name="Backup codes").get_by_role("listitem")).to_have_count(10)
    # The session list is there right away, this session in it.
    expect(page.get_by_role("cell", name="This session")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("dorothy")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/mfa/"))
    # The enrolment's code again: a replay, refused even if its 30-second step is not over.
    page.get_by_label("Code", exact=True).fill(enrolment_code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("That code is not right.")).to_be_visible()
    # An app whose clock runs one step fast (the device allows a step either way) shows
    # a code of a step not used yet, whenever this runs. A failure makes the next try
    # wait a second (django-otp's throttle).
    page.wait_for_timeout(1_100)
    # As fast as the device allows: it follows the app's drift (django-otp syncs it), so
    # a confirmation that crossed into the next step left it one step behind.
    device = AuthenticatorDevice.objects.get(user=provider)
    fast = code_from_secret(secret, steps_ahead=device.drift + device.tolerance)
    page.get_by_label("Code", exact=True).fill(fast)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Account Settings")).to_be_visible()
