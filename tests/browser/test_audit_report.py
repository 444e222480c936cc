import csv
import json

from playwright.sync_api import expect

from accounts.roles import Role
from audit import kinds
from audit.services import audit_event_record
from tests.browser.conftest import confirm_it_is_you, sign_in
from tests.factories import make_user


def test_compliance_filters_the_report_and_downloads_the_export(page, provider, nurse, password):
    make_user(Role.COMPLIANCE_OFFICER, practice=provider.practice, username="compliance")
    audit_event_record(
        kind=kinds.PROFILE_UPDATED, acting_user=provider, account=provider, ip="192.0.2.8"
    )
    audit_event_record(kind=kinds.PROFILE_UPDATED, acting_user=nurse, account=nurse, ip="192.0.2.9")

    sign_in(page, "compliance", password)
    page.get_by_text("Reports", exact=True).click()
    page.get_by_role("link", name="Audit Log").click()
    expect(page.get_by_role("heading", name="Audit Log Report")).to_be_visible()
    expect(page.get_by_role("cell", name="Profile updated for user Dori User")).to_be_visible()

    page.get_by_label("Username").fill("dorothy")
    page.get_by_role("button", name="Update Filter").click()
    expect(page.get_by_role("cell", name="Profile updated for user dorothy Ludwig")).to_be_visible()
    expect(page.get_by_role("cell", name="Profile updated for user Dori User")).to_have_count(0)

    # Signing in is not a confirmation: the export asks first, then downloads.
    page.get_by_role("link", name="Export to File").click()
    with page.expect_download() as download_info:
        confirm_it_is_you(page, "compliance", password)
    download = download_info.value
    assert download.suggested_filename.startswith("audit-log_")
    with open(download.path(), encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Date", "Time", "Patient", "User", "Type", "Action", "Details", "IP"]
    assert [row[6] for row in rows[1:]] == [
        "Profile updated for user dorothy Ludwig",
        "Account created for user dorothy Ludwig with role provider",
    ]

    # The same rows as FHIR AuditEvents, within the same confirmation.
    page.goto("/audit/?username=dorothy")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export as FHIR").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".fhir.json")
    with open(download.path(), encoding="utf-8") as handle:
        bundle = json.load(handle)
    assert bundle["resourceType"] == "Bundle" and bundle["total"] == 2
    assert [entry["resource"]["outcomeDesc"] for entry in bundle["entry"]] == [
        "Profile updated for user dorothy Ludwig",
        "Account created for user dorothy Ludwig with role provider",
    ]

    # The quick range keeps the username filter; the export is compliance's own event.
    page.goto("/audit/?username=dorothy")
    page.get_by_role("link", name="Week").click()
    expect(page.get_by_label("Username")).to_have_value("dorothy")
    page.get_by_label("Username").fill("compliance")
    page.get_by_role("button", name="Update Filter").click()
    expect(
        page.get_by_role("cell", name="Audit log exported: 2 events", exact=False)
    ).to_be_visible()


def test_the_patient_box_suggests_as_one_types_and_filters_by_the_pick(page, provider, password):
    make_user(Role.COMPLIANCE_OFFICER, practice=provider.practice, username="compliance")
    for patient_id, name in (("P-200", "Ada Lovelace"), ("P-201", "Alan Turing")):
        audit_event_record(
            kind=kinds.PATIENT_CHART_VIEWED,
            acting_user=provider,
            account=provider,
            ip="192.0.2.8",
            patient_id=patient_id,
            patient_name=name,
            params={"patient": name},
        )
    sign_in(page, "compliance", password)
    page.goto("/audit/")
    box = page.get_by_label("Patient's Name")
    box.press_sequentially("love", delay=30)
    options = page.locator("#patient-options option")
    expect(options).to_have_count(1)
    expect(options.first).to_have_attribute("value", "P-200")
    expect(options.first).to_have_attribute("label", "Ada Lovelace (P-200)")
    box.fill("P-200")  # what picking the suggestion puts in the box
    page.get_by_role("button", name="Update Filter").click()
    expect(page.get_by_role("cell", name="Chart viewed for patient Ada Lovelace")).to_be_visible()
    expect(page.get_by_role("cell", name="Chart viewed for patient Alan Turing")).to_have_count(0)
    # A name no patient has is answered on the page, not with an empty report.
    page.get_by_label("Patient's Name").fill("Grace Hopper")
    page.get_by_role("button", name="Update Filter").click()
    expect(page.get_by_role("alert")).to_contain_text("No patient in this log has that name")


def test_sorting_by_user_then_reading_one_accounts_history_printing_and_exporting(
    page, provider, nurse, password
):
    """The officer sorts the report by User, opens one account's history from its row,
    prints it (menus and forms left out) and downloads it."""
    from tests.browser.test_every_page import problems_of

    make_user(Role.COMPLIANCE_OFFICER, practice=provider.practice, username="compliance")
    audit_event_record(kind=kinds.PROFILE_UPDATED, acting_user=nurse, account=nurse, ip="192.0.2.9")
    audit_event_record(
        kind=kinds.PATIENT_CHART_VIEWED,
        acting_user=provider,
        account=provider,
        ip="192.0.2.8",
        patient_id="P-200",
        patient_name="Ada Lovelace",
        params={"patient": "Ada Lovelace"},
    )
    sign_in(page, "compliance", password)
    page.goto("/audit/")
    users = page.locator("table.audit tbody tr td:nth-child(4)")
    newest_first = users.all_inner_texts()
    page.get_by_role("link", name="User", exact=True).click()
    expect(page.get_by_role("columnheader", name="User", exact=True)).to_have_attribute(
        "aria-sort", "ascending"
    )
    assert sorted(newest_first) != newest_first
    expect(users).to_have_text(sorted(newest_first))
    expect(page.get_by_role("status")).to_contain_text("events · Page 1 of 1")
    page.get_by_role("link", name="User", exact=True).click()
    # all_inner_texts() does not wait: read while the next page loads, it finds no rows.
    expect(page.get_by_role("columnheader", name="User", exact=True)).to_have_attribute(
        "aria-sort", "descending"
    )
    expect(users).to_have_text(sorted(newest_first, reverse=True))

    # The patient's history, from the patient's cell: a page that passes the phone checks.
    page.get_by_role("link", name="Ada Lovelace").click()
    heading = page.get_by_role("heading", name="Audit history of patient Ada Lovelace (P-200)")
    expect(heading).to_be_visible()
    page.set_viewport_size({"width": 390, "height": 844})
    assert problems_of(page) == []
    page.set_viewport_size({"width": 1280, "height": 800})

    page.goto("/audit/?sort=user")
    page.get_by_role("link", name="496094 (dorothy Ludwig)").first.click()
    heading = page.get_by_role("heading", name="Audit history of user 496094 (dorothy Ludwig)")
    expect(heading).to_be_visible()
    expect(page.get_by_role("cell", name="Chart viewed for patient Ada Lovelace")).to_be_visible()
    page.emulate_media(media="print")
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
    expect(page.get_by_label("From")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    expect(page.get_by_text("printed by compliance (Test User)")).to_be_visible()
    page.emulate_media(media="screen")
    expect(page.get_by_text("printed by compliance (Test User)")).to_be_hidden()

    page.get_by_role("link", name="Export to File").click()
    with page.expect_download() as download_info:
        confirm_it_is_you(page, "compliance", password)
    download = download_info.value
    assert download.suggested_filename.startswith(f"audit-history_account-{provider.pk}_")
    with open(download.path(), encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert [row[6] for row in rows[1:3]] == [
        "Audit history viewed for user dorothy Ludwig: 2 events " + rows[1][6].split(" events ")[1],
        "Chart viewed for patient Ada Lovelace",
    ]
