"""An agent's spray of wrong Support PINs across accounts raises an alert with no one running
a command; the practice's compliance officer finds it under Reports and acknowledges it with a
note."""

import re

from playwright.sync_api import expect

from accounts.roles import Role
from tests.browser.conftest import confirm_it_is_you, sign_in
from tests.factories import make_user
from tests.support_pin.helpers import wrong_pin

NOTE = "Called the agent's manager: a training script run against live accounts. Stopped."


def test_an_agents_spray_raises_an_alert_that_is_acknowledged_with_a_note(
    page, browser, live_server, practice, settings, password
):
    settings.ALERT_AGENT_FAILED_VALIDATIONS_PER_HOUR = 3
    make_user(Role.SUPPORT_AGENT, username="agent", first_name="Sam", last_name="Rivera")
    make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="compliance")
    callers = [
        make_user(Role.NURSE, practice=practice, username=name.lower(), first_name=name)
        for name in ("Ann", "Ben", "Cal")
    ]
    agent_context = browser.new_context(base_url=live_server.url)
    try:
        agent = agent_context.new_page()
        sign_in(agent, "agent", password)
        for caller in callers:
            agent.goto("/support/validate/")
            agent.get_by_label("Find account").fill(caller.username)
            agent.get_by_role("button", name="Search").click()
            agent.get_by_role("link", name=caller.display_name).click()
            agent.get_by_label("Support PIN the caller gives").fill(wrong_pin(caller))
            agent.get_by_role("button", name="Validate").click()
            expect(agent.get_by_role("status")).to_have_text("The Support PIN did not match.")
    finally:
        agent_context.close()  # before live_server stops, or its threads outlive the test

    sign_in(page, "compliance", password)
    page.get_by_text("Reports").click()
    page.get_by_role("link", name="Alerts").click()
    open_alerts = page.get_by_role("region", name="Open alerts")
    expect(open_alerts).to_contain_text(
        "Support agent Sam Rivera failed 3 Support PIN validations across accounts"
    )
    open_alerts.get_by_role("link", name="Open: review and acknowledge").click()
    events = page.get_by_role("region", name="Events behind the alert")
    expect(events.get_by_text("Unsuccessful validation of Support PIN")).to_have_count(3)
    expect(
        page.get_by_role("link", name=re.compile("events behind it in the Audit Log"))
    ).to_be_visible()

    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text("Write a note on what you checked")).to_be_visible()
    page.get_by_label("Note").fill(NOTE)
    page.get_by_role("button", name="Acknowledge").click()
    # An oversight decision asks who is there; the note is kept meanwhile.
    confirm_it_is_you(page, "compliance", password)
    expect(page.get_by_role("status")).to_contain_text(re.compile(r"Alert #\d+ was acknowledged"))
    expect(page.get_by_role("region", name="Open alerts")).to_contain_text(
        "No alert waits to be acknowledged."
    )
    expect(page.get_by_role("region", name="Acknowledged alerts")).to_contain_text(
        "Acknowledged by"
    )
    # The report link opens what the rule counted: the agent's failed validations that day.
    page.get_by_role("link", name=re.compile(r"#\d+")).first.click()
    page.get_by_role("link", name=re.compile("events behind it in the Audit Log")).click()
    expect(page.locator("table.audit tbody tr")).to_have_count(3)
    expect(page.locator("table.audit tbody")).to_contain_text(
        "Unsuccessful validation of Support PIN for user Ann"
    )
    # The acknowledgement and its note are in the log, under the alert's own event.
    page.get_by_label("Event", exact=True).fill("Alert: acknowledged")
    page.get_by_label("Username", exact=True).fill("")
    page.get_by_role("button", name="Update Filter").click()
    expect(page.locator("table.audit tbody")).to_contain_text(f"acknowledged. Note: {NOTE}")


def test_acknowledged_alerts_page_through_on_a_phone_too(
    page, live_server, practice, settings, password
):
    """Sixty acknowledged alerts: two pages, newest first; the pager fits a phone and passes axe."""
    from alerts.services import alert_acknowledge, alerts_evaluate
    from support_pin.services import support_pin_reveal
    from tests.alerts.test_views import acknowledged_copies
    from tests.browser.test_every_page import PHONE, problems_of

    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 1
    officer = make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="compliance")
    support_pin_reveal(acting_user=make_user(Role.NURSE, practice=practice), ip=None)
    [alert] = alerts_evaluate()
    alert_acknowledge(alert=alert, acting_user=officer, note=NOTE, ip=None)
    alert.refresh_from_db()
    copies = acknowledged_copies(alert, 59)

    sign_in(page, "compliance", password)
    page.goto("/audit/alerts/")
    expect(page.get_by_text("Page 1 of 2, newest first.")).to_be_visible()
    acknowledged = page.get_by_role("region", name="Acknowledged alerts")
    expect(acknowledged.get_by_role("link", name=f"#{alert.pk}", exact=True)).to_be_visible()
    page.get_by_role("navigation", name="Pages of acknowledged alerts").get_by_role(
        "link", name="Older"
    ).click()
    expect(page.get_by_text("Page 2 of 2, newest first.")).to_be_visible()
    expect(acknowledged.get_by_role("link", name=f"#{copies[0].pk}", exact=True)).to_be_visible()
    page.set_viewport_size(PHONE)
    assert problems_of(page) == []


def test_an_auditor_reads_that_events_wait_unsigned_at_desktop_width_and_on_a_phone(
    page, db, password
):
    """No checkpoint signed a clinic's events written ten minutes ago: the rule raises, and
    the platform's auditor reads it, and the event behind it, on either screen."""
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from alerts.services import alerts_evaluate
    from tests.browser.conftest import SCREENSHOTS
    from tests.factories import make_practice

    with time_machine.travel(timezone.now() - timedelta(minutes=10), tick=False):
        make_user(Role.PROVIDER, practice=make_practice("Quiet Clinic"), username="quiet")
    make_user(Role.PLATFORM_AUDITOR, username="auditor")
    [alert] = alerts_evaluate()
    sign_in(page, "auditor", password)
    page.goto("/audit/alerts/")
    open_alerts = page.get_by_role("region", name="Open alerts")
    expect(open_alerts).to_contain_text(re.compile(r"Audit events have waited \d+ seconds"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "alerts-unsigned-1280.png"), full_page=True)
    open_alerts.get_by_role("link", name="Open: review and acknowledge").click()
    events = page.get_by_role("region", name="Events behind the alert")
    expect(events).to_contain_text("Practice Quiet Clinic created")
    expect(page.get_by_text("are listed")).to_have_count(0)  # 600 is seconds, not events
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / "alerts-unsigned-390.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page is {width} px wide on a 390 px screen"
    assert alert.summary.endswith("for a signed checkpoint (alert at 300)")
