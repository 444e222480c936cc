"""The seed's story with the keyboard alone: Tab, Enter and typing, never a click."""

from playwright.sync_api import expect

from accounts.models import User
from accounts.roles import Role
from tests.factories import make_user, totp_code


def tab_to(page, target, limit: int = 60) -> None:
    """Press Tab until `target` has the focus (as a keyboard user moves through a page)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {target}")


def keyboard_sign_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    tab_to(page, page.get_by_label("Username"))
    page.keyboard.type(username)
    tab_to(page, page.get_by_label("Password"))
    page.keyboard.type(password)
    submit(page)
    if "/accounts/login/mfa/" in page.url:
        tab_to(page, page.get_by_label("Code", exact=True))
        page.keyboard.type(totp_code(User.objects.get(username=username)))
        submit(page)


def submit(page) -> None:
    """Press Enter on a form's field or a link, and wait for the page it leads to."""
    with page.expect_navigation():
        page.keyboard.press("Enter")


def open_menu_item(page, menu: str, item: str) -> None:
    tab_to(page, page.locator("summary", has_text=menu))
    page.keyboard.press("Enter")
    tab_to(page, page.get_by_role("link", name=item, exact=True))
    submit(page)


def view_pin_by_keyboard(page, password: str) -> str:
    open_menu_item(page, "Account", "Account Settings")
    tab_to(page, page.get_by_role("link", name="View", exact=True))
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Enter Your Password")
    expect(dialog).to_be_visible()
    tab_to(page, dialog.get_by_label("Your password"))
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    pin = page.locator("#pin-value").inner_text().strip()
    assert len(pin) == 4 and pin.isdigit()
    return pin


def test_the_seed_story_by_keyboard_alone(page, browser, live_server, provider, password):
    make_user(Role.SUPPORT_AGENT, username="agent", first_name="Sam", last_name="Rivera")
    keyboard_sign_in(page, "dorothy", password)
    pin = view_pin_by_keyboard(page, password)

    context = browser.new_context(base_url=live_server.url)
    try:
        agent = context.new_page()
        keyboard_sign_in(agent, "agent", password)
        tab_to(agent, agent.get_by_role("link", name="Support PIN validation"))
        submit(agent)
        tab_to(agent, agent.get_by_label("Find account"))
        agent.keyboard.type("dorothy")
        submit(agent)
        tab_to(agent, agent.get_by_role("link", name="dorothy Ludwig"))
        submit(agent)
        tab_to(agent, agent.get_by_label("Support PIN the caller gives"))
        agent.keyboard.type(pin)
        submit(agent)
        expect(agent.get_by_role("status")).to_contain_text("The Support PIN matched.")
    finally:
        context.close()  # before live_server stops

    assert view_pin_by_keyboard(page, password) != pin
    open_menu_item(page, "Reports", "Audit Log")
    expect(
        page.get_by_role("cell", name="Support PIN viewed for user dorothy Ludwig").first
    ).to_be_visible()
    # The table scrolls in a region of its own, which the keyboard reaches.
    tab_to(page, page.get_by_role("region", name="Audit events"))


def test_one_menu_is_open_at_a_time_and_escape_or_a_click_elsewhere_closes_it(
    page, practice, password
):
    make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="compliance")
    keyboard_sign_in(page, "compliance", password)
    reports, account = (
        page.locator("details.nav-menu", has_text=name) for name in ("Reports", "Account")
    )
    reports.locator("summary").click()
    expect(reports).to_have_attribute("open", "")
    account.locator("summary").click()  # the other one closes: they overlapped
    expect(account).to_have_attribute("open", "")
    expect(reports).not_to_have_attribute("open", "")
    page.keyboard.press("Escape")
    expect(account).not_to_have_attribute("open", "")
    expect(account.locator("summary")).to_be_focused()
    reports.locator("summary").click()
    page.mouse.click(10, 700)  # on the page, away from the menu
    expect(reports).not_to_have_attribute("open", "")
