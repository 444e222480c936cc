"""The report's queries use the indexes made for them (no scan of the whole log)."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from accounts.models import User
from audit.models import AuditEvent
from audit.selectors import audit_event_scope

START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2024, 2, 1, tzinfo=UTC)


def plan(queryset) -> str:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # A test table is tiny, where a sequential scan is cheapest; forbid it
            # to see which index the planner would take on a large log.
            cursor.execute("SET LOCAL enable_seqscan = off")
    return queryset.explain()


@pytest.fixture
def compliance(practice):
    from accounts.roles import Role
    from tests.factories import make_user

    return make_user(Role.COMPLIANCE_OFFICER, practice=practice)


def page_query(events):
    return (
        events.filter(occurred_at__gte=START, occurred_at__lt=END)
        .values("id", "occurred_at", "details")
        .order_by("-occurred_at", "-id")[:51]
    )


def test_practice_page_uses_the_practice_time_index(compliance):
    text = plan(page_query(audit_event_scope(viewer=compliance)))
    if connection.vendor == "sqlite":
        assert "audit_practice_time_idx" in text
    else:
        # On a near-empty table PostgreSQL's choice between the two time indexes is a
        # coin toss; what matters is that it searches one (the benchmark shows which).
        assert "Index Scan" in text and "Seq Scan" not in text


def test_whole_log_page_uses_the_time_index(db):
    assert "audit_time_idx" in plan(page_query(AuditEvent.objects.all()))


def test_username_filter_searches_an_index_instead_of_scanning(compliance, provider):
    from django.db.models import Q

    ids = list(User.objects.filter(username="dorothy").values_list("pk", flat=True))
    events = audit_event_scope(viewer=compliance).filter(
        Q(actor_id__in=ids) | Q(account_id__in=ids)
    )
    text = plan(page_query(events))
    assert "_idx" in text
    assert "SCAN audit_auditevent" not in text and "Seq Scan" not in text
