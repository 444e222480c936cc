"""Every report page reads one index range, newest first: never a scan of the log.

The pages' own queries (captured as the view runs them) are explained on a log
of realistic shape: on SQLite with and without ANALYZE (a deployment may never
gather statistics, or have gathered them long ago), on PostgreSQL after it (as
autovacuum does). Besides the index each uses, a page is held to how many rows
it reads, which a scan of the log or a sort of every matching row would exceed
by hundreds: PostgreSQL counts them (EXPLAIN ANALYZE), SQLite counts the steps
of its virtual machine.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection

from accounts.roles import Role
from audit import kinds, partitions
from audit.kinds import BREAK_GLASS_CODES
from audit.models import AuditedPatient, AuditEvent
from audit.selectors import COUNT_LIMIT, Cursor
from tests.audit.helpers import copies_of
from tests.factories import make_user

NOW = datetime(2024, 3, 19, 16, 0, tzinfo=UTC)
LOG_SIZE = 20_000
PAGE = 50
DAYS = 730  # the log spans two years, up to NOW
FULL = {"date_from": "2022-03-20", "date_to": "2024-03-19"}
MIDDLE = {"date_from": "2023-03-20", "date_to": "2023-03-20"}
STAFF = 12  # accounts per practice: each writes about 4% of the log, as on a real platform


@pytest.fixture
def people(practice, other_practice, provider, nurse, other_provider):
    """Return the readers by role and each practice's staff by the practice's id."""
    compliance = make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="compliance")
    staff = {practice: [provider, nurse, compliance], other_practice: [other_provider]}
    for place, members in staff.items():
        while len(members) < STAFF:
            members.append(make_user(Role.NURSE, practice=place))
    return {
        "compliance": compliance,
        "auditor": make_user(Role.PLATFORM_AUDITOR, username="auditor"),
        **{place.pk: members for place, members in staff.items()},
    }


def build_log(practices: list[int], people: dict) -> None:
    """Insert LOG_SIZE events over two years, as the two practices' staff would leave them.

    Written in bulk as copies of the newest event, not through the service: these
    tests read plans, not the chain, and a log large enough for the planner to see
    its shape takes seconds that way. Chart views are 40%, break-glass events one in 1,500 and exports one in 1,000;
    patient P-k is in the first practice's log for even k, the second's for odd k.
    """
    step = timedelta(days=DAYS) / LOG_SIZE
    start = NOW - timedelta(days=DAYS)
    events = []
    for n in range(LOG_SIZE):
        practice = practices[n % 2]
        staff = people[practice]
        user = staff[(n // 2) % STAFF]
        kind, patient = kinds.SIGNED_IN, ""
        if n % 999 == 7:
            kind = kinds.AUDIT_EXPORTED
        elif n % 1499 == 11:
            kind = kinds.BREAK_GLASS_IDENTITY_VIEWED
        elif n % 5 < 2:
            kind, patient = kinds.PATIENT_CHART_VIEWED, f"P-{n % 400}"
        elif n % 5 == 2:
            kind = kinds.PROFILE_UPDATED
        events.append(
            {
                "seq": 10_000_000 + n,
                "occurred_at": start + step * n,
                "actor_id": user.pk,
                "actor_ref": user.pk,
                "account_id": user.pk,
                "account_ref": user.pk,
                "practice_id": practice,
                "patient_id": patient,
                "patient_name": patient and f"Patient {patient}",
                "kind": kind.code,
                "type": kind.type.value,
                "action": kind.action.value,
                "details": kind.code,
            }
        )
    if partitions.supported():
        # Each month in its own partition, as in a deployment's log (`audit_partitions`).
        month = partitions.first_of(start)
        while month <= partitions.first_of(NOW):
            partitions.partition_create(month)
            month = partitions.add_months(month, 1)
    template = AuditEvent.objects.order_by("id").last()
    AuditEvent.objects.bulk_create(copies_of(template, events), batch_size=2000)
    AuditedPatient.objects.bulk_create(
        AuditedPatient(
            practice_id=practices[k % 2], patient_id=f"P-{k}", patient_name=f"Patient P-{k}"
        )
        for k in range(400)
    )


def cases(practice) -> dict[str, tuple[str, dict, list[set[str]]]]:
    """Return each page: who reads it, its query string, and the index each part may use.

    Pages over a whole practice may take the practice's time index or, where a
    practice is a large share of the log, the log's own; PostgreSQL weighs the two.
    """
    middle = AuditEvent.objects.filter(
        practice=practice, occurred_at__lte=NOW - timedelta(days=365)
    )
    row = middle.order_by("-occurred_at", "-id").values("occurred_at", "id").first()
    cursor = Cursor(row["occurred_at"], row["id"]).encode()
    practice_time = {"audit_practice_time_idx", "audit_time_idx"}
    if connection.vendor == "sqlite":
        practice_time = {"audit_practice_time_idx"}
    username = [{"audit_practice_actor_idx"}, {"audit_practice_account_idx"}]
    practice_kind = {"audit_practice_kind_idx"}
    practice_type = {"audit_practice_type_idx", "audit_type_time_idx"}
    if connection.vendor == "sqlite":
        practice_type = {"audit_practice_type_idx"}
    glass = len(BREAK_GLASS_CODES)
    return {
        "first page": ("compliance", FULL, [practice_time]),
        "oldest page": ("compliance", {**FULL, "page": "last"}, [practice_time]),
        "older page from the middle": (
            "compliance",
            {**FULL, "page": "older", "cursor": cursor},
            [practice_time],
        ),
        "newer page from the middle": (
            "compliance",
            {**FULL, "page": "newer", "cursor": cursor},
            [practice_time],
        ),
        "one day in the middle": ("compliance", MIDDLE, [practice_time]),
        "username": ("compliance", {**FULL, "username": "dori"}, username),
        # Another practice's staff are not looked up for an officer: no statement at all.
        "another practice's username": ("compliance", {**FULL, "username": "otherdoc"}, []),
        "another practice's username, auditor": (
            "auditor",
            {**FULL, "username": "otherdoc"},
            [{"audit_actor_time_idx"}, {"audit_account_time_idx"}],
        ),
        "patient": ("compliance", {**FULL, "patient": "P-40"}, [{"audit_patient_time_idx"}]),
        # In each practice whose log holds the id (one here).
        "patient, auditor": ("auditor", {**FULL, "patient": "P-40"}, [{"audit_patient_time_idx"}]),
        # A rare type: the log's own index of it reads the other practice's few too.
        "type Report": ("compliance", {**FULL, "type": "Report"}, [practice_type]),
        "type Report, auditor": ("auditor", {**FULL, "type": "Report"}, [{"audit_type_time_idx"}]),
        # One part per break-glass kind, each reading its kind's own range.
        "break-glass only": ("compliance", {**FULL, "break_glass": "on"}, [practice_kind] * glass),
        "break-glass only, auditor": (
            "auditor",
            {**FULL, "break_glass": "on"},
            [{"audit_kind_time_idx"}] * glass,
        ),
        "username, auditor": (
            "auditor",
            {**FULL, "username": "dori"},
            [{"audit_actor_time_idx"}, {"audit_account_time_idx"}],
        ),
    }


def page_statements(client, params) -> list[tuple[str, list]]:
    """Return the statements on the events table that the report page runs."""
    statements = []

    def capture(execute, sql, params, many, context):
        if sql.startswith("SELECT") and 'FROM "audit_auditevent"' in sql:
            statements.append((sql, list(params)))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        response = client.get("/audit/", params)
    assert response.status_code == 200
    return statements


def sqlite_plan(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(row[-1] for row in cursor.fetchall())


def sqlite_steps(sql: str, params: list) -> int:
    """Run the statement; return how many steps of SQLite's virtual machine it took."""
    steps = 0

    def count():
        nonlocal steps
        steps += 1
        return 0

    connection.ensure_connection()
    raw = connection.connection
    raw.set_progress_handler(count, 1)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchall()
    finally:
        raw.set_progress_handler(None, 1)
    return steps


def postgres_plan(sql: str, params: list, *, analyze: bool = False) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {'(ANALYZE, TIMING OFF) ' if analyze else ''}{sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def postgres_rows_read(plan: str) -> int:
    """Return the rows the plan's scans produced or threw away (EXPLAIN ANALYZE)."""
    read = 0
    for line in plan.splitlines():
        scan = re.search(r"Scan .*\(actual rows=(\d+) loops=(\d+)\)", line)
        if scan:
            read += int(scan.group(1)) * int(scan.group(2))
        removed = re.search(r"Rows Removed by (?:Filter|Index Recheck): (\d+)", line)
        if removed:
            read += int(removed.group(1))
    return read


def used_indexes(plan: str) -> set[str]:
    if connection.vendor == "sqlite":
        return set(re.findall(r"USING (?:COVERING )?INDEX (\w+)", plan))
    names = set(
        re.findall(r"(?:Index (?:Only )?Scan (?:Backward )?using|Index Scan on) (\w+)", plan)
    )
    return {parent_index(name) for name in names}


def parent_index(name: str) -> str:
    """The event table's index a partition's index belongs to (the monthly partitions')."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT parent.relname FROM pg_inherits JOIN pg_class child ON child.oid = inhrelid "
            "JOIN pg_class parent ON parent.oid = inhparent WHERE child.relname = %s",
            [name],
        )
        row = cursor.fetchone()
    return row[0] if row else name


def scans_or_sorts_the_table(plan: str) -> bool:
    """Return whether the plan reads the whole table, or sorts (SQLite) what it reads.

    PostgreSQL may read a few matching rows through a bitmap and sort them when it
    expects fewer than a page; how many rows it read is held to MAX_ROWS_READ.
    """
    if connection.vendor == "sqlite":
        return bool(re.search(r"SCAN audit_auditevent\b(?! USING)", plan)) or "TEMP B-TREE" in plan
    return "Seq Scan" in plan


# A page reads at most its 51 rows per part, plus rows of other practices where a
# whole-log index serves one practice (half the log here). Steps of SQLite's virtual
# machine per row read: about 20 for these queries; a scan of the log takes 200,000.
MAX_ROWS_READ = 3 * (PAGE + 1)
MAX_SQLITE_STEPS = 40 * (PAGE + 1)


# The count above a page stops after COUNT_LIMIT + 1 matching rows, in whatever order
# the database finds them; where a whole-log index serves one practice it also steps
# over the other practice's rows (half the log here).
MAX_COUNT_ROWS_READ = 3 * (COUNT_LIMIT + 1)
MAX_COUNT_SQLITE_STEPS = 40 * (COUNT_LIMIT + 1)


def count_problems(name: str, counts: list, expected: list) -> list[str]:
    """Check the page's bounded count: one statement (none where no part has one), bounded."""
    if len(counts) != min(1, len(expected)):
        return [f"{name}: {len(counts)} count statements, not {min(1, len(expected))}"]
    found = []
    for sql, args in counts:
        if connection.vendor == "sqlite":
            read, limit = sqlite_steps(sql, args), MAX_COUNT_SQLITE_STEPS
        else:
            read = postgres_rows_read(postgres_plan(sql, args, analyze=True))
            limit = MAX_COUNT_ROWS_READ
        if "LIMIT" not in sql or read > limit:
            found.append(f"{name}: the count reads {read} (at most {limit})\n{sql}")
    return found


@pytest.mark.parametrize(
    "analyzed",
    [
        pytest.param(False, id="no statistics", marks=pytest.mark.sqlite_only),
        pytest.param(True, id="analyzed"),
    ],
)
def test_each_report_page_reads_one_index_range_newest_first(
    client, people, practice, other_practice, analyzed
):
    with time_machine.travel(NOW, tick=False):
        build_log([practice.pk, other_practice.pk], people)
        if analyzed:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        problems = []
        for name, (viewer, params, expected) in cases(practice).items():
            client.force_login(people[viewer])
            client.get("/")  # the session's own queries out of the way
            statements = page_statements(client, params)
            counts = [s for s in statements if "COUNT(*)" in s[0]]
            statements = [s for s in statements if s not in counts]
            problems += count_problems(name, counts, expected)
            if len(statements) != len(expected):
                problems.append(f"{name}: {len(statements)} statements, not {len(expected)}")
                continue
            for (sql, args), indexes in zip(statements, expected, strict=True):
                if connection.vendor == "sqlite":
                    plan = sqlite_plan(sql, args)
                    read, limit = sqlite_steps(sql, args), MAX_SQLITE_STEPS
                else:
                    plan = postgres_plan(sql, args)
                    read = postgres_rows_read(postgres_plan(sql, args, analyze=True))
                    limit = MAX_ROWS_READ
                if not used_indexes(plan) or not used_indexes(plan) <= indexes:
                    problems.append(f"{name}: uses {used_indexes(plan)}, not {indexes}\n{plan}")
                if scans_or_sorts_the_table(plan):
                    problems.append(f"{name}: scans or sorts the table\n{plan}")
                if read > limit:
                    problems.append(f"{name}: reads {read} (at most {limit})\n{plan}")
    assert not problems, "\n\n".join(problems)


def test_kinds_and_types_are_written_into_the_report_statements(
    client, people, practice, other_practice
):
    """A code in the text is planned for itself even in a prepared statement's generic
    plan, which plans a parameter as an average kind (`ehr.prepared.Code`)."""
    codes = {*BREAK_GLASS_CODES, *kinds.OVERSIGHT_CODES, "Report"}
    provider = people[practice.pk][0]
    pages = [
        ("auditor", {**FULL, "break_glass": "on"}, set(BREAK_GLASS_CODES)),
        ("compliance", {**FULL, "type": "Report"}, {"Report"}),
        ("auditor", {**FULL, "kind": kinds.AUDIT_EXPORTED.code}, {kinds.AUDIT_EXPORTED.code}),
        ("provider", FULL, set(kinds.OVERSIGHT_CODES)),
    ]
    for viewer, params, written in pages:
        client.force_login(provider if viewer == "provider" else people[viewer])
        statements = page_statements(client, params)
        assert statements, params
        for sql, args in statements:
            assert not codes & {arg for arg in args if isinstance(arg, str)}, (sql, args)
        text = " ".join(sql for sql, _args in statements)
        assert all(f"'{code}'" in text for code in written), (params, text)
