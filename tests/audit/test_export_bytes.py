"""The export's bytes against an independent rendering of the same rows.

The export writes its cells in SQL and joins them in bulk (audit/export.py); here
each row is rendered again in plain Python from the ORM's values, with the rules
the file has always followed:
- Date `MM/DD/YYYY` and time `hh:mm:ss AM ZONE` in the viewer's zone;
- Patient, User and Details get a leading `'` when they start with = + - @ tab CR;
- IP `None` for an event without one;
- quoting: SQLite's file is csv.writer's (a cell is quoted when it holds a comma, a
  quote or a line break; lines end CR LF); PostgreSQL's is COPY's CSV (an empty
  cell is quoted as well; lines end LF). The header is csv.writer's on both.
"""

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, transaction

from accounts.roles import Role
from accounts.services import user_create
from audit import export, formatting, kinds, selectors, services
from audit.models import AuditChain, AuditEvent
from audit.services import EVENT_COLUMNS
from tests.audit.helpers import chart_viewed, record_at
from tests.factories import PASSWORD, confirm_identity, make_user

NOW = datetime(2024, 11, 4, 15, 0, tzinfo=UTC)
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

AWKWARD_NAMES = [
    'Quote "the" patient',
    "Comma, Ada",
    "Line\nbreak",
    "Windows\r\nbreak",
    "Lone\rreturn",
    '=HYPERLINK("http://evil","x")',
    "+1 555",
    "-2+3",
    "@SUM(A1)",
    "\tTabbed",
    "\rReturned",
    "Zoë Ångström-Øster 王",
    "unit\x1fseparator",
    "trailing space ",
    "",
    "Plain Name",
    "'already quoted",
    '"',
    ",",
    # Below the first trigger's code point, between triggers, and above them, but none.
    " leading space",
    "!bang",
    "<script>",
    "9 lives",
    "?query",
    "\x1fseparator first",
    "A",
    "ÿ accented first",
    "\uff1dfull-width equals",
]

# Instants around midnight and the 2024 daylight-saving changes of the
# zones below (America/New_York: 03-10 07:00 and 11-03 06:00 UTC; Australia/Lord_Howe,
# a half hour: 04-06 15:00 and 10-05 15:30 UTC; Asia/Kolkata has none). Two lie just
# before a whole second: SQLite's date functions keep the millisecond and round, which
# would print the second after; the export cuts to whole seconds, as the report does.
INSTANTS = [
    datetime(2024, 3, 9, 0, 30, 0, tzinfo=UTC),  # the oldest: the day before, in New York
    datetime(2024, 3, 10, 6, 59, 59, tzinfo=UTC),
    datetime(2024, 3, 10, 7, 0, 0, tzinfo=UTC),
    datetime(2024, 3, 10, 7, 0, 0, 500000, tzinfo=UTC),
    datetime(2024, 4, 6, 14, 59, 59, 999000, tzinfo=UTC),
    datetime(2024, 4, 6, 16, 59, 59, 999700, tzinfo=UTC),  # SQLite would round it up
    datetime(2024, 4, 6, 15, 0, 0, tzinfo=UTC),
    datetime(2024, 10, 5, 15, 29, 59, tzinfo=UTC),
    datetime(2024, 10, 5, 15, 30, 0, tzinfo=UTC),
    datetime(2024, 11, 3, 5, 59, 59, tzinfo=UTC),
    datetime(2024, 11, 3, 6, 0, 0, tzinfo=UTC),
    datetime(2024, 11, 3, 6, 0, 1, tzinfo=UTC),
    datetime(2024, 11, 4, 4, 59, 59, tzinfo=UTC),  # 11:59:59 PM in New York
    datetime(2024, 11, 4, 5, 0, 0, tzinfo=UTC),  # midnight there
    datetime(2024, 11, 4, 11, 59, 59, tzinfo=UTC),
    datetime(2024, 11, 4, 12, 0, 0, tzinfo=UTC),
    datetime(2024, 11, 4, 12, 0, 1, 999700, tzinfo=UTC),  # SQLite: 12:00:02 (see `expected`)
]


@pytest.fixture
def awkward_log(practice, provider, db):
    """Events whose every text cell is awkward once, at awkward instants."""
    # Usernames may start with + - @; the User cell must be made safe as well.
    users = [
        provider,
        make_user(Role.NURSE, practice=practice, username="-minus", first_name='Q"uote'),
        make_user(Role.NURSE, practice=practice, username="+plus", first_name="Comma,"),
        user_create(
            username="@at",
            email="at@example.org",
            password=PASSWORD,
            first_name="Zoë",
            last_name="Ångström",
            role=Role.NURSE,
            practice=practice,
            acting_user=None,
        ),
    ]
    ips = [None, "2605:a601:ac72:c200:d5e7:5fe4:ad72:8204", "192.0.2.4", "::1"]
    for n, name in enumerate(AWKWARD_NAMES):
        when = INSTANTS[n % len(INSTANTS)] + timedelta(days=7 * (n // len(INSTANTS)))
        chart_viewed(users[n % len(users)], f"P-{n}", name, when)
        record_at(
            when - timedelta(seconds=1),
            kind=kinds.SIGNED_IN,
            acting_user=users[(n + 1) % len(users)],
            account=users[(n + 1) % len(users)],
            ip=ips[n % len(ips)],
        )
    if connection.vendor == "sqlite":  # PostgreSQL's text has no NUL
        chart_viewed(provider, "P-NUL", "nul\x00inside", NOW - timedelta(hours=1))


def safe(cell: str) -> str:
    return "'" + cell if cell[:1] in TRIGGERS else cell


def quoted(cell: str, *, empty: bool) -> str:
    if any(char in cell for char in ',"\r\n') or (empty and cell == ""):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def expected(events, time_zone: ZoneInfo) -> bytes:
    """The file for `events` (newest first), rendered without the export's code."""
    postgres = connection.vendor == "postgresql"
    header = io.StringIO()
    csv.writer(header).writerow(export.HEADER)
    lines = [header.getvalue()]
    for event in events:
        # Whole seconds, cut as the report cuts them, on both databases (SQLite's own
        # date functions would round an instant half a millisecond before a second up).
        local = event.occurred_at.astimezone(time_zone)
        cells = [
            local.strftime("%m/%d/%Y"),
            local.strftime("%I:%M:%S %p ") + (local.tzname() or ""),
            safe(event.patient_name),
            safe(event.actor_label),
            event.type,
            event.action,
            safe(event.details),
            event.ip or "None",
        ]
        line = ",".join(quoted(cell, empty=postgres) for cell in cells)
        lines.append(line + ("\n" if postgres else "\r\n"))
    return "".join(lines).encode()


def covered(positions: dict[int, int]) -> list[AuditEvent]:
    events = AuditEvent.objects.order_by("-occurred_at", "-id")
    return [e for e in events if e.seq <= positions.get(e.chain_id, 0)]


def exported(positions: dict[int, int], time_zone: ZoneInfo) -> bytes:
    blocks = export.export_rows(
        AuditEvent.objects.all(), freeze=selectors.covered_by(positions), time_zone=time_zone
    )
    return b"".join(block for block, _rows in blocks)


def heads() -> dict[int, int]:
    return dict(AuditChain.objects.values_list("id", "seq"))


ZONES = ["America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("batch", [1, 3, export.BATCH])
def test_export_is_an_independent_rendering_byte_for_byte(awkward_log, monkeypatch, zone, batch):
    # Batches of one row each take the bulk path or csv.writer row by row; larger
    # ones mix plain and awkward rows.
    monkeypatch.setattr(export, "BATCH", batch)
    positions = heads()
    tz = ZoneInfo(zone)
    rows = covered(positions)
    assert len(rows) > 2 * len(AWKWARD_NAMES)
    assert exported(positions, tz) == expected(rows, tz)


def test_export_leaves_out_events_written_after_its_checkpoint(
    awkward_log, provider, other_provider
):
    positions = heads()
    own = AuditChain.objects.get(practice_id=provider.practice_id).pk
    # Another practice writes after the events held back below: its rows are newer,
    # by id and by time, than those, and still covered.
    for n in range(3):
        chart_viewed(other_provider, f"O-{n}", f"Other, {n}", NOW + timedelta(minutes=n))
    positions = heads()
    held_back = {**positions, own: positions[own] - 5}
    tz = ZoneInfo("America/New_York")
    rows = covered(held_back)
    assert len(rows) == AuditEvent.objects.count() - 5
    held = AuditEvent.objects.filter(chain_id=own, seq__gt=held_back[own])
    later = AuditEvent.objects.filter(patient_id__startswith="O-")
    assert min(e.pk for e in later) > max(e.pk for e in held)
    assert set(later) <= set(rows) and not set(held) & set(rows)
    assert exported(held_back, tz) == expected(rows, tz)
    # A chain the checkpoint did not know of (a practice created since) has no rows in it.
    unknown = {chain: seq for chain, seq in positions.items() if chain != own}
    assert exported(unknown, tz) == expected(covered(unknown), tz)


@pytest.mark.sqlite_only
def test_rows_outside_the_logs_span_are_still_written_the_same(awkward_log, monkeypatch):
    """Rows the span read at the start does not cover (the log changed) go the general way."""
    first, last = export._log_bounds(AuditEvent, "default")
    middle = first + (last - first) / 2
    monkeypatch.setattr(
        export, "_log_bounds", lambda model, alias: (middle, middle + timedelta(days=1))
    )
    tz = ZoneInfo("America/New_York")
    positions = heads()
    assert exported(positions, tz) == expected(covered(positions), tz)


def test_the_downloaded_file_is_the_independent_rendering(client, practice, awkward_log):
    officer = make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="officer")
    client.force_login(officer)
    confirm_identity(client)
    with time_machine.travel(NOW, tick=False):
        response = client.get("/audit/export.csv", {"date_from": "2024-03-01"})
        body = b"".join(response.streaming_content)
    tz = ZoneInfo(officer.time_zone)
    # From the first day asked for to today, both whole days in the officer's zone.
    start, end = datetime(2024, 3, 1, tzinfo=tz), datetime(2024, 11, 5, tzinfo=tz)
    rows = [
        e
        for e in covered(heads())
        if e.practice_id == practice.pk
        and start <= e.occurred_at < end
        and e.kind != kinds.AUDIT_EXPORTED.code
    ]
    assert int(response["X-Export-Rows"]) == len(rows)
    assert body == expected(rows, tz)


@pytest.mark.sqlite_only
def test_an_empty_address_is_written_as_none(awkward_log, provider):
    """Django stores no address as NULL; an empty one written by other means reads the same."""
    head = AuditChain.objects.get(practice_id=provider.practice_id)
    columns = [c for c in EVENT_COLUMNS if c not in ("seq", "ip")]
    with connection.cursor() as cursor:
        # A copy of the chain's newest event behind the chain's back (the append-only
        # guard allows inserts), with an empty address; the head moves past it.
        cursor.execute(
            f"INSERT INTO audit_auditevent (seq, ip, {', '.join(columns)}) "  # noqa: S608  (fixed column names)
            f"SELECT %s, '', {', '.join('e.' + c for c in columns)} FROM audit_auditevent e "
            "WHERE e.chain_id = %s AND e.seq = %s",
            [head.seq + 1, head.pk, head.seq],
        )
        cursor.execute(
            "UPDATE audit_auditchain SET seq = %s WHERE id = %s", [head.seq + 1, head.pk]
        )
        cursor.execute("SELECT COUNT(*) FROM audit_auditevent WHERE ip = ''")
        assert cursor.fetchone() == (1,)
    tz = ZoneInfo("America/New_York")
    positions = heads()
    assert exported(positions, tz) == expected(covered(positions), tz)


def test_an_event_before_1970_is_written_the_same(awkward_log, provider):
    """Local days and seconds count from 1970 on SQLite; older rows go the general way."""
    chart_viewed(provider, "P-OLD", "Before, 1970", datetime(1969, 12, 31, 23, 30, tzinfo=UTC))
    tz = ZoneInfo("America/New_York")
    positions = heads()
    assert exported(positions, tz) == expected(covered(positions), tz)


def rendered_as_the_report_does(events, time_zone: ZoneInfo) -> bytes:
    """The file for `events` with the report's own formatters (`audit.formatting`)."""
    postgres = connection.vendor == "postgresql"
    out = io.StringIO()
    csv.writer(out).writerow(export.HEADER)
    for event in events:
        occurred = event.occurred_at
        cells = [
            formatting.event_date(occurred, time_zone),
            formatting.event_time(occurred, time_zone),
            formatting.neutralize(event.patient_name),
            formatting.neutralize(event.actor_label),
            event.type,
            event.action,
            formatting.neutralize(event.details),
            formatting.ip_text(event.ip),
        ]
        if postgres:
            # COPY's CSV: an empty cell quoted as well, lines ending LF.
            line = ",".join(quoted(cell, empty=True) for cell in cells) + "\n"
        else:
            line_out = io.StringIO()
            csv.writer(line_out).writerow(cells)
            line = line_out.getvalue()
        out.write(line)
    return out.getvalue().encode()


@pytest.mark.parametrize("zone", ZONES)
def test_export_is_what_the_reports_formatters_write(awkward_log, zone):
    """The SQL-side cells (dates, times, spreadsheet-safe text) against `audit.formatting`."""
    positions = heads()
    tz = ZoneInfo(zone)
    assert exported(positions, tz) == rendered_as_the_report_does(covered(positions), tz)


def test_rows_written_after_the_checkpoint_are_neither_counted_nor_sent(
    client, practice, provider, awkward_log, monkeypatch
):
    """Events written between the checkpoint and the count stay out of both."""
    officer = make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="officer")
    frozen = {}
    take_checkpoint = services.export_source

    def checkpoint_then_writes():
        taken = take_checkpoint()
        frozen.update(heads())
        for n in range(3):
            chart_viewed(provider, f"L-{n}", f"Written Later {n}", NOW - timedelta(minutes=n))
        return taken

    monkeypatch.setattr(services, "export_source", checkpoint_then_writes)
    client.force_login(officer)
    confirm_identity(client)
    with time_machine.travel(NOW, tick=False):
        response = client.get("/audit/export.csv", {"date_from": "2024-03-01"})
        body = b"".join(response.streaming_content)
    assert frozen and AuditEvent.objects.filter(patient_id__startswith="L-").count() == 3
    lines = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert b"Written Later" not in body
    assert int(response["X-Export-Rows"]) == len(lines) - 1
    tz = ZoneInfo(officer.time_zone)
    start, end = datetime(2024, 3, 1, tzinfo=tz), datetime(2024, 11, 5, tzinfo=tz)
    rows = [
        e
        for e in covered(frozen)
        if e.practice_id == practice.pk
        and start <= e.occurred_at < end
        and e.kind != kinds.AUDIT_EXPORTED.code
    ]
    assert body == expected(rows, tz)


@pytest.mark.postgres_only
def test_the_export_puts_the_sessions_zone_date_style_and_jit_back(awkward_log):
    """Inside an enclosing transaction, statements after the export run as before it."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL TimeZone = 'Asia/Kolkata'")
        cursor.execute("SET LOCAL DateStyle = 'ISO, DMY'")
        cursor.execute("SET LOCAL jit = on")
        assert exported(heads(), ZoneInfo("America/New_York"))
        rows = export.export_count(AuditEvent.objects.all(), freeze=selectors.covered_by(heads()))
        assert rows == len(covered(heads()))
        cursor.execute(
            "SELECT current_setting('TimeZone'), current_setting('DateStyle'),"
            " current_setting('jit')"
        )
        assert cursor.fetchone() == ("Asia/Kolkata", "ISO, DMY", "on")
