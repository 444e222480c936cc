"""The report and the exports read from a real streaming standby (ehr/db.py).

These run against a PostgreSQL primary and a hot standby that follows it
(`.ci/replica-pg run -- make test PYTEST_ARGS="-m replica"`). Every test commits
(transactional database): the standby sees only what the primary committed.
"""

import csv
import io
import logging
import os
import re
import subprocess
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connection, connections, router, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from audit import dashboard, kinds, services
from audit.models import AuditEvent
from audit.services import audit_event_record
from ehr import db as ehr_db
from ehr.db import REPLICA, ReadSource, replica_after_writes
from tests.factories import confirm_identity, make_user

pytestmark = [
    pytest.mark.replica,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True, databases=["default", REPLICA]),
]


def standby_port() -> int:
    return int(settings.DATABASES[REPLICA]["PORT"])


def on_standby(statement: str, params=()):
    """Run SQL on the standby over a connection of its own (the app's may be busy)."""
    replica = settings.DATABASES[REPLICA]
    with psycopg.connect(
        host=replica["HOST"],
        port=replica["PORT"],
        user=replica["USER"],
        dbname=connections[REPLICA].settings_dict["NAME"],
        autocommit=True,
    ) as standby:
        return standby.execute(statement, params).fetchall()


def caught_up():
    """Wait until the standby has replayed everything committed so far."""
    assert replica_after_writes(timeout=20).alias == REPLICA


@contextmanager
def replay_paused():
    """Hold the standby's replay (it keeps receiving WAL), as a standby under load lags."""
    on_standby("SELECT pg_wal_replay_pause()")
    for _ in range(200):
        if on_standby("SELECT pg_get_wal_replay_pause_state()")[0][0] == "paused":
            break
        time.sleep(0.01)
    try:
        yield
    finally:
        on_standby("SELECT pg_wal_replay_resume()")


def viewed(provider, patient_name: str):
    return audit_event_record(
        kind=kinds.PATIENT_CHART_VIEWED,
        acting_user=provider,
        account=provider,
        ip="203.0.113.9",
        patient_id=f"P-{patient_name[:8]}",
        patient_name=patient_name,
        params={"patient": patient_name},
    )


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def patients(rows: list[list[str]]) -> list[str]:
    return [row[2] for row in rows[1:]]


def export_event() -> AuditEvent:
    return AuditEvent.objects.filter(kind=kinds.AUDIT_EXPORTED.code).latest("id")


def test_the_replica_alias_is_the_standby_and_follows_the_primary():
    rows = on_standby("SELECT inet_server_port(), pg_is_in_recovery()")
    assert rows == [(standby_port(), True)]
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SELECT inet_server_port(), pg_is_in_recovery()")
        assert cursor.fetchone() == (standby_port(), True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT inet_server_port(), pg_is_in_recovery()")
        assert cursor.fetchone() == (int(settings.DATABASES["default"]["PORT"]), False)


def test_the_report_reads_its_rows_from_the_standby(client, compliance, provider):
    viewed(provider, "Ada Replicated")
    caught_up()
    client.force_login(compliance)
    with replay_paused():
        viewed(provider, "Bea Primary-only")
        with (
            CaptureQueriesContext(connections[REPLICA]) as on_replica,
            CaptureQueriesContext(connection) as on_primary,
        ):
            response = client.get("/audit/")
        page = response.content.decode()
        assert response.status_code == 200
        # What the standby has not replayed yet is not on the page: the rows came from it.
        assert "Ada Replicated" in page
        assert "Bea Primary-only" not in page
    assert any('FROM "audit_auditevent"' in query["sql"] for query in on_replica)
    assert not any('FROM "audit_auditevent"' in query["sql"] for query in on_primary)
    # The session, the user and the filters' accounts stayed on the primary.
    assert any('"accounts_user"' in query["sql"] for query in on_primary)
    assert not any('"accounts_user"' in query["sql"] for query in on_replica)
    caught_up()
    assert "Bea Primary-only" in client.get("/audit/").content.decode()


def types_total(response) -> int:
    """The number beside the dashboard's first chart: the period's events of every type."""
    found = re.search(r"Events by type <span class=\"muted\">\((\d+)\)", response.content.decode())
    assert found, response.content.decode()[:500]
    return int(found.group(1))


def test_the_dashboard_reads_its_counts_from_the_standby(client, compliance, provider):
    viewed(provider, "Ada Replicated")
    client.force_login(compliance)  # itself recorded: a sign-in
    caught_up()
    before = types_total(client.get("/audit/dashboard/"))
    with replay_paused():
        viewed(provider, "Bea Primary-only")
        with (
            CaptureQueriesContext(connections[REPLICA]) as on_replica,
            CaptureQueriesContext(connection) as on_primary,
        ):
            response = client.get("/audit/dashboard/")
        assert response.status_code == 200
        # The event the standby has not replayed yet is not counted: the counts came from it.
        assert types_total(response) == before
    # Today's counts (the days before it come from the cache by now).
    counters = re.compile(r"audit_auditevent(day)?count")
    assert any(counters.search(query["sql"]) for query in on_replica)
    assert not any(counters.search(query["sql"]) for query in on_primary)
    caught_up()
    assert types_total(client.get("/audit/dashboard/")) == before + 1


def test_a_day_is_cached_only_once_the_standby_has_replayed_past_it(compliance, provider):
    """Read at 3 AM tomorrow, today has settled; the standby, paused now, has not replayed
    an hour past it, so today is read again once it has caught up, not kept short."""
    tz = ZoneInfo(compliance.time_zone)
    today = timezone.now().astimezone(tz).date()
    tomorrow = today + timedelta(days=1)
    later = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 3, tzinfo=tz)
    period = dashboard.dashboard_period(today=tomorrow, days=2, time_zone=tz)

    def viewed_today() -> int:
        counts = dashboard.audit_dashboard_counts(
            viewer=compliance, practice_id=None, period=period, using=REPLICA, now=later
        )
        return counts.by_kind.get(kinds.PATIENT_CHART_VIEWED.code, [0, 0])[0]

    viewed(provider, "Ada Replicated")
    caught_up()
    with replay_paused():
        viewed(provider, "Bea Primary-only")
        assert viewed_today() == 1
    caught_up()
    assert viewed_today() == 2


def test_a_row_read_from_the_standby_is_written_to_the_primary(provider):
    caught_up()
    user = User.objects.using(REPLICA).get(pk=provider.pk)
    assert user._state.db == REPLICA
    assert router.db_for_write(User, instance=user) == "default"
    assert router.db_for_read(User, instance=user) == "default"
    user.first_name = "Dorothea"
    user.save(update_fields=["first_name"])  # without the router: to the standby, refused
    assert User.objects.get(pk=provider.pk).first_name == "Dorothea"
    # The standby itself refuses writes.
    with (
        pytest.raises(DatabaseError, match="read-only transaction"),
        transaction.atomic(using=REPLICA),
        connections[REPLICA].cursor() as cursor,
    ):
        cursor.execute("UPDATE accounts_user SET first_name = 'x'")


ROWS = 250


def test_the_export_streams_its_rows_from_the_standby(client, compliance, provider):
    # Rows of about 450 bytes (the name is in the Details too): more than one 64 KiB
    # block, so the COPY is still the backend's statement after the first block.
    with transaction.atomic():
        for i in range(ROWS):
            viewed(provider, f"Patient {i:04} " + "x" * 185)
    client.force_login(compliance)
    confirm_identity(client)
    response = client.get("/audit/export.csv", {"type": "Patient"})
    assert response.status_code == 200
    event = export_event()
    assert event.data["source"] == "replica" and "source_fallback" not in event.data
    chunks = iter(response.streaming_content)
    head, first = next(chunks), next(chunks)
    # The COPY runs on the standby, in the backend of the app's replica connection.
    pid = connections[REPLICA].connection.info.backend_pid
    (query,) = on_standby("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
    assert query[0].startswith("COPY (SELECT")
    body = b"".join([head, first, *chunks]).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert len(rows) - 1 == event.data["rows"] == ROWS
    assert response["X-Export-Rows"] == str(ROWS)


def test_a_lagging_standby_is_waited_for_then_the_export_reads_the_primary(
    client, compliance, provider, settings
):
    settings.DATABASE_REPLICA_WAIT_SECONDS = 1
    viewed(provider, "Ada Replicated")
    client.force_login(compliance)
    confirm_identity(client)
    caught_up()
    with replay_paused():
        viewed(provider, "Bea Primary-only")
        started = time.monotonic()
        response = client.get("/audit/export.csv", {"type": "Patient"})
        waited = time.monotonic() - started
        rows = read_csv(response)
    assert waited >= 1
    event = export_event()
    assert event.data["source"] == "primary"
    assert event.data["source_fallback"].startswith("the replica was ")
    assert event.data["source_fallback"].endswith(" bytes behind after 1 s")
    # Read from the primary: the row the standby had not replayed is in the file.
    assert patients(rows) == ["Bea Primary-only", "Ada Replicated"]


def test_a_standby_that_catches_up_within_the_wait_serves_the_export(
    client, compliance, provider, settings
):
    settings.DATABASE_REPLICA_WAIT_SECONDS = 20
    client.force_login(compliance)
    confirm_identity(client)
    caught_up()
    with replay_paused():
        viewed(provider, "Bea Written during the lag")
        resume = threading.Timer(0.5, on_standby, ["SELECT pg_wal_replay_resume()"])
        resume.start()
        started = time.monotonic()
        response = client.get("/audit/export.csv", {"type": "Patient"})
        waited = time.monotonic() - started
        resume.join()
    rows = read_csv(response)
    assert 0.4 <= waited < 20
    event = export_event()
    assert event.data["source"] == "replica"
    assert patients(rows) == ["Bea Written during the lag"]


def pg_ctl(*args: str) -> None:
    pgdata = os.environ.get("REPLICA_STANDBY_PGDATA")
    pg_bin = os.environ.get("REPLICA_PG_BIN")
    if not pgdata or not pg_bin:
        pytest.fail("stopping the standby needs REPLICA_STANDBY_PGDATA and REPLICA_PG_BIN")
    command = [f"{pg_bin}/pg_ctl", "-D", pgdata, *args]
    if os.getuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=60)  # noqa: S603


def stop_standby() -> None:
    """Stop the standby (pg_ctl, fast shutdown: its backends, the app's among them, end)."""
    pg_ctl("stop", "-m", "fast", "-w")


def start_standby() -> None:
    pgdata = os.environ["REPLICA_STANDBY_PGDATA"]
    pg_ctl("start", "-w", "-l", f"{os.path.dirname(pgdata)}/standby.log")
    connections[REPLICA].close()  # the app's connection to the stopped server, if it kept one
    caught_up()


@pytest.fixture
def stopped_standby():
    """Stop the standby for the test; start it again after."""
    caught_up()
    stop_standby()
    yield
    start_standby()


@pytest.fixture
def standby_stops_after_the_check(monkeypatch):
    """Stop the standby right after read_replica() found that it answers."""
    caught_up()
    answers = ehr_db._answers
    stopped = []

    def then_stop(alias: str) -> bool:
        answered = answers(alias)
        if answered and not stopped:
            stop_standby()
            stopped.append(alias)
        return answered

    monkeypatch.setattr(ehr_db, "_answers", then_stop)
    yield stopped
    if stopped:
        start_standby()


def test_with_the_standby_stopped_the_report_and_the_export_read_the_primary(
    client, compliance, provider, stopped_standby, caplog
):
    client.force_login(compliance)
    confirm_identity(client)
    viewed(provider, "Bea Written while the standby is down")
    with caplog.at_level(logging.WARNING, logger="ehr.db"):
        response = client.get("/audit/")
    assert response.status_code == 200
    assert "Bea Written while the standby is down" in response.content.decode()
    assert "read replica 'replica' unavailable, reading from the primary" in caplog.text
    started = time.monotonic()
    rows = read_csv(client.get("/audit/export.csv", {"type": "Patient"}))
    assert time.monotonic() - started < 5  # no wait for a replica that is not there
    event = export_event()
    assert event.data["source"] == "primary"
    assert event.data["source_fallback"] == "the replica could not be reached"
    assert patients(rows) == ["Bea Written while the standby is down"]


def test_a_standby_lost_between_the_wait_and_the_count_leaves_the_export_on_the_primary(
    client, compliance, provider, stopped_standby, monkeypatch
):
    # As if the standby had answered the wait and stopped just after.
    monkeypatch.setattr(services, "replica_after_writes", lambda: ReadSource(REPLICA))
    client.force_login(compliance)
    confirm_identity(client)
    viewed(provider, "Bea Written while the standby is down")
    rows = read_csv(client.get("/audit/export.csv", {"type": "Patient"}))
    event = export_event()
    assert event.data["source"] == "primary"
    assert event.data["source_fallback"] == "the replica failed while counting the rows"
    assert patients(rows) == ["Bea Written while the standby is down"]


def test_the_evidence_file_is_read_from_the_standby(client, provider):
    auditor = make_user(Role.PLATFORM_AUDITOR, username="auditor")
    viewed(provider, "Ada Replicated")
    client.force_login(auditor)
    confirm_identity(client)
    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        response = client.get("/audit/evidence.jsonl")
        body = b"".join(response.streaming_content)
    assert response.status_code == 200
    assert b"Ada Replicated" in body
    event = AuditEvent.objects.filter(kind=kinds.AUDIT_EVIDENCE_EXPORTED.code).get()
    assert event.data["source"] == "replica"
    assert any('FROM "audit_auditevent"' in query["sql"] for query in on_replica)


def test_a_standby_stopped_after_the_check_leaves_the_report_on_the_primary(
    client, compliance, provider, standby_stops_after_the_check, caplog
):
    client.force_login(compliance)
    viewed(provider, "Bea Written before the standby stopped")
    caught_up()
    with caplog.at_level(logging.WARNING, logger="ehr.db"):
        response = client.get("/audit/")
    assert standby_stops_after_the_check == [REPLICA]  # stopped between the check and the rows
    assert response.status_code == 200
    assert "Bea Written before the standby stopped" in response.content.decode()
    assert "read replica 'replica' failed during /audit/, answering from the primary" in (
        caplog.text
    )


def test_a_standby_stopped_after_the_check_leaves_the_dashboard_on_the_primary(
    client, compliance, provider, standby_stops_after_the_check, caplog
):
    client.force_login(compliance)
    caught_up()
    with caplog.at_level(logging.WARNING, logger="ehr.db"):
        response = client.get("/audit/dashboard/")
    assert standby_stops_after_the_check == [REPLICA]
    assert response.status_code == 200
    assert types_total(response) >= 1  # the sign-in, counted on the primary
    assert "failed during /audit/dashboard/, answering from the primary" in caplog.text


def test_a_standby_stopped_before_the_exports_first_row_leaves_the_rows_to_the_primary(
    client, compliance, provider, caplog
):
    with transaction.atomic():
        for i in range(ROWS):
            viewed(provider, f"Patient {i:04}")
    client.force_login(compliance)
    confirm_identity(client)
    response = client.get("/audit/export.csv", {"type": "Patient"})
    event = export_event()
    assert event.data["source"] == "replica"  # counted there
    chunks = iter(response.streaming_content)
    head = next(chunks)  # the header has gone; no row has
    stop_standby()
    try:
        with caplog.at_level(logging.WARNING, logger="audit.services"):
            body = b"".join([head, *chunks]).decode()
    finally:
        start_standby()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][0] == "Date" and sum(row[0] == "Date" for row in rows) == 1
    assert patients(rows) == [f"Patient {i:04}" for i in reversed(range(ROWS))]
    assert "failed before an export's first row, streaming it from the primary" in caplog.text
    assert not AuditEvent.objects.filter(
        kind__in=[kinds.AUDIT_EXPORT_FAILED.code, kinds.AUDIT_EXPORT_INTERRUPTED.code]
    ).exists()
    # The export's event named the replica; the log says where the rows came from.
    moved = AuditEvent.objects.get(kind=kinds.AUDIT_EXPORT_SOURCE_CHANGED.code)
    assert moved.data == {
        "rows": ROWS,
        "export_event": event.pk,
        "source": "primary",
        "source_fallback": "the replica failed before the first row",
    }
    assert moved.details == (
        f"Audit log export of {ROWS} events read from the primary: "
        "the replica failed before the first row"
    )
    assert moved.actor_id == compliance.pk and moved.request_id == event.request_id
