from playwright.sync_api import expect

from accounts.roles import Role
from audit import kinds
from audit.services import audit_event_record
from tests.browser.conftest import sign_in
from tests.factories import make_user


def test_compliance_reads_the_dashboard_and_follows_a_bar_to_the_report(
    page, provider, other_provider, agent, password
):
    """The charts are drawn (SVG, under the strict CSP) with their tables; a bar opens the
    report filtered to its kind and day, which lists exactly the events it counted."""
    make_user(Role.COMPLIANCE_OFFICER, practice=provider.practice, username="compliance")
    for _ in range(2):
        audit_event_record(
            kind=kinds.SUPPORT_PIN_VALIDATION_FAILED, acting_user=agent, account=provider, ip=None
        )
    audit_event_record(
        kind=kinds.SUPPORT_PIN_VIEWED, acting_user=provider, account=provider, ip=None
    )
    # Another practice's activity, which this officer must not see counted.
    audit_event_record(
        kind=kinds.SUPPORT_PIN_VALIDATION_FAILED, acting_user=agent, account=other_provider, ip=None
    )
    errors = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )

    sign_in(page, "compliance", password)
    page.get_by_text("Reports", exact=True).click()
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Compliance dashboard")).to_be_visible()
    expect(page.locator("svg.chart")).to_have_count(5)
    pins = page.get_by_role("region", name="Support PIN activity, numbers")
    expect(pins.get_by_role("link", name="2", exact=True)).to_have_count(1)  # today's failures
    expect(pins.get_by_role("link", name="1", exact=True)).to_have_count(1)  # today's view
    agents = page.get_by_role("region", name="Agents by failed validations, numbers")
    expect(agents.get_by_role("link", name="2", exact=True)).to_be_visible()  # not 3
    # The bars' colours come from the stylesheet: a filled rect, not a black default.
    bar = page.locator('section:has(#chart-pins) svg a[href*="validation_failed"] rect')
    assert bar.evaluate("r => getComputedStyle(r).fill") == "rgb(180, 35, 24)"

    page.get_by_role("navigation", name="Period").get_by_role("link", name="Last 7 days").click()
    expect(page.get_by_role("link", name="Last 7 days")).to_have_attribute("aria-current", "page")
    page.locator('section:has(#chart-pins) svg a[href*="validation_failed"]').click()
    expect(page.get_by_role("heading", name="Audit Log Report")).to_be_visible()
    expect(page.get_by_label("Event", exact=True)).to_have_value(
        "Support PIN: validation failed"  # the kind's name, though the link carries its code
    )
    rows = page.get_by_role(
        "cell", name="Unsuccessful validation of Support PIN for user dorothy Ludwig"
    )
    expect(rows).to_have_count(2)
    expect(
        page.get_by_role("cell", name="Support PIN viewed for user dorothy Ludwig")
    ).to_have_count(0)
    assert not [e for e in errors if "Content Security Policy" in e], errors
