"""Boxes that suggest their choices as one types: the time zone and the report's Event."""

import re

from playwright.sync_api import expect

from accounts.roles import Role
from audit import kinds
from audit.services import audit_event_record
from tests.browser.conftest import sign_in
from tests.factories import make_user

SUGGESTIONS = "box => [...box.list.options].map(option => option.value)"


def test_staff_type_a_city_pick_its_zone_and_a_wrong_one_is_named(page, nurse, password):
    sign_in(page, nurse.username, password)
    page.goto("/account/staff/")
    box = page.get_by_label("Timezone")
    expect(box).to_have_value("America/New_York")
    assert "America/Chicago" in box.evaluate(SUGGESTIONS)  # the list the box points to

    box.fill("Atlantis")  # no zone is named after it
    page.get_by_role("button", name="Save staff account").click()
    expect(page.get_by_role("alert").first).to_contain_text("Nothing was saved")
    described = page.get_by_label("Timezone").get_attribute("aria-describedby").split()
    expect(page.locator(f"#{described[-1]}")).to_have_text(
        "Choose a time zone from the list, such as America/Chicago."
    )
    nurse.refresh_from_db()
    assert nurse.time_zone == "America/New_York"

    page.get_by_label("Timezone").fill("chicago")  # a place only one zone is named after
    page.get_by_role("button", name="Save staff account").click()
    expect(page.get_by_label("Timezone")).to_have_value("America/Chicago")
    nurse.refresh_from_db()
    assert nurse.time_zone == "America/Chicago"


def test_the_event_box_lists_every_kind_by_name_and_filters_by_the_pick(page, provider, password):
    make_user(Role.COMPLIANCE_OFFICER, practice=provider.practice, username="compliance")
    audit_event_record(
        kind=kinds.SUPPORT_PIN_VIEWED, acting_user=provider, account=provider, ip=None
    )
    audit_event_record(kind=kinds.PROFILE_UPDATED, acting_user=provider, account=provider, ip=None)
    sign_in(page, "compliance", password)
    page.goto("/audit/")
    box = page.get_by_label("Event", exact=True)
    assert len(box.evaluate(SUGGESTIONS)) == len(kinds.KINDS)
    option = page.locator(f'#{box.get_attribute("list")} option[value="Support PIN: viewed"]')
    expect(option).to_have_count(1)

    box.fill("Support PIN: viewed")  # what picking "Support PIN: viewed" puts in the box
    page.get_by_role("button", name="Update Filter").click()
    expect(page.get_by_label("Event", exact=True)).to_have_value("Support PIN: viewed")
    # The page's own links carry the kind's code.
    expect(page.locator('a[href*="kind=support_pin.viewed"]').first).to_be_attached()
    expect(
        page.get_by_role("cell", name="Support PIN viewed for user dorothy Ludwig")
    ).to_be_visible()
    expect(page.get_by_role("cell", name="Updated", exact=False)).to_have_count(0)

    page.get_by_label("Event", exact=True).fill("Account: profile updated")  # its name, typed
    page.get_by_role("button", name="Update Filter").click()
    expect(page.get_by_label("Event", exact=True)).to_have_value("Account: profile updated")
    expect(
        page.get_by_role("cell", name="Support PIN viewed for user dorothy Ludwig")
    ).to_have_count(0)
    expect(page.get_by_role("cell", name="Profile updated for user dorothy Ludwig")).to_be_visible()

    page.get_by_label("Event", exact=True).fill("viewed")  # part of several names, not picked
    page.get_by_role("button", name="Update Filter").click()
    expect(page.get_by_role("alert").first).to_contain_text(
        "7 kinds of event match that (App PIN: viewed"
    )
    page.get_by_label("Event", exact=True).fill("lockout")  # part of no name
    page.get_by_role("button", name="Update Filter").click()
    expect(page.get_by_role("alert").first).to_contain_text("Choose an event from the list")


def test_an_auditor_finds_a_practice_by_part_of_its_name(page, provider, other_provider, password):
    make_user(Role.PLATFORM_AUDITOR, username="auditor")
    other = other_provider.practice
    sign_in(page, "auditor", password)
    for path, button in (("/audit/dashboard/", "Show"), ("/audit/", "Update Filter")):
        page.goto(path)
        box = page.get_by_label("Practice", exact=True)
        box.press_sequentially("harb", delay=30)
        options = page.locator("#practice-options option")
        expect(options).to_have_count(1)
        expect(options.first).to_have_attribute("value", str(other.group_id))
        expect(options.first).to_have_attribute("label", f"{other.name} ({other.group_id})")
        box.fill(str(other.group_id))  # what picking the suggestion puts in the box
        page.get_by_role("button", name=button).click()
        # The box held the value before the click too: wait for the new page's address.
        expect(page).to_have_url(re.compile(rf"[?&]practice={other.group_id}(&|$)"))
        expect(page.get_by_label("Practice", exact=True)).to_have_value(str(other.group_id))
    expect(page.get_by_role("cell", name="dorothy Ludwig")).to_have_count(0)  # not this practice

    # A box's help wraps under it too: the Event box is as wide as a box without help.
    patient = page.get_by_label("Patient's Name", exact=True).bounding_box()
    assert page.get_by_label("Event", exact=True).bounding_box()["width"] == patient["width"]
    box = page.get_by_label("Practice", exact=True)
    before = box.bounding_box()
    box.fill("Nowhere Clinic")
    page.get_by_role("button", name="Update Filter").click()
    expect(page.get_by_role("alert").first).to_contain_text("No practice has that name or Group ID")
    after = page.get_by_label("Practice", exact=True).bounding_box()
    # The message wraps under the box; it does not stretch the box to its own length,
    assert after["width"] == before["width"]
    # and it hangs under the box: the box stays in line with the boxes of its row (the
    # dates, on this page without a table, which is narrower than the one with rows).
    assert page.get_by_label("From", exact=True).bounding_box()["y"] == after["y"]
