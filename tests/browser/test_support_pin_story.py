"""The seed's story: dorothy views her PIN, an agent validates a wrong one then the right one,
the PIN has changed, and her Audit Log Report tells it in the seed's words."""

from playwright.sync_api import expect

from accounts.roles import Role
from tests.browser.conftest import sign_in
from tests.factories import make_user


def view_pin(page, password: str) -> str:
    page.goto("/account/settings/")
    page.get_by_role("link", name="View", exact=True).click()
    dialog = page.get_by_role("dialog", name="Enter Your Password")
    expect(dialog).to_be_visible()
    expect(
        dialog.get_by_text("To view your PIN codes, please enter your password.")
    ).to_be_visible()
    dialog.get_by_label("Your password").fill(password)
    dialog.get_by_role("button", name="Confirm").click()
    pin = page.locator("#pin-value").inner_text().strip()
    assert len(pin) == 4 and pin.isdigit()
    return pin


def validate_twice(agent, password: str, right_pin: str) -> None:
    """The agent gives a wrong PIN, then the caller's right one."""
    sign_in(agent, "agent", password)
    agent.get_by_role("link", name="Support PIN validation").click()
    agent.get_by_label("Find account").fill("dorothy")
    agent.get_by_role("button", name="Search").click()
    agent.get_by_role("link", name="dorothy Ludwig").click()
    wrong = f"{(int(right_pin) + 1) % 10000:04d}"
    agent.get_by_label("Support PIN the caller gives").fill(wrong)
    agent.get_by_role("button", name="Validate").click()
    expect(agent.get_by_role("status")).to_have_text("The Support PIN did not match.")
    expect(agent.get_by_text(right_pin)).to_have_count(0)
    agent.get_by_label("Support PIN the caller gives").fill(right_pin)
    agent.get_by_role("button", name="Validate").click()
    expect(agent.get_by_role("status")).to_contain_text("The Support PIN matched.")


def test_seed_story(page, browser, live_server, provider, password):
    make_user(Role.SUPPORT_AGENT, username="agent", first_name="Sam", last_name="Rivera")
    sign_in(page, "dorothy", password)
    first_pin = view_pin(page, password)

    agent_context = browser.new_context(base_url=live_server.url)
    try:
        agent = agent_context.new_page()
        validate_twice(agent, password, first_pin)
    finally:
        agent_context.close()  # before live_server stops, or its threads outlive the test

    second_pin = view_pin(page, password)
    assert second_pin != first_pin

    page.goto("/audit/")
    details = page.locator("table.audit tbody tr td:nth-child(7)").all_inner_texts()
    story = [d for d in details if "PIN" in d]
    assert story[:5] == [
        "Support PIN viewed for user dorothy Ludwig",
        "Generated New PIN for user dorothy Ludwig",
        "Successful validation of Support PIN for user dorothy Ludwig",
        "Unsuccessful validation of Support PIN for user dorothy Ludwig",
        "Support PIN viewed for user dorothy Ludwig",
    ]
    rotation = page.locator("table.audit tbody tr", has_text="Generated New PIN").first
    cells = rotation.locator("td").all_inner_texts()
    assert cells[3] == "" and cells[4:6] == ["Account", "Update"] and cells[7] == "None"
