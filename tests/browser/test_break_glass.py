import re

from playwright.sync_api import expect

from accounts.roles import Role
from tests.browser.conftest import confirm_it_is_you, sign_in
from tests.factories import make_user

REASON = "Caller lost her phone and cannot read her Support PIN; verified by a callback."


def test_agent_opens_break_glass_with_a_justification(page, provider, password):
    make_user(Role.SUPPORT_AGENT, username="agent", first_name="Sam", last_name="Rivera")
    sign_in(page, "agent", password)
    page.goto(f"/support/validate/?account={provider.pk}")
    page.get_by_role("link", name="Open break-glass access").click()
    confirm_it_is_you(page, "agent", password)
    page.get_by_label("Why is this access needed?").fill("because")
    page.get_by_label("For how many minutes").fill("90")
    page.get_by_role("button", name="Open break-glass access").click()
    expect(page.get_by_text("Write at least 30 characters")).to_be_visible()
    expect(page.get_by_text("Enter a whole number of minutes, from 1 to 60.")).to_be_visible()

    page.get_by_label("Why is this access needed?").fill(REASON)
    page.get_by_label("For how many minutes").fill("15")
    page.get_by_role("button", name="Open break-glass access").click()
    expect(page).to_have_url(re.compile(r"/support/break-glass/grant/\d+/"))
    expect(page.get_by_text("496094")).to_be_visible()
    page.get_by_role("button", name="Replace the Support PIN and email the owner").click()
    # A 15-minute grant just opened has 15 minutes left, not "14 more minutes".
    expect(page.get_by_text("Open for 15 more minutes")).to_be_visible()
    expect(page.get_by_text("The Support PIN was replaced and the owner emailed.")).to_be_visible()
