"""Passkeys end to end, with Chromium's virtual authenticator (DevTools' WebAuthn domain).

The live server is reached as http://localhost:PORT: WebAuthn needs a domain for the
relying party (an IP address is refused), and `localhost` is a secure context over HTTP.
"""

import re

import pytest
from playwright.sync_api import expect

from accounts.roles import Role
from tests.browser.conftest import confirm_it_is_you, sign_in
from tests.browser.test_every_page import PHONE, problems_of
from tests.factories import make_user


@pytest.fixture
def passkey_site(settings, live_server):
    """The relying party as production would have it for this server's origin."""
    settings.WEBAUTHN_RP_ID = "localhost"
    settings.WEBAUTHN_ORIGINS = [live_server.url]
    settings.OTP_WEBAUTHN_THROTTLE_FACTOR = 0  # the stories retry at once
    assert live_server.url.startswith("http://localhost:")
    return settings


def virtual_authenticator(page) -> tuple[object, str]:
    """A platform authenticator that verifies the user and holds discoverable credentials."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def add_passkey(page, username: str, password: str, name: str) -> None:
    page.goto("/account/security/")
    page.get_by_label("Name of the passkey or security key").fill(name)
    page.get_by_role("button", name="Add a passkey or security key").click()
    confirm_it_is_you(page, username, password)  # asked first, then the add goes on
    create = page.get_by_role("button", name="Create the passkey")
    expect(create).to_be_visible()
    assert problems_of(page) == []
    create.click()
    expect(page.get_by_text(f"Passkey “{name}” added.")).to_be_visible()
    expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()


def password_step(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Use your passkey")).to_be_visible()


def test_add_a_passkey_sign_in_with_it_and_open_the_pin_view_with_it(
    page, passkey_site, live_server, provider, password
):
    page.set_viewport_size(PHONE)  # the new screens are checked on a phone, through axe
    cdp, authenticator = virtual_authenticator(page)
    sign_in(page, "dorothy", password)
    add_passkey(page, "dorothy", password, "Work laptop")
    held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(held["credentials"]) == 1
    assert problems_of(page) == []  # the tab with its list of passkeys

    page.get_by_role("button", name="Sign out").click()
    # Opened at an address the passkeys are not bound to, the page says where they work
    # and shows no button that could only fail (a foreign origin's answer is refused by
    # the server: tests/accounts/test_passkeys.py).
    passkey_site.WEBAUTHN_ORIGINS = ["https://ehr.example.org"]
    password_step(page, "dorothy", password)
    assert problems_of(page) == []
    expect(page.get_by_text("Passkeys work only at https://ehr.example.org")).to_be_visible()
    use = page.get_by_role("button", name="Use your passkey or security key")
    expect(use).to_have_count(0)
    passkey_site.WEBAUTHN_ORIGINS = [live_server.url]
    page.reload()
    use.click()
    expect(page.get_by_role("heading", name="Account Settings")).to_be_visible()

    # Re-authentication with the passkey: the PIN view asks, the passkey and password answer.
    page.get_by_role("link", name="View", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    assert problems_of(page) == []
    dialog.get_by_role("button", name="Use your passkey or security key").click()
    expect(dialog.get_by_text("Verification successful!")).to_be_visible()
    expect(dialog.get_by_label("Passkey or security key")).to_be_checked()
    dialog.get_by_label("Your password").fill(password)
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.locator("#pin-value")).to_have_text(re.compile(r"^[0-9]{4}$"))


def test_a_privileged_role_without_a_passkey_is_held_until_it_adds_one(
    page, passkey_site, practice, password
):
    make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="carol", grace=False)
    page.set_viewport_size(PHONE)
    virtual_authenticator(page)
    sign_in(page, "carol", password)  # with the authenticator app
    expect(page).to_have_url(re.compile(r"/account/security/$"))
    expect(page.get_by_text("Your role requires a passkey or security key.")).to_be_visible()
    assert problems_of(page) == []
    page.goto("/audit/")
    expect(page).to_have_url(re.compile(r"/account/security/$"))
    add_passkey(page, "carol", password, "Blue key")
    page.goto("/audit/")
    expect(page.get_by_role("heading", name="Audit Log Report")).to_be_visible()
