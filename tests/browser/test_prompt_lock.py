"""A locked account, explained where it is met: the PIN prompt, its dialog, the sign-in page.

One wording everywhere: what is locked, until when, and who can lift it sooner.
The practice admin lifts it (after confirming who they are, which the unlock then
follows) and the owner's prompt works again.
"""

from playwright.sync_api import expect

from accounts.roles import Role
from tests.browser.conftest import confirm_it_is_you, sign_in
from tests.factories import make_user

REMEDY = "A practice administrator of Ludwig Family Medicine can unlock it sooner"


def wrong_passwords_at_the_pin_prompt(page, times: int) -> None:
    page.goto("/account/settings/")
    page.get_by_role("link", name="View", exact=True).click()
    dialog = page.get_by_role("dialog", name="Enter Your Password")
    dialog.get_by_label("Your password").fill("not-my-password-0")
    dialog.get_by_role("button", name="Confirm").click()
    for n in range(1, times):
        page.get_by_role("textbox", name="Your password").fill(f"not-my-password-{n}")
        page.get_by_role("button", name="Confirm").click()


def test_a_locked_pin_prompt_says_until_when_and_who_unlocks(
    page, browser, live_server, provider, password
):
    make_user(Role.PRACTICE_ADMIN, practice=provider.practice, username="padmin")
    sign_in(page, "dorothy", password)
    wrong_passwords_at_the_pin_prompt(page, 5)

    # Still signed in, still on the prompt: no sign-in page, no "Back to sign in".
    expect(page.get_by_role("heading", name="Enter Your Password")).to_be_visible()
    expect(page.get_by_text("Back to sign in")).to_have_count(0)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("are locked until")
    expect(alert).to_contain_text("30 minutes after the last wrong password")
    expect(alert).to_contain_text(REMEDY)
    fifth = alert.inner_text()

    # A sixth try says the same, not something else.
    page.get_by_role("textbox", name="Your password").fill("not-my-password-6")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("alert")).to_have_text(fifth)

    # The dialog says it before anything is typed.
    page.goto("/account/settings/")
    page.get_by_role("link", name="View", exact=True).click()
    dialog = page.get_by_role("dialog", name="Enter Your Password")
    expect(dialog.get_by_role("alert")).to_have_text(fifth)

    # The practice admin unlocks the account (confirming first; the unlock follows).
    admin_context = browser.new_context(base_url=live_server.url)
    try:
        admin = admin_context.new_page()
        sign_in(admin, "padmin", password)
        admin.goto("/practice/staff/")
        row = admin.get_by_role("row").filter(has_text="dorothy")
        row.get_by_role("button", name="Unlock").click()
        confirm_it_is_you(admin, "padmin", password)
        expect(admin.get_by_text("Sign-in unlocked for dorothy Ludwig.")).to_be_visible()
    finally:
        admin_context.close()

    page.goto("/account/settings/")
    page.get_by_role("link", name="View", exact=True).click()
    dialog = page.get_by_role("dialog", name="Enter Your Password")
    expect(dialog.get_by_role("alert")).to_have_count(0)
    dialog.get_by_label("Your password").fill(password)
    dialog.get_by_role("button", name="Confirm").click()
    pin = page.locator("#pin-value").inner_text().strip()
    assert len(pin) == 4 and pin.isdigit()
