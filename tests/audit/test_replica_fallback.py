"""A replica that answers the check and is gone by the page's query: the page reads the primary.

No standby here (tests/audit/test_replica.py has one): the replica is a
PostgreSQL alias whose server is not there, a loopback port bound but not
listening, and `read_replica()`'s check is made to pass, as if the standby had
stopped right after it. Runs on both databases (the primary is the suite's).
"""

import logging
import socket

import pytest
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.db.backends.postgresql.base import DatabaseWrapper
from django.test import RequestFactory

from audit import kinds
from audit.models import AuditEvent
from ehr import db as ehr_db
from tests.audit.helpers import chart_viewed

GONE = "gone_replica"


@pytest.fixture
def gone_replica(settings, monkeypatch):
    """An alias to a server that refuses every connection, which the check says answers."""
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        # Made here rather than in settings.DATABASES, as a dynamically created
        # connection, which Django's test cases let a test use.
        configured = connections.configure_settings(
            {
                DEFAULT_DB_ALIAS: {},
                GONE: {
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": "ehr_gaps_gone",
                    "USER": "postgres",
                    "HOST": "127.0.0.1",
                    "PORT": port,
                    "OPTIONS": {"connect_timeout": 2},
                },
            }
        )
        connections[GONE] = DatabaseWrapper(configured[GONE], alias=GONE)
        settings.REPORTING_DATABASE = GONE
        monkeypatch.setattr(ehr_db, "_answers", lambda alias: True)
        try:
            yield GONE
        finally:
            connections[GONE].close()
            del connections[GONE]


def test_the_report_answers_from_the_primary_when_the_replica_is_gone_after_the_check(
    client, compliance, provider, gone_replica, caplog
):
    chart_viewed(provider, "P-1", "Ada Primary", provider.date_joined)
    client.force_login(compliance)
    with caplog.at_level(logging.WARNING, logger="ehr.db"):
        response = client.get("/audit/", {"date_from": "2000-01-01", "date_to": "2099-12-31"})
    assert response.status_code == 200
    assert "Ada Primary" in response.content.decode()
    (warning,) = [r for r in caplog.records if r.name == "ehr.db"]
    assert warning.levelno == logging.WARNING
    assert warning.getMessage().startswith(
        f"read replica '{GONE}' failed during /audit/, answering from the primary: "
    )


def test_the_dashboard_answers_from_the_primary_when_the_replica_is_gone_after_the_check(
    client, compliance, provider, gone_replica, caplog
):
    client.force_login(compliance)
    with caplog.at_level(logging.WARNING, logger="ehr.db"):
        response = client.get("/audit/dashboard/")
    assert response.status_code == 200
    assert "Events by type" in response.content.decode()
    assert "failed during /audit/dashboard/, answering from the primary" in caplog.text


def reading(alias_of, calls: list):
    """A view that reads the events from where `alias_of()` says, and notes where."""

    def view(request):
        alias = alias_of()
        calls.append(alias)
        return AuditEvent.objects.using(alias).filter(kind=kinds.SIGNED_IN.code).count()

    return view


def test_the_view_runs_once_more_on_the_primary_and_only_once(db, gone_replica):
    calls = []
    view = ehr_db.replica_fallback(reading(ehr_db.read_replica, calls))
    assert view(RequestFactory().get("/audit/")) == 0
    assert calls == [GONE, DEFAULT_DB_ALIAS]
    # Outside the run on the primary, read_replica() hands out the replica again.
    assert ehr_db.read_replica() == GONE


def test_an_error_of_the_primary_is_not_taken_for_the_replicas(db, gone_replica):
    calls = []

    def failing(request):
        calls.append(ehr_db.read_replica())
        raise OperationalError("the primary is down")

    with pytest.raises(OperationalError, match="the primary is down"):
        ehr_db.replica_fallback(failing)(RequestFactory().get("/audit/"))
    assert calls == [GONE]


def test_a_replica_error_in_a_view_not_handed_the_replica_goes_on(db, gone_replica):
    """A query on the replica's alias that did not come through read_replica() is not retried."""
    calls = []
    view = ehr_db.replica_fallback(reading(lambda: GONE, calls))
    with pytest.raises(OperationalError):
        view(RequestFactory().get("/audit/"))
    assert calls == [GONE]
