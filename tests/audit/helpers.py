from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection

from audit import kinds
from audit.models import AuditEvent
from audit.services import audit_event_record

NOW = datetime(2024, 3, 19, 16, 0, tzinfo=UTC)  # 12:00 PM EDT: the report's tests' "now"


def record_at(when: datetime, **kwargs):
    """Write an event as if at `when` (the clock moved, the chain as usual)."""
    kwargs.setdefault("kind", kinds.SIGNED_IN)
    kwargs.setdefault("ip", None)
    with time_machine.travel(when, tick=False):
        return audit_event_record(**kwargs)


def chart_viewed(acting_user, patient_id: str, patient_name: str, when: datetime):
    return record_at(
        when,
        kind=kinds.PATIENT_CHART_VIEWED,
        acting_user=acting_user,
        account=acting_user,
        ip="203.0.113.9",
        patient_id=patient_id,
        patient_name=patient_name,
        params={"patient": patient_name},
    )


def sql(statement: str, params=()):
    """Run SQL behind the application's back."""
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def verify_fails(match: str) -> str:
    """Run audit_verify, expect it to fail with `match`, and return its message."""
    with pytest.raises(CommandError, match=match) as failure:
        call_command("audit_verify")
    return str(failure.value)


def copies_of(template: AuditEvent, changes: Iterable[dict]) -> list[AuditEvent]:
    """Return unsaved events like `template`, each with the fields (attnames) one dict gives.

    For tests that need thousands of events at once and read pages or plans, not
    the chain: stored with bulk_create, the copies bypass the service, and every
    column they do not set (the chain's among them) is the template's.
    """
    fixed = {
        field.attname: getattr(template, field.attname)
        for field in AuditEvent._meta.concrete_fields
        if not field.primary_key
    }
    return [AuditEvent(**(fixed | change)) for change in changes]
