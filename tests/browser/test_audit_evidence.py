from pathlib import Path

from playwright.sync_api import expect

from accounts.roles import Role
from audit import checkpoints, kinds, offline
from audit.services import audit_event_record
from outbox.services import mail_enqueue
from tests.browser.conftest import SCREENSHOTS, confirm_it_is_you, sign_in
from tests.factories import make_user


def test_an_officer_downloads_a_verifiable_copy_that_verifies_offline(page, provider, password):
    make_user(Role.COMPLIANCE_OFFICER, practice=provider.practice, username="compliance")
    audit_event_record(
        kind=kinds.PROFILE_UPDATED, acting_user=provider, account=provider, ip="192.0.2.8"
    )
    sign_in(page, "compliance", password)
    page.goto("/audit/")
    page.get_by_role("link", name="Download Verifiable Copy").click()
    with page.expect_download() as download_info:
        confirm_it_is_you(page, "compliance", password)
    download = download_info.value
    assert download.suggested_filename.startswith("audit-evidence_checkpoint-")
    keys = offline.load_public_keys(checkpoints.public_key_lines(all_keys=False))
    with Path(download.path()).open("rb") as handle:
        report = offline.verify_evidence(handle, keys)
    assert report.problem is None, report.problem
    assert report.events >= 2  # the account's creation and the profile update


def test_an_auditor_reads_the_outbox_on_a_phone(page, db, password, settings):
    make_user(Role.PLATFORM_AUDITOR, username="auditor")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    mail_enqueue(subject="Hello", body="x", recipients=["a@example.org"])
    from outbox.worker import deliver_pending

    deliver_pending()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, "auditor", password)
    page.goto("/audit/outbox/")
    expect(page.get_by_role("heading", name="Outbox")).to_be_visible()
    expect(page.get_by_role("cell", name="mail", exact=True)).to_be_visible()
    expect(page.get_by_text("ConnectionRefusedError", exact=False)).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "outbox-390.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page is {width} px wide on a 390 px screen"


def test_a_copy_of_a_log_that_contradicts_its_checkpoint_is_refused_with_the_reason(
    page, provider, password
):
    """The signer refuses; the officer reads why on the report, at desktop width and on a
    phone, and no file leaves."""
    from django.core.management import call_command

    from audit.models import AuditEvent
    from tests.audit.test_chains import rewrite_chain
    from tests.conftest import audit_guards

    make_user(Role.COMPLIANCE_OFFICER, practice=provider.practice, username="compliance")
    event = audit_event_record(
        kind=kinds.PROFILE_UPDATED, acting_user=provider, account=provider, ip="192.0.2.8"
    )
    call_command("audit_checkpoint")
    audit_guards(install=False)
    try:
        rewrite_chain(event.chain_id)
    finally:
        audit_guards(install=True)
    sign_in(page, "compliance", password)
    page.goto("/audit/")
    page.get_by_role("link", name="Download Verifiable Copy").click()
    confirm_it_is_you(page, "compliance", password)
    message = page.get_by_text("Nothing was exported: the audit log no longer matches")
    expect(message).to_be_visible()
    assert page.url.endswith("/audit/")
    assert not AuditEvent.objects.filter(kind=kinds.AUDIT_EVIDENCE_EXPORTED.code).exists()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "evidence-refused-1280.png"), full_page=False)
    page.set_viewport_size({"width": 390, "height": 844})
    expect(message).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "evidence-refused-390.png"), full_page=False)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page is {width} px wide on a 390 px screen"
