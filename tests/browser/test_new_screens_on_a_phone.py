"""The screens added for review and confirmation, and the error pages, on a phone and
through axe-core (as tests/browser/test_every_page.py checks every page a role opens)."""

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from accounts.roles import Role
from break_glass.models import BreakGlassGrant
from tests.browser.conftest import confirm_it_is_you, sign_in
from tests.browser.test_every_page import phone, problems_of  # noqa: F401  (fixture)
from tests.factories import PASSWORD

REASON = "Caller lost her phone and cannot read her Support PIN; verified by a callback."


def test_the_break_glass_review_page_fits_a_phone_and_passes_axe(phone, people):  # noqa: F811
    now = timezone.now()
    grant = BreakGlassGrant.objects.create(
        agent=people[Role.SUPPORT_AGENT.value],
        account=people[Role.PROVIDER.value],
        justification=REASON,
        opened_at=now - timedelta(minutes=20),
        expires_at=now - timedelta(minutes=5),
    )
    sign_in(phone, people[Role.COMPLIANCE_OFFICER.value].username, PASSWORD)
    phone.goto("/audit/break-glass/")
    phone.get_by_role("link", name="Review", exact=True).click()
    expect(
        phone.get_by_role("heading", name=f"Review break-glass access #{grant.pk}")
    ).to_be_visible()
    assert problems_of(phone) == []
    phone.get_by_role("button", name="Record the review").click()  # nothing chosen
    expect(phone.get_by_text("Choose whether the access was justified.")).to_be_visible()
    assert problems_of(phone) == []
    phone.get_by_label("Justified", exact=True).check()
    phone.get_by_label("Note").fill("Called the owner back; she confirmed the call.")
    phone.get_by_role("button", name="Record the review").click()
    confirm_it_is_you(phone, people[Role.COMPLIANCE_OFFICER.value].username, PASSWORD)
    expect(phone.get_by_role("status")).to_contain_text(f"#{grant.pk} was reviewed")
    expect(phone.get_by_text("Justified: reviewed by")).to_be_visible()


def test_the_deactivation_page_fits_a_phone_and_passes_axe(phone, people):  # noqa: F811
    nurse = people[Role.NURSE.value]
    admin = people[Role.PRACTICE_ADMIN.value]
    sign_in(phone, admin.username, PASSWORD)
    phone.goto("/practice/staff/")
    phone.locator(f'a[href="/practice/staff/{nurse.pk}/deactivate/"]').click()
    confirm_it_is_you(phone, admin.username, PASSWORD)
    expect(phone.get_by_role("heading", name=f"Deactivate {nurse.display_name}?")).to_be_visible()
    assert problems_of(phone) == []
    nurse.refresh_from_db()
    assert nurse.is_active  # the page only asks
    phone.get_by_role("button", name=f"Deactivate {nurse.display_name}").click()
    expect(phone.get_by_role("status")).to_contain_text("was deactivated")
    nurse.refresh_from_db()
    assert not nurse.is_active


def test_the_error_pages_fit_a_phone_and_pass_axe(phone, people):  # noqa: F811
    sign_in(phone, people[Role.NURSE.value].username, PASSWORD)
    for url, status, heading in (
        ("/account/settings/", 403, "You cannot open this page"),
        ("/no/such/page/", 404, "Page not found"),
    ):
        assert phone.goto(url).status == status
        expect(phone.get_by_role("heading", name=heading)).to_be_visible()
        assert problems_of(phone) == []
        phone.get_by_role("link", name="Go to your account page").click()
        expect(phone.get_by_role("heading", name="Staff Account Information")).to_be_visible()
