"""Every page every role can open, on a phone and through axe-core.

The pages are those `tests/security/test_access_matrix.py` says a role opens
(200); each is loaded in Chromium at 390 x 844 CSS pixels, and must fit the
screen's width (no horizontal page scroll: wide tables scroll in their own
region) and have no serious or critical axe-core violation. The strict CSP
stays on: axe is evaluated through the browser's debugging protocol, which a
page's policy does not govern, and no page is served differently for the test.
"""

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse
from playwright.sync_api import expect

from accounts.roles import Role
from tests.browser.conftest import sign_in
from tests.factories import PASSWORD
from tests.security.test_access_matrix import ANON, MATRIX, OK, concrete_url

PHONE = {"width": 390, "height": 844}
BLOCKING = {"serious", "critical"}
NOT_PAGES = {  # JSON, images, scripts
    "healthz",
    "session_status",
    "profile_image",
    "audit_patients",
    "audit_practices",
    "otp_webauthn:js-i18n-catalog",
}
AXE = Axe()


@pytest.fixture
def phone(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def problems_of(page) -> list[str]:
    """What is wrong with the page on screen: too wide, or serious accessibility faults."""
    found = []
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > PHONE["width"]:
        wide = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter(e => e.checkVisibility() && !e.parentElement.closest('.table-wrap'))
                .filter(e => e.getBoundingClientRect().right > innerWidth + 1)
                .slice(-3).map(e => `${e.tagName}.${e.className} (${e.textContent.trim().slice(0, 30)})`)"""
        )
        found.append(f"{width} px wide (widest: {wide})")
    # A control wider than its card does not widen the page, yet it is cut off or
    # runs over the card's edge: the page is not laid out for the screen either.
    sticking_out = page.evaluate(
        """() => [...document.querySelectorAll('.card input, .card select, .card textarea, .card button')]
            .filter(e => e.checkVisibility() && !e.closest('.table-wrap'))
            .filter(e => e.getBoundingClientRect().right > e.closest('.card').getBoundingClientRect().right + 0.5)
            .slice(0, 3).map(e => `${e.tagName} ${e.name || e.id}`)"""
    )
    if sticking_out:
        found.append(f"controls wider than their card: {sticking_out}")
    dangling = page.evaluate(
        """() => [...document.querySelectorAll('[aria-describedby], [aria-labelledby]')]
            .flatMap(e => ['aria-describedby', 'aria-labelledby']
                .flatMap(a => (e.getAttribute(a) || '').split(/\\s+/).filter(Boolean)))
            .filter(id => !document.getElementById(id))"""
    )
    if dangling:
        found.append(f"aria ids not on the page: {dangling}")
    results = AXE.run(page)
    for violation in results.response["violations"]:
        if violation["impact"] in BLOCKING:
            targets = [", ".join(node["target"]) for node in violation["nodes"][:3]]
            found.append(f"axe {violation['id']} ({violation['impact']}): {targets}")
    return found


def pages_for(role: str, people) -> list[str]:
    return [
        concrete_url(name, people)
        for name, expected in sorted(MATRIX.items())
        if expected[role] == OK and name not in NOT_PAGES
    ]


@pytest.mark.parametrize("role", [ANON, *[role.value for role in Role]])
def test_every_page_fits_a_phone_and_passes_axe(phone, people, role):
    if role != ANON:
        sign_in(phone, people[role].username, PASSWORD)
    wrong = {}
    for url in pages_for(role, people):
        response = phone.goto(url)
        assert response.status == 200, url
        if found := problems_of(phone):
            wrong[url] = found
    assert wrong == {}, wrong


def test_the_pin_modal_fits_a_phone_and_passes_axe(phone, people):
    provider = people[Role.PROVIDER.value]
    sign_in(phone, provider.username, PASSWORD)
    phone.goto(reverse("account_settings"))
    phone.get_by_role("link", name="View", exact=True).click()
    expect(phone.get_by_role("dialog")).to_be_visible()
    assert problems_of(phone) == []


def test_error_states_and_the_lockout_page_pass_axe(phone, people):
    nurse = people[Role.NURSE.value]
    phone.goto(reverse("login"))
    for attempt in range(5):
        phone.get_by_label("Username").fill(nurse.username)
        phone.get_by_label("Password").fill(f"wrong-password-{attempt}")
        phone.get_by_role("button", name="Sign in").click()
        phone.wait_for_load_state()
        if attempt == 0:  # the form's error
            expect(phone.get_by_role("alert").first).to_be_visible()
            assert problems_of(phone) == []
    expect(phone.get_by_text("locked", exact=False).first).to_be_visible()  # the lockout page
    assert problems_of(phone) == []


def test_field_errors_are_tied_to_their_inputs(phone, people):
    officer = people[Role.COMPLIANCE_OFFICER.value]
    sign_in(phone, officer.username, PASSWORD)
    response = phone.goto("/audit/?date_from=2024-13-45&username=" + "x" * 151)
    assert response.status == 400
    date_from = phone.get_by_label("From")
    expect(date_from).to_have_attribute("aria-invalid", "true")
    described = date_from.get_attribute("aria-describedby")
    assert phone.locator(f"#{described}").inner_text().strip() != ""
    assert problems_of(phone) == []


def test_an_alert_and_a_refused_acknowledgement_fit_a_phone_and_pass_axe(phone, people, settings):
    from alerts.services import alerts_evaluate
    from support_pin.services import support_pin_reveal

    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 1
    support_pin_reveal(acting_user=people[Role.NURSE.value], ip=None)
    [alert] = alerts_evaluate()
    sign_in(phone, people[Role.COMPLIANCE_OFFICER.value].username, PASSWORD)
    phone.goto(reverse("alert_detail", kwargs={"alert_id": alert.pk}))
    assert problems_of(phone) == []
    phone.get_by_role("button", name="Acknowledge").click()
    expect(phone.get_by_label("Note")).to_have_attribute("aria-invalid", "true")
    assert problems_of(phone) == []
