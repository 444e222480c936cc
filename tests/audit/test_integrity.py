"""The Integrity page: the last verification's result, and "Verify now" run in the background."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.roles import Role
from audit import kinds
from audit.integrity import VERIFICATION_ABANDONED_AFTER, audit_verification_run_pending
from audit.models import AuditEvent, AuditVerification
from tests.audit.helpers import sql
from tests.conftest import audit_guards
from tests.factories import make_user


@pytest.fixture
def officer(practice):
    return make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="officer")


@pytest.fixture
def auditor(db):
    return make_user(Role.PLATFORM_AUDITOR, username="auditor")


def page(client) -> str:
    return client.get("/audit/integrity/").content.decode()


def test_verify_now_runs_in_the_background_and_shows_the_result(client, officer, provider):
    client.force_login(officer)
    assert "has not been verified yet" in page(client)
    response = client.post("/audit/integrity/", follow=True)
    assert "Verification asked for" in response.content.decode()
    assert "waiting to start: the background worker that runs it" in page(client)
    assert AuditEvent.objects.filter(
        kind=kinds.AUDIT_VERIFICATION_REQUESTED.code, actor_id=officer.pk
    ).exists()
    # Asking again while one waits changes nothing.
    client.post("/audit/integrity/")
    assert AuditVerification.objects.count() == 1
    call_command("outbox_worker", "--once")
    shown = page(client)
    assert "Intact: every chain and signed checkpoint verified." in shown
    assert "Verify now" in shown
    verification = AuditVerification.objects.get()
    assert verification.intact and verification.events > 0
    done = AuditEvent.objects.get(kind=kinds.AUDIT_VERIFIED.code)
    assert done.data == {"verification": verification.pk} and done.actor_id is None


def test_a_tampered_log_shows_a_problem_where_only_the_auditor_sees(
    client, officer, auditor, provider
):
    client.force_login(officer)
    client.post("/audit/integrity/")
    event = AuditEvent.objects.filter(account_id=provider.pk).order_by("id").first()
    audit_guards(install=False)  # as someone who can drop the append-only triggers
    try:
        sql("UPDATE audit_auditevent SET details = 'Nothing to see' WHERE id = %s", [event.pk])
    finally:
        audit_guards(install=True)
    assert audit_verification_run_pending().intact is False
    officer_page = page(client)
    assert "A problem was found in the log." in officer_page
    assert f"row id {event.pk}" not in officer_page
    client.force_login(auditor)
    assert f"row id {event.pk}" in page(client)
    assert AuditEvent.objects.filter(kind=kinds.AUDIT_VERIFICATION_FAILED.code).exists()


def test_a_run_whose_worker_died_is_run_again_later(officer, provider):
    from audit.integrity import audit_verification_request

    asked = audit_verification_request(acting_user=officer, ip=None)
    AuditVerification.objects.filter(pk=asked.pk).update(started_at=timezone.now())
    assert audit_verification_run_pending() is None  # another worker has it
    later = timezone.now() + VERIFICATION_ABANDONED_AFTER + timedelta(seconds=1)
    assert audit_verification_run_pending(now=later).pk == asked.pk


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_database_restart_under_a_run_is_said_and_a_new_one_may_be_asked(
    officer, provider, monkeypatch
):
    """The run's connection dies (the server restarted): its end is kept on a new one."""
    from django.db import connection

    from audit import integrity

    asked = integrity.audit_verification_request(acting_user=officer, ip=None)

    def cut_off():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    monkeypatch.setattr(integrity, "audit_log_verify", cut_off)
    finished = audit_verification_run_pending()
    assert finished.pk == asked.pk
    stored = AuditVerification.objects.get(pk=asked.pk)
    assert stored.finished_at is not None
    assert stored.problem == "The verification could not finish (OperationalError)."
    assert integrity.audit_integrity_status().waiting is None
    assert integrity.audit_verification_request(acting_user=officer, ip=None).pk != asked.pk


def test_the_command_line_verification_shows_on_the_page(client, auditor, provider):
    call_command("audit_verify")
    client.force_login(auditor)
    assert "Intact: every chain and signed checkpoint verified." in page(client)


def test_others_may_not_see_or_ask(client, provider, agent):
    for user in (provider, agent):
        client.force_login(user)
        assert client.get("/audit/integrity/").status_code == 403
        assert client.post("/audit/integrity/").status_code == 403
    assert not AuditVerification.objects.exists()
