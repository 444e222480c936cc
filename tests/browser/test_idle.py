import re

from playwright.sync_api import expect

from tests.browser.conftest import sign_in


def test_warned_then_signed_out_after_inactivity(page, provider, password, settings):
    settings.SESSION_IDLE_TIMEOUT = 4
    settings.SESSION_IDLE_WARNING = 2
    sign_in(page, "dorothy", password)
    page.goto("/account/settings/")
    # An edit left unsaved does not hold the page: "Leave site?" is not asked (and, were it
    # asked, staying would keep the page, and the test would fail).
    asked = []
    page.on("dialog", lambda prompt: asked.append(prompt.type) or prompt.dismiss())
    page.get_by_label("Job Title").fill("Typed, never saved")
    dialog = page.get_by_role("dialog", name="Are you still there?")
    expect(dialog).to_be_visible(timeout=6000)
    expect(dialog.get_by_role("button", name="Stay signed in")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/accounts/login/"), timeout=10000)
    assert asked == []
    page.goto("/account/settings/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_stay_signed_in_keeps_the_session(page, provider, password, settings):
    settings.SESSION_IDLE_TIMEOUT = 4
    settings.SESSION_IDLE_WARNING = 3
    sign_in(page, "dorothy", password)
    page.goto("/account/settings/")
    dialog = page.get_by_role("dialog", name="Are you still there?")
    expect(dialog).to_be_visible(timeout=6000)
    dialog.get_by_role("button", name="Stay signed in").click()
    expect(dialog).to_be_hidden()
    page.wait_for_timeout(2500)  # past the moment the session would have ended
    page.reload()
    expect(page.get_by_role("heading", name="Account Settings")).to_be_visible()
