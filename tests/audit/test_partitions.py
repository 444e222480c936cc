"""Monthly partitions of the event table, and months archived to signed files (PostgreSQL)."""

import json
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from accounts.roles import Role
from audit import checkpoints, hashing, kinds, offline, partitions
from audit.archive import ARCHIVE_COLUMNS, audit_partitions_create
from audit.models import (
    AuditArchive,
    AuditArchiveChain,
    AuditChain,
    AuditEvent,
    AuditVerification,
)
from audit.services import audit_event_record
from audit.verification import audit_log_verify
from outbox import audit_stream
from outbox.models import AuditCursor, Destination
from tests.audit.helpers import record_at, sql, verify_fails
from tests.audit.test_chains import append_event, public_key_arg
from tests.audit.test_rollup import counters
from tests.concurrency import run_together
from tests.conftest import audit_guards
from tests.factories import make_practice, make_user
from tests.outbox.test_audit_stream import body, configure
from tests.syslog_receiver import SyslogReceiver, make_pki

pytestmark = pytest.mark.postgres_only


def partition_holding(event) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM audit_auditevent WHERE id = %s", [event.pk]
        )
        return cursor.fetchone()[0]


def partition_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = 'audit_auditevent'::regclass"
        )
        return {row[0] for row in cursor.fetchall()}


def test_an_event_lands_in_its_months_partition_and_never_fails_for_want_of_one(provider):
    now = audit_event_record(kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip=None)
    assert partition_holding(now) == partitions.partition_name(now.occurred_at.date())
    far = record_at(datetime(2091, 5, 1, tzinfo=UTC), acting_user=provider, account=provider)
    old = record_at(datetime(1999, 5, 1, tzinfo=UTC), acting_user=provider, account=provider)
    assert partition_holding(far) == partition_holding(old) == partitions.DEFAULT


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET details = 'nothing happened'",
        "DELETE FROM {table}",
        "TRUNCATE {table}",
    ],
)
def test_a_partition_refuses_changes_directly_too(provider, statement):
    event = audit_event_record(
        kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip=None
    )
    record_at(datetime(2091, 5, 1, tzinfo=UTC), acting_user=provider, account=provider)
    sql("SET CONSTRAINTS ALL IMMEDIATE")  # PostgreSQL truncates nothing with checks pending
    for table in (partition_holding(event), partitions.DEFAULT):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            sql(statement.format(table=table))


def test_creating_a_month_moves_its_events_out_of_the_default_partition(provider, capsys):
    later = datetime.now(UTC) + timedelta(days=250)
    early = record_at(later, acting_user=provider, account=provider)
    assert partition_holding(early) == partitions.DEFAULT
    month = partitions.first_of(later)
    with time_machine.travel(later - timedelta(days=31), tick=False):
        call_command("audit_partitions")
    out = capsys.readouterr().out
    assert f"Created {partitions.partition_name(month)} for {month:%Y-%m} (1 events moved" in out
    assert partition_holding(early) == partitions.partition_name(month)
    moved = AuditEvent.objects.get(pk=early.pk)
    assert (moved.seq, moved.row_hash) == (early.seq, early.row_hash)
    created = AuditEvent.objects.filter(kind=kinds.AUDIT_PARTITION_CREATED.code)
    assert f"Audit log partition for {month:%Y-%m} created (1 events moved into it)" in set(
        created.values_list("details", flat=True)
    )
    months = [partitions.add_months(partitions.first_of(later), n) for n in range(-1, 3)]
    assert {partitions.partition_name(m) for m in months} <= partition_names()
    with time_machine.travel(later - timedelta(days=31), tick=False):
        assert audit_partitions_create() == []
    assert audit_log_verify().problem is None


@pytest.mark.django_db(transaction=True)
def test_writers_never_fail_while_a_partition_is_created(practice):
    users = [make_user(Role.NURSE, practice=practice) for _ in range(4)]
    far = datetime.now(UTC) + timedelta(days=400)
    record_at(far, acting_user=users[0], account=users[0])  # waits in the default partition

    def work(user):
        if user is None:
            return partitions.partition_create(partitions.first_of(far))
        for _ in range(15):
            audit_event_record(kind=kinds.SIGNED_IN, acting_user=user, account=user, ip=None)

    _, errors = run_together(work, [*users, None])
    assert errors == []
    assert AuditEvent.objects.filter(kind=kinds.SIGNED_IN.code).count() == 1 + 4 * 15
    assert audit_log_verify().problem is None


# Archiving a month, with the clock moved back to write it


MARCH = datetime(2014, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def old_clinic(db):
    """A practice and its people, created in 2014 (so chain order is time order)."""
    with time_machine.travel(datetime(2014, 3, 1, tzinfo=UTC), tick=False):
        clinic = make_practice("Old Clinic")
        return make_user(Role.PROVIDER, practice=clinic), make_user(Role.SUPPORT_AGENT)


@pytest.fixture
def old_log(old_clinic):
    """March 2014 events of a practice and of the platform, and two in April; signed."""
    provider, agent = old_clinic
    march = list(AuditEvent.objects.order_by("id"))  # the accounts' creation, on 1 March
    march += [
        record_at(MARCH + timedelta(days=n), acting_user=provider, account=provider)
        for n in range(3)
    ]
    march.append(record_at(MARCH, acting_user=agent, account=agent))
    april = [
        record_at(datetime(2014, 4, 2, tzinfo=UTC), acting_user=provider, account=provider)
        for _ in range(2)
    ]
    with time_machine.travel(datetime(2014, 4, 3, tzinfo=UTC), tick=False):
        call_command("audit_checkpoint")
    return march, april


def archive(month: str, path) -> str:
    call_command("audit_archive", "--month", month, "--to", str(path))
    return path.read_text()


def test_an_old_month_is_archived_verified_offline_and_the_live_chains_still_verify(
    old_log, tmp_path, old_clinic, capsys
):
    provider = old_clinic[0]
    march, april = old_log
    target = tmp_path / "2014-03.jsonl"
    text = archive("2014-03", target)
    out = capsys.readouterr().out
    assert f"Archived 2014-03: {len(march)} events of 2 chains" in out
    assert target.stat().st_mode & 0o777 == 0o600  # the month's events: its owner's only
    assert not AuditEvent.objects.filter(pk__in=[e.pk for e in march]).exists()
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in april]).count() == 2
    assert partitions.partition_name(MARCH.date()) not in partition_names()
    call_command("audit_verify", "--file", str(target), "--public-key", public_key_arg())
    out = capsys.readouterr().out
    assert "Archive of 2014-03" in out and f"{len(march)} events" in out
    records = [json.loads(line) for line in text.splitlines()]
    archived = [r["event"] for r in records if "event" in r]
    assert sorted(e["id"] for e in archived) == sorted(e.pk for e in march)
    assert all(e["mac"] and e["key_id"] for e in archived)  # enough to restore the rows
    # April's first event of the practice's chain, whole, then the link to the head.
    assert [r["next"]["seq"] for r in records if "next" in r] == [april[0].seq]
    assert [r["after"]["seq"] for r in records if "after" in r] == [april[1].seq]
    # The live chains verify from their boundary; the steps are in the log.
    call_command("audit_verify")
    own = AuditChain.objects.get(practice=provider.practice)
    last = march[-2]  # the practice's last March event
    assert own.start_seq == last.seq + 1 and own.start_hash == last.row_hash
    cut = AuditArchiveChain.objects.get(chain=own)
    assert (cut.first_seq, cut.last_seq, cut.last_hash) == (1, last.seq, last.row_hash)
    details = set(AuditEvent.objects.values_list("details", flat=True))
    assert (
        f"Audit log archive of 2014-03 written and verified: {len(march)} events in 2 chains, "
        "through checkpoint 1" in details
    )
    counted = AuditEvent.objects.get(kind=kinds.AUDIT_ARCHIVED.code).data
    removed = counted["counters_removed"] + counted["day_counters_removed"]
    assert (
        f"Audit log events of 2014-03 archived and removed from the database: {len(march)} events, "
        f"{removed} dashboard counters" in details
    )
    assert (
        AuditArchive.objects.get().file_sha256
        == __import__("hashlib").sha256(target.read_bytes()).hexdigest()
    )


def test_no_month_is_archived_out_of_a_log_that_contradicts_its_checkpoint(
    old_log, old_clinic, tmp_path
):
    """An April event added behind the app's back, without the key: the archive of March
    stops before writing anything, and the finding is on the Integrity page."""
    march, april = old_log
    audit_guards(install=False)
    try:
        added = append_event(april[-1].chain_id, april[-1].row_hash, with_key=False)
        sql(
            "UPDATE audit_auditchain SET seq = seq + 1, row_hash = %s WHERE id = %s",
            [added, april[-1].chain_id],
        )
    finally:
        audit_guards(install=True)
    target = tmp_path / "2014-03.jsonl"
    with pytest.raises(CommandError) as refused:
        call_command("audit_archive", "--month", "2014-03", "--to", str(target))
    assert str(refused.value) == (
        "Archive of 2014-03 stopped, nothing dropped from the database: the log no longer "
        f"matches its last signed checkpoint, at chain {april[-1].chain_id} seq {april[-1].seq + 1} (row id "
        f"{AuditEvent.objects.get(row_hash=added).pk}): the keyed hash does not match (written "
        "without the key)."
    )
    assert not target.exists()
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in march]).count() == len(march)
    assert not AuditArchive.objects.exists()
    assert AuditVerification.objects.get().intact is False


def test_a_tampered_archive_file_does_not_verify(old_log, tmp_path):
    records = [json.loads(line) for line in archive("2014-03", tmp_path / "a.jsonl").splitlines()]

    def problem(changed: list[dict]) -> str:
        body = "\n".join(json.dumps(r) for r in changed)
        from audit import checkpoints, offline

        return offline.verify_evidence(body.splitlines(), checkpoints.trusted_public_keys()).problem

    edited = json.loads(json.dumps(records))
    next(r for r in edited if "event" in r)["event"]["details"] = "Nothing happened"
    assert "does not match its hash" in problem(edited)
    moved = json.loads(json.dumps(records))
    next(r for r in moved if "event" in r)["event"]["occurred_at"] = "2014-04-01T00:00:00.000000Z"
    assert "not of the archived month" in problem(moved)
    dropped = [r for r in records if r is not next(r for r in records if "event" in r)]
    dropped[-1]["end"]["events"] -= 1
    assert problem(dropped)


def _as_link(row: dict) -> dict:
    keep = ("seq", "practice_id", "prev_hash", "row_hash")
    return {"after": {**{k: row[k] for k in keep}, "content": hashing.event_content(row)}}


def test_an_archive_cannot_hide_the_months_last_events_among_its_links(old_log, tmp_path):
    """The links show no time; the event after the month, whole, shows where the month ends."""
    records = [json.loads(line) for line in archive("2014-03", tmp_path / "a.jsonl").splitlines()]
    keys = checkpoints.trusted_public_keys()

    def problem(changed: list[dict]) -> str | None:
        changed[-1]["end"]["events"] = sum("event" in r for r in changed)
        return offline.verify_evidence([json.dumps(r) for r in changed], keys).problem

    assert problem(json.loads(json.dumps(records))) is None
    at = next(i for i, r in enumerate(records) if "next" in r)
    last = records[at - 1]["event"]  # the practice's last March event
    # Its last March event passed off as a link, before the event after the month.
    hidden = json.loads(json.dumps(records))
    hidden[at - 1] = _as_link(last)
    assert "the links start without the event after the month" in problem(hidden)
    # The same, with the event after the month passed off as a link too.
    hidden[at] = _as_link(records[at]["next"])
    assert "the links start without the event after the month" in problem(hidden)
    # Its last March event shown as the event after the month, the real one as a link.
    shifted = json.loads(json.dumps(records))
    shifted[at - 1], shifted[at] = {"next": last}, _as_link(records[at]["next"])
    assert "an event of the archived month is left out" in problem(shifted)
    # No second payload rides along a record: it would be counted, or restored, unchecked.
    forged = {**last, "details": "Nothing happened"}
    riding = json.loads(json.dumps(records))
    riding[at]["event"] = forged
    assert "a record holds ['event', 'next']" in problem(riding)
    riding = json.loads(json.dumps(records))
    next(r for r in riding if "chain" in r)["event"] = forged
    assert "a chain line holds" in problem(riding)
    # The columns kept for a restore beside the hashed fields must agree with them.
    moved = json.loads(json.dumps(records))
    moved[at - 1]["event"]["actor_id"] = 424242
    assert "its actor_id is not the actor_ref it hashes" in problem(moved)
    moved = json.loads(json.dumps(records))
    ref = moved[at - 1]["event"]["account_ref"]
    moved[at - 1]["event"]["account_id"] = float(ref)  # equal to the ref, and not an id
    assert "its account_id is not the account_ref it hashes" in problem(moved)
    moved[at - 1]["event"]["account_id"] = None  # a column emptied when its row went
    assert problem(moved) is None
    # An event after the month comes once, before the links.
    twice = json.loads(json.dumps(records))
    twice.insert(at + 2, {"next": records[at]["next"]})
    assert "must come before the links" in problem(twice)
    # A checkpoint signed within the month (here re-signed with the real key, as a
    # genuine one of mid-March would be) cannot show the month's last events.
    early = json.loads(json.dumps(records))
    checkpoint = early[0]["checkpoint"]
    checkpoint["created_at"] = "2014-03-20T00:00:00.000000Z"
    checkpoint["signature"] = hashing.b64(
        checkpoints.signing_key()[1].sign(hashing.checkpoint_message(checkpoint))
    )
    checkpoint["checkpoint_hash"] = hashing.checkpoint_hash(checkpoint)
    assert "was signed before the month ended" in problem(early)


def test_two_consecutive_archives_join_and_a_gap_between_them_is_found(old_log, tmp_path, capsys):
    """March's file shows each chain's next event; April's must go on from it."""
    march_path, april_path = tmp_path / "2014-03.jsonl", tmp_path / "2014-04.jsonl"
    archive("2014-03", march_path)
    with time_machine.travel(datetime(2014, 5, 2, tzinfo=UTC), tick=False):
        call_command("audit_checkpoint")  # April's archive needs one signed after April
    april = [json.loads(line) for line in archive("2014-04", april_path).splitlines()]
    call_command(
        "audit_verify",
        file=str(april_path),
        public_key=[public_key_arg()],
        previous=str(march_path),
    )
    out = capsys.readouterr().out
    practice_chain = next(r["chain"]["chain_id"] for r in april if "chain" in r)
    assert f"Chain {practice_chain} goes on from the archive of 2014-03." in out
    assert "ends at its signed head, wrote in this month" in out  # the platform chain, quiet
    keys = checkpoints.trusted_public_keys()

    def joined(changed: list[dict], previous=march_path) -> str | None:
        path = tmp_path / "changed.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in changed))
        return offline.verify_file(path, keys, previous=previous).problem

    assert joined(april) is None
    # April's file with its first event cut: alone it verifies, starting a seq later.
    first = next(i for i, r in enumerate(april) if "event" in r)
    cut = json.loads(json.dumps(april))
    dropped = cut.pop(first)["event"]
    chain_line = next(r for r in cut if "chain" in r)
    chain_line["from"] = {"seq": dropped["seq"] + 1, "prev_hash": dropped["row_hash"]}
    cut[-1]["end"]["events"] -= 1
    assert offline.verify_evidence([json.dumps(r) for r in cut], keys).problem is None
    assert "not where the archive of 2014-03 left it" in joined(cut)
    # Without the practice's chain at all: March said its next event is of April.
    assert "is of this month, and this archive does not hold it" in joined(
        [april[0], {"end": {"chains": 0, "events": 0}}]
    )
    # Joined to a file that is not the month before, or not an archive.
    with pytest.raises(CommandError, match="not of the month before"):
        call_command(
            "audit_verify",
            file=str(march_path),
            public_key=[public_key_arg()],
            previous=str(april_path),
        )
    assert (
        offline.main(
            [str(april_path), "--public-key", public_key_arg(), "--previous", str(april_path)]
        )
        == 1
    )
    with pytest.raises(offline.EvidenceError, match="joining needs two archives"):
        offline.join_archives(offline.Report(), offline.Report())


def test_a_format_1_archive_verifies_and_says_what_it_does_not_show(old_log, tmp_path):
    records = [json.loads(line) for line in archive("2014-03", tmp_path / "a.jsonl").splitlines()]
    at = next(i for i, r in enumerate(records) if "next" in r)
    records[at] = _as_link(records[at]["next"])  # format 1 linked from the month's last event
    keys = checkpoints.trusted_public_keys()
    assert offline.verify_evidence([json.dumps(r) for r in records], keys).problem
    records[0]["format"] = "ehr-audit-evidence/1"
    report = offline.verify_evidence([json.dumps(r) for r in records], keys)
    assert report.problem is None
    assert report.lines()[-1] == (
        "Not shown: that each chain's last events of the month are all here (a format-1 "
        "archive gives no event after its month)."
    )


@pytest.fixture
def archived(old_log, tmp_path):
    archive("2014-03", tmp_path / "a.jsonl")
    audit_guards(install=False)
    yield old_log
    audit_guards(install=True)


def test_an_edited_boundary_is_found(archived, old_clinic):
    provider = old_clinic[0]
    own = AuditChain.objects.get(practice=provider.practice)
    sql("UPDATE audit_auditarchivechain SET last_hash = %s WHERE chain_id = %s", ["f" * 64, own.pk])
    verify_fails(f"chain {own.pk} seq {own.start_seq}: the chain's start does not match")


def test_a_boundary_moved_with_the_chain_to_hide_events_is_found(archived, old_clinic):
    provider = old_clinic[0]
    """Both the chain's start and its archive row moved past April's first event."""
    own = AuditChain.objects.get(practice=provider.practice)
    hidden = AuditEvent.objects.get(chain=own, seq=own.start_seq)
    sql(
        "UPDATE audit_auditchain SET start_seq = %s, start_hash = %s WHERE id = %s",
        [hidden.seq + 1, hidden.row_hash, own.pk],
    )
    sql(
        "UPDATE audit_auditarchivechain SET last_seq = %s, last_hash = %s WHERE chain_id = %s",
        [hidden.seq, hidden.row_hash, own.pk],
    )
    verify_fails("the boundary of the archive of 2014-03 is not the one checkpoint 2 signed")


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2020-01", "younger than the retention period"),
        ("March", "must be a month as YYYY-MM"),
        ("2014-04", "still holds events before 2014-04"),
        ("9999-12", "must be before 9999-12"),
    ],
)
def test_a_month_that_may_not_go_is_refused_and_nothing_changes(old_log, tmp_path, month, message):
    before = (AuditEvent.objects.count(), partition_names())
    with pytest.raises(CommandError, match=message):
        archive(month, tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()
    assert (AuditEvent.objects.count(), partition_names()) == before
    assert not AuditArchive.objects.exists()


def test_a_file_that_cannot_be_written_is_refused_and_nothing_changes(old_log, tmp_path):
    before = (AuditEvent.objects.count(), partition_names())
    with pytest.raises(CommandError, match=r"Cannot write .*: No such file or directory"):
        archive("2014-03", tmp_path / "missing" / "x.jsonl")
    assert (AuditEvent.objects.count(), partition_names()) == before
    assert not AuditArchive.objects.exists()


def test_a_month_no_checkpoint_covers_is_refused(old_clinic, tmp_path):
    record_at(MARCH, acting_user=old_clinic[0], account=old_clinic[0])
    with pytest.raises(CommandError, match="No checkpoint was signed after 2014-03 ended"):
        archive("2014-03", tmp_path / "x.jsonl")
    # One signed in the month covers its events so far, not the month's end.
    with time_machine.travel(datetime(2014, 3, 20, tzinfo=UTC), tick=False):
        call_command("audit_checkpoint")
    with pytest.raises(CommandError, match="No checkpoint was signed after 2014-03 ended"):
        archive("2014-03", tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()


def test_the_due_month_is_the_oldest_past_retention_and_one_refused_stays_due(
    old_log, tmp_path, capsys, settings
):
    """What the daily cron runs: a month it could not archive is tried again next time."""
    due = ["audit_archive", "--due", "--to-dir", str(tmp_path)]
    call_command(*due)
    assert "Archived 2014-03" in capsys.readouterr().out
    assert (tmp_path / "audit-2014-03.jsonl").exists()
    # April refused (a file of its name is in the way): it stays the month due.
    blocking = tmp_path / "audit-2014-04.jsonl"
    blocking.write_text("")
    for _ in range(2):
        with pytest.raises(CommandError, match=r"audit-2014-04\.jsonl exists"):
            call_command(*due)
    blocking.unlink()
    call_command(*due)
    assert "Archived 2014-04" in capsys.readouterr().out
    # Left: the events of today (the archives' own), younger than the retention period.
    call_command(*due)
    assert capsys.readouterr().out == "No month is due for archiving.\n"
    settings.AUDIT_RETENTION_YEARS = 40
    call_command(*due)
    assert capsys.readouterr().out == "No month is due for archiving.\n"
    for wrong in (
        ["--due"],
        ["--to-dir", str(tmp_path)],
        ["--due", "--to-dir", str(tmp_path), "--month", "2014-05"],
        ["--month", "2014-05"],
    ):
        with pytest.raises(CommandError, match="either --month and --to, or --due and --to-dir"):
            call_command("audit_archive", *wrong)


def test_the_retention_period_is_a_setting(old_log, tmp_path, settings):
    settings.AUDIT_RETENTION_YEARS = 20
    with pytest.raises(CommandError, match=r"retention period \(20 years.*from 2034-04-01"):
        archive("2014-03", tmp_path / "x.jsonl")


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_a_populated_log_into_partitions(practice):
    from django.db.migrations.executor import MigrationExecutor

    provider = make_user(Role.PROVIDER, practice=practice)
    for when in (datetime(2019, 7, 4, tzinfo=UTC), datetime(2021, 1, 31, 23, 59, tzinfo=UTC)):
        record_at(when, acting_user=provider, account=provider)
    call_command("audit_checkpoint")
    executor = MigrationExecutor(connection)
    leaf = executor.loader.graph.leaf_nodes()
    executor.migrate([("audit", "0005_verifications")])
    assert "audit_auditevent_default" not in partition_names()
    before = list(AuditEvent.objects.order_by("id").values("id", "chain_id", "seq", "row_hash"))
    assert before

    executor = MigrationExecutor(connection)
    executor.migrate(leaf)

    assert {partitions.partition_name(datetime(2019, 7, 1).date()), partitions.DEFAULT} <= (
        partition_names()
    )
    after = list(AuditEvent.objects.order_by("id").values("id", "chain_id", "seq", "row_hash"))
    assert after == before
    assert audit_log_verify().problem is None
    new = audit_event_record(kind=kinds.SIGNED_OUT, acting_user=provider, account=provider, ip=None)
    assert new.pk > before[-1]["id"]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        sql("DELETE FROM audit_auditevent WHERE id = %s", [new.pk])


def test_a_drop_that_failed_is_finished_by_running_the_command_again(
    old_log, tmp_path, monkeypatch, capsys
):
    from audit import archive as archiving

    finish = archiving.drop_archived_partition

    def interrupted(done):
        raise DatabaseError("canceling statement due to lock timeout")

    monkeypatch.setattr(archiving, "drop_archived_partition", interrupted)
    with pytest.raises(CommandError, match="stopped: canceling statement due to lock timeout"):
        archive("2014-03", tmp_path / "a.jsonl")
    name = partitions.partition_name(MARCH.date())
    assert name in partition_names()
    call_command("audit_verify")  # the boundary holds; the rows before it are not read
    monkeypatch.setattr(archiving, "drop_archived_partition", finish)
    call_command("audit_archive", "--month", "2014-03", "--to", str(tmp_path / "a.jsonl"))
    assert name not in partition_names()
    assert AuditEvent.objects.filter(kind=kinds.AUDIT_ARCHIVED.code).count() == 1
    call_command("audit_verify")
    with pytest.raises(CommandError, match="2014-03 is already archived"):
        archive("2014-03", tmp_path / "b.jsonl")


def test_no_event_no_drop_and_a_drop_after_its_event_is_recorded_once(
    old_log, tmp_path, monkeypatch
):
    """The log says the month left before it does: without that event nothing is dropped."""
    from audit import archive as archiving
    from audit import rollup

    recorded = archiving.audit_event_record

    def log_refuses(*, kind, **kwargs):
        if kind == kinds.AUDIT_ARCHIVED:
            raise DatabaseError("could not extend file: No space left on device")
        return recorded(kind=kind, **kwargs)

    monkeypatch.setattr(archiving, "audit_event_record", log_refuses)
    with pytest.raises(CommandError, match="No space left on device"):
        archive("2014-03", tmp_path / "a.jsonl")
    name = partitions.partition_name(MARCH.date())
    assert name in partition_names()
    assert not AuditEvent.objects.filter(kind=kinds.AUDIT_ARCHIVED.code).exists()
    # Recorded, then the drop fails: the next run drops it and records nothing again.
    monkeypatch.setattr(archiving, "audit_event_record", recorded)
    remove = rollup.counters_remove

    def cut(**kwargs):
        raise DatabaseError("canceling statement due to lock timeout")

    monkeypatch.setattr(rollup, "counters_remove", cut)
    with pytest.raises(CommandError, match="lock timeout"):
        archive("2014-03", tmp_path / "a.jsonl")
    assert name in partition_names()
    assert AuditEvent.objects.filter(kind=kinds.AUDIT_ARCHIVED.code).count() == 1
    monkeypatch.setattr(rollup, "counters_remove", remove)
    archive("2014-03", tmp_path / "a.jsonl")
    assert name not in partition_names()
    assert AuditEvent.objects.filter(kind=kinds.AUDIT_ARCHIVED.code).count() == 1
    call_command("audit_verify")


def test_an_archive_file_whose_event_cannot_be_written_is_deleted(old_log, tmp_path, monkeypatch):
    """No copy of a month of the log stays on disk without its event."""
    from audit import archive as archiving

    recorded = archiving.audit_event_record

    def log_refuses(*, kind, **kwargs):
        if kind == kinds.AUDIT_ARCHIVE_WRITTEN:
            raise DatabaseError("could not extend file: No space left on device")
        return recorded(kind=kind, **kwargs)

    monkeypatch.setattr(archiving, "audit_event_record", log_refuses)
    with pytest.raises(CommandError, match="No space left on device"):
        archive("2014-03", tmp_path / "a.jsonl")
    assert list(tmp_path.iterdir()) == []
    assert not AuditEvent.objects.filter(kind=kinds.AUDIT_ARCHIVE_WRITTEN.code).exists()
    assert AuditEvent.objects.filter(
        occurred_at__lt=datetime(2014, 4, 1, tzinfo=UTC)
    ).count() == len(old_log[0])


def restore(path) -> int:
    """Load an archive's events back into the event table, column for column (docs/audit.md)."""
    casts = {"occurred_at": "::timestamptz", "ip": "::inet", "data": "::jsonb"}
    statement = (
        f"INSERT INTO audit_auditevent ({', '.join(ARCHIVE_COLUMNS)}) VALUES ("  # noqa: S608
        + ", ".join(f"%s{casts.get(name, '')}" for name in ARCHIVE_COLUMNS)
        + ")"
    )
    events = [
        json.loads(line)["event"] for line in path.read_text().splitlines() if '"event"' in line
    ]
    for event in events:
        event["data"] = json.dumps(event["data"])
        sql(statement, [event[name] for name in ARCHIVE_COLUMNS])
    return len(events)


def test_archiving_removes_the_months_counters_and_a_restore_counts_them_again(old_log, tmp_path):
    march_days, april_days = partitions.bounds(MARCH.date()), partitions.bounds(date(2014, 4, 1))
    march, april = counters(*march_days), counters(*april_days)
    assert march[0] and march[1] and april[0]
    target = tmp_path / "2014-03.jsonl"
    archive("2014-03", target)
    # The dashboard no longer counts what the report no longer lists; April is as it was.
    assert counters(*march_days) == ([], [])
    assert counters(*april_days) == april
    done = AuditEvent.objects.get(kind=kinds.AUDIT_ARCHIVED.code)
    assert done.data["counters_removed"] == len(march[0])
    assert done.data["day_counters_removed"] == len(march[1])
    assert done.details.endswith(f", {len(march[0]) + len(march[1])} dashboard counters")
    # Restored into the event table, the month is counted again from its rows.
    assert restore(target) == len(old_log[0])
    call_command("audit_recount", "--month", "2014-03")
    assert counters(*march_days) == march
    assert counters(*april_days) == april


@pytest.mark.django_db(transaction=True)  # another connection holds the table
def test_a_drop_that_fails_keeps_the_months_counters(old_log, tmp_path, monkeypatch):
    """The counters go in the partition's transaction: a DROP that fails keeps both."""
    march_days = partitions.bounds(MARCH.date())
    march = counters(*march_days)
    partitions.partition_create(MARCH.date())  # so that only the DROP waits for the table
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "200ms")
    own = connection.settings_dict
    with psycopg.connect(
        host=own["HOST"], port=own["PORT"], user=own["USER"], dbname=own["NAME"]
    ) as reader:
        reader.execute("SET lock_timeout = '10s'")
        reader.execute("LOCK TABLE audit_auditevent IN ACCESS SHARE MODE")  # a long read
        with pytest.raises(CommandError, match="lock timeout"):
            archive("2014-03", tmp_path / "a.jsonl")
        assert partitions.partition_name(MARCH.date()) in partition_names()
        assert counters(*march_days) == march
        reader.rollback()
    call_command("audit_archive", "--month", "2014-03", "--to", str(tmp_path / "a.jsonl"))
    assert partitions.partition_name(MARCH.date()) not in partition_names()
    assert counters(*march_days) == ([], [])


# The syslog destination: a month leaves only once it has been sent, or with the skip recorded


@pytest.fixture
def siem_receiver(tmp_path_factory, settings):
    """A TLS syslog receiver on loopback, configured as the destination."""
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    with SyslogReceiver(pki.server_cert, pki.server_key) as running:
        configure(settings, running.url, pki.ca, "atna")
        yield running


URL = "tls://siem.example.org:6514"
NAME = f"syslog atna {URL}"


@pytest.fixture
def siem(settings, tmp_path):
    """A configured syslog destination that has received nothing yet."""
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    configure(settings, URL, ca, "atna")
    return audit_stream.ensure_destination()


def march_stretches() -> dict[int, tuple[int, int]]:
    """Each chain's first and last seq in March 2014."""
    start, end = partitions.bounds(MARCH.date())
    stretches = {}
    for event in AuditEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end):
        first, last = stretches.get(event.chain_id, (event.seq, event.seq))
        stretches[event.chain_id] = (min(first, event.seq), max(last, event.seq))
    return stretches


def nothing_archived(tmp_path, before) -> None:
    assert not (tmp_path / "x.jsonl").exists()
    assert (AuditEvent.objects.count(), partition_names()) == before
    assert not AuditArchive.objects.exists()


def test_a_month_the_destination_has_not_received_is_refused_naming_it_and_where_it_is(
    old_log, old_clinic, siem, tmp_path
):
    stretches = march_stretches()
    practice_chain = AuditChain.objects.get(practice=old_clinic[0].practice).pk
    (platform_chain,) = set(stretches) - {practice_chain}
    first, last = stretches[practice_chain]
    # The platform's March went out; the practice's only up to its second event.
    AuditCursor.objects.create(
        destination=siem, chain_id=platform_chain, seq=stretches[platform_chain][1]
    )
    AuditCursor.objects.create(destination=siem, chain_id=practice_chain, seq=first + 1)
    before = (AuditEvent.objects.count(), partition_names())
    with pytest.raises(CommandError) as refused:
        archive("2014-03", tmp_path / "x.jsonl")
    message = str(refused.value)
    assert message.startswith(
        f"The syslog destination '{NAME}' has not received {last - first - 1} events of 2014-03 "
        f"(chain {practice_chain} seq {first + 2}-{last}): once the month is dropped they can "
        "never be sent."
    )
    assert "--skip-undelivered" in message and message.endswith("Nothing was changed.")
    nothing_archived(tmp_path, before)
    assert not AuditEvent.objects.filter(kind=kinds.AUDIT_STREAM_SKIPPED.code).exists()


def test_a_configured_destination_without_cursors_has_received_nothing(old_log, settings, tmp_path):
    configure(settings, URL, tmp_path, "json")  # the worker has never run: no row yet
    before = (AuditEvent.objects.count(), partition_names())
    events = sum(last - first + 1 for first, last in march_stretches().values())
    with pytest.raises(CommandError, match=f"has not received {events} events of 2014-03"):
        archive("2014-03", tmp_path / "x.jsonl")
    nothing_archived(tmp_path, before)


def test_a_month_the_destination_has_received_goes(old_log, siem, tmp_path):
    for chain_id, (_first, last) in march_stretches().items():
        AuditCursor.objects.create(destination=siem, chain_id=chain_id, seq=last)
    archive("2014-03", tmp_path / "a.jsonl")
    assert AuditArchive.objects.get().month == MARCH.date().replace(day=1)
    assert not AuditEvent.objects.filter(kind=kinds.AUDIT_STREAM_SKIPPED.code).exists()


@pytest.fixture
def worker_destination(old_log, settings):
    """The worker's destination, half through March; this shell has no AUDIT_SYSLOG_URL."""
    settings.AUDIT_SYSLOG_URL = ""
    destination = Destination.objects.create(name=NAME, kind=Destination.Kind.SYSLOG)
    for chain_id, (first, _last) in march_stretches().items():
        AuditCursor.objects.create(destination=destination, chain_id=chain_id, seq=first)
    return destination


def test_a_destination_the_worker_uses_counts_though_this_shell_has_no_syslog_url(
    worker_destination, tmp_path
):
    stretches = march_stretches()
    before = (AuditEvent.objects.count(), partition_names())
    with pytest.raises(CommandError) as refused:
        archive("2014-03", tmp_path / "x.jsonl")
    shown = ", ".join(
        f"chain {chain} seq {first + 1}-{last}"
        for chain, (first, last) in sorted(stretches.items())
    )
    events = sum(last - first for first, last in stretches.values())
    assert str(refused.value).startswith(
        f"The syslog destination '{NAME}' has not received {events} events of 2014-03 ({shown}): "
    )
    nothing_archived(tmp_path, before)
    assert not AuditEvent.objects.filter(kind=kinds.AUDIT_STREAM_SKIPPED.code).exists()


def test_skipping_from_a_shell_without_a_syslog_url_records_it_on_the_worker_destination(
    worker_destination, tmp_path
):
    stretches = march_stretches()
    archive_skipping("2014-03", tmp_path / "a.jsonl")
    assert AuditArchive.objects.exists()
    assert list(Destination.objects.values_list("name", flat=True)) == [NAME]
    cursors = dict(
        AuditCursor.objects.filter(destination=worker_destination).values_list("chain_id", "seq")
    )
    assert cursors == {chain: last for chain, (_first, last) in stretches.items()}
    worker_destination.refresh_from_db()
    assert worker_destination.last_error.startswith(
        f"{sum(last - first for first, last in stretches.values())} events of 2014-03 archived "
        "before they were sent (audit_archive --skip-undelivered): chain "
    )
    event = AuditEvent.objects.get(kind=kinds.AUDIT_STREAM_SKIPPED.code)
    assert event.data["destination"] == NAME


def test_a_shell_configured_with_another_format_still_counts_the_worker_destination(
    worker_destination, settings, tmp_path
):
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    configure(settings, URL, ca, "json")  # the worker sends atna: another name
    stretches = march_stretches()
    before = (AuditEvent.objects.count(), partition_names())
    with pytest.raises(CommandError) as refused:
        archive("2014-03", tmp_path / "x.jsonl")
    assert f"The syslog destination '{NAME}' has not received " in str(refused.value)
    assert f"The syslog destination 'syslog json {URL}' has not received " in str(refused.value)
    nothing_archived(tmp_path, before)

    archive_skipping("2014-03", tmp_path / "a.jsonl")
    assert list(Destination.objects.values_list("name", flat=True)) == [NAME]  # no phantom
    cursors = dict(
        AuditCursor.objects.filter(destination=worker_destination).values_list("chain_id", "seq")
    )
    assert cursors == {chain: last for chain, (_first, last) in stretches.items()}
    worker_destination.refresh_from_db()
    assert "(audit_archive --skip-undelivered)" in worker_destination.last_error
    skipped = AuditEvent.objects.filter(kind=kinds.AUDIT_STREAM_SKIPPED.code)
    assert sorted(e.data["destination"] for e in skipped) == [NAME, f"syslog json {URL}"]


def test_a_retired_destination_holds_nothing_up(worker_destination, tmp_path):
    call_command("outbox_retire", NAME)
    archive("2014-03", tmp_path / "a.jsonl")
    assert AuditArchive.objects.exists()
    assert not Destination.objects.exists()
    assert not AuditEvent.objects.filter(kind=kinds.AUDIT_STREAM_SKIPPED.code).exists()


def archive_skipping(month: str, path) -> None:
    call_command("audit_archive", "--month", month, "--to", str(path), "--skip-undelivered")


def test_skipping_records_what_was_never_sent_and_the_receiver_is_told(
    old_log, siem_receiver, tmp_path
):
    receiver = siem_receiver
    audit_stream.ensure_destination()  # the worker has taken it up, and sent nothing yet
    stretches = march_stretches()
    skipped = sum(last - first + 1 for first, last in stretches.values())
    call_command(
        "audit_archive",
        "--month",
        "2014-03",
        "--to",
        str(tmp_path / "a.jsonl"),
        "--skip-undelivered",
    )
    event = AuditEvent.objects.get(kind=kinds.AUDIT_STREAM_SKIPPED.code)
    name = f"syslog atna {receiver.url}"
    assert event.details == (
        f"Audit log copies to {name} skipped: {skipped} events of 2014-03 archived before "
        "they were sent"
    )
    assert event.data["events"] == skipped and event.data["destination"] == name
    assert event.data["skipped"] == "; ".join(
        f"chain {chain} seq {first}-{last}" for chain, (first, last) in sorted(stretches.items())
    )
    # The destination's state: its cursors past the month, and why.
    destination = Destination.objects.get(name=name)
    cursors = dict(
        AuditCursor.objects.filter(destination=destination).values_list("chain_id", "seq")
    )
    assert cursors == {chain: last for chain, (_first, last) in stretches.items()}
    assert destination.last_error.startswith(
        f"{skipped} events of 2014-03 archived before they were sent "
        "(audit_archive --skip-undelivered): chain "
    )
    # The worker goes on after the month: every live event, the skip itself among them.
    call_command("outbox_worker", "--once")
    live = AuditEvent.objects.count()
    messages = [body(m) for m in receiver.wait_for_messages(live)]
    assert len(messages) == live
    assert sum(b"Audit log copies to" in m for m in messages) == 1
