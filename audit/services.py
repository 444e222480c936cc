"""The one way to write the audit log, and the export that records itself in it."""

import contextvars
import csv
import io
import json
import logging
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Practice, User
from audit import chain, checkpoints, hashing, kinds, rollup, selectors
from audit.chain import EVENT_COLUMNS
from audit.export import export_count, export_fhir, export_rows
from audit.hashing import GENESIS_HASH
from audit.kinds import EventKind
from audit.models import AuditedPatient, AuditEvent
from ehr.db import ReadSource, replica_after_writes, replica_alias
from ehr.middleware import current_request_context
from ehr.policies import can_review_audit_subjects

logger = logging.getLogger(__name__)

Scalar = str | int | bool | None


def user_label(user: User | None) -> str:
    """Label a user as the seed's User column does: `496094 (dorothy Ludwig)`.

    Providers are named by Doctor ID, everyone else by username.
    """
    if user is None:
        return ""
    # One query at most per user object (Django caches the miss too), none when the
    # caller used select_related.
    profile = getattr(user, "provider_profile", None)
    ident = str(profile.doctor_id) if profile is not None else user.username
    return f"{ident} ({user.display_name})"


class AuditWriteError(RuntimeError):
    """The event could not be written; the action it records must not happen."""


def audit_event_record(
    *,
    kind: EventKind,
    acting_user: User | None,
    account: User | None = None,
    ip: str | None,
    practice: Practice | None = None,
    patient_id: str = "",
    patient_name: str = "",
    params: dict[str, str | int] | None = None,
    data: dict[str, Scalar] | None = None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    The details are the kind's wording filled with `params` (by default the
    account's name); there is no free-text argument, so a caller cannot pass a
    PIN, a password or a key into the log by accident. `data` holds scalar facts.

    Ordering: the event goes into its practice's chain (the platform's when it
    belongs to no practice), whose row is locked with SELECT ... FOR UPDATE until
    the caller's transaction ends, so writers of one practice take turns and
    writers of different practices never wait on each other; each reads the
    previous hash and the next `seq` under the lock, and `occurred_at` is taken
    under it too, so chain order is time order (while the servers' clocks agree). On SQLite the whole transaction
    holds the database write lock from its start (`transaction_mode=IMMEDIATE`),
    which gives the same guarantee. If the caller's transaction rolls back, the
    event and the head update roll back with it.
    """
    details_params = {"account": account.display_name if account else ""}
    details_params.update(params or {})
    for name, value in details_params.items():
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise TypeError(f"audit parameter {name!r} must be a string or an integer")
    for name, value in (data or {}).items():
        if not isinstance(value, Scalar):
            raise TypeError(f"audit data {name!r} must be a scalar")
    context = current_request_context()
    if practice is not None:
        practice_id = practice.pk
    else:  # ids, not objects: no query for the practice itself
        practice_id = (account.practice_id if account else None) or (
            acting_user.practice_id if acting_user else None
        )

    key_id, key = chain.signing_key()
    actor_label = user_label(acting_user)[:200]
    row = {
        "actor_ref": acting_user.pk if acting_user else None,
        "account_ref": account.pk if account else None,
        "practice_id": practice_id,
        "patient_id": patient_id[:64],
        "patient_name": patient_name[:200],
        "kind": kind.code,
        "type": kind.type.value,
        "action": kind.action.value,
        "details": kind.details(details_params)[:1000],
        "ip": ip,
        "user_agent": context.user_agent if context else "",
        "request_id": context.request_id if context else "",
        "data": dict(data or {}),
        "actor_label": actor_label,
        "account_label": actor_label if account is acting_user else user_label(account)[:200],
    }
    # The connection itself, looked up once rather than through the `connection`
    # proxy at every use.
    db = connections[DEFAULT_DB_ALIAS]
    # No savepoint: if the event cannot be written, the caller's whole transaction
    # must fail with it (fail closed), so there is nothing to roll back to.
    with transaction.atomic(using=db.alias, savepoint=False):
        # From here to the end of the caller's transaction the chain is locked:
        # the work done under it is two statements and two hashes; everything
        # else was prepared above.
        with _write_cursor(db) as cursor:
            chain_id, seq, prev_hash = _lock_chain(cursor, practice_id, vendor=db.vendor)
            row["chain_id"] = chain_id
            row["seq"] = seq + 1
            row["occurred_at"] = timezone.now()
            digest = hashing.row_hash(row, prev_hash=prev_hash)
            row["actor_id"] = row["actor_ref"]
            row["account_id"] = row["account_ref"]
            row["key_id"] = key_id
            row["prev_hash"] = prev_hash
            row["row_hash"] = digest
            row["mac"] = chain.event_mac(digest, key=key)
            event_id = _append(cursor, row, db)
        if patient_id:
            AuditedPatient.objects.update_or_create(
                practice_id=practice_id,
                patient_id=patient_id[:64],
                defaults={"patient_name": patient_name[:200]},
            )
    row["id"] = event_id
    # As a query would load it (positional values, the ORM's quick way in), with the
    # users the caller holds, so reading event.actor or event.account costs no query.
    event = AuditEvent.from_db(db.alias, None, [row[name] for name in _model_fields()])
    if acting_user is not None:
        event.actor = acting_user
    if account is not None:
        event.account = account
    return event


@cache
def _model_fields() -> tuple[str, ...]:
    return tuple(field.attname for field in AuditEvent._meta.concrete_fields)


def _write_cursor(db):
    """A cursor for the statements under the chain lock.

    On PostgreSQL the values travel as bind parameters (psycopg's server-side
    binding) rather than spelled into the SQL text as Django's own cursors do,
    so psycopg can prepare the two statements once per connection (settings:
    DB_PREPARED_STATEMENTS) and the server stops parsing, analysing and planning
    an insert of two dozen values on every event: about a third of the backend's
    CPU per event, measured (bench/README.md). The cursor is wrapped as
    `connection.cursor()` wraps its own, so the statements are logged, counted
    and their errors translated like any other.
    """
    if db.vendor != "postgresql":
        return db.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    db.ensure_connection()
    cursor = ServerBindingCursor(db.connection)
    if db.queries_logged:
        return db.make_debug_cursor(cursor)
    return db.make_cursor(cursor)


def _lock_chain(cursor, practice_id: int | None, *, vendor: str) -> tuple[int, int, str]:
    """Lock the chain of `practice_id` (None: the platform's); return its id and head.

    A practice's chain is created by its first event. SQLite has no row locks
    (and no FOR UPDATE): its IMMEDIATE transactions already hold the database
    write lock.
    """
    lock = " FOR UPDATE" if vendor == "postgresql" else ""
    if practice_id is None:
        cursor.execute(_PLATFORM_HEAD + lock)
    else:
        cursor.execute(_PRACTICE_HEAD + lock, [practice_id])
    current = cursor.fetchone()
    if current is None and practice_id is not None:
        # Two first writers of one practice: the second waits for the first's
        # row, then inserts nothing and locks it.
        cursor.execute(_NEW_CHAIN, [practice_id, GENESIS_HASH, GENESIS_HASH, GENESIS_HASH])
        cursor.execute(_PRACTICE_HEAD + lock, [practice_id])
        current = cursor.fetchone()
    if current is None:
        raise AuditWriteError("the platform's audit chain is missing; run migrations")
    return current


_HEAD = "SELECT id, seq, row_hash FROM audit_auditchain WHERE "
_PRACTICE_HEAD = _HEAD + "practice_id = %s"
_PLATFORM_HEAD = _HEAD + "kind = 'platform'"
_NEW_CHAIN = (
    "INSERT INTO audit_auditchain (kind, practice_id, seq, row_hash, start_seq, start_hash, "
    "start_mac) VALUES ('practice', %s, 0, %s, 1, %s, %s) ON CONFLICT (practice_id) DO NOTHING"
)


@cache
def insert_sql(vendor: str) -> str:
    casts = {"data": "::jsonb", "ip": "::inet"} if vendor == "postgresql" else {}
    placeholders = ", ".join(f"%s{casts.get(name, '')}" for name in EVENT_COLUMNS)
    return f"INSERT INTO audit_auditevent ({', '.join(EVENT_COLUMNS)}) VALUES ({placeholders})"  # noqa: S608  (fixed column names, values as parameters)  # nosec B608


@cache
def _append_sql(vendor: str) -> str:
    if vendor == "postgresql":
        return (
            "WITH moved AS (UPDATE audit_auditchain SET seq = %s, row_hash = %s WHERE id = %s), "  # noqa: S608  (fixed column names)  # nosec B608
            f"counted AS ({rollup.COUNT_SQL[0]}), counted_day AS ({rollup.COUNT_SQL[1]}) "
            + insert_sql(vendor)
            + " RETURNING id"
        )
    return insert_sql(vendor)


def _append(cursor, columns: dict, db) -> int:
    """Insert the event, move the head and count it; on PostgreSQL in one round trip.

    Raw SQL rather than the ORM: this runs while every other writer waits for
    the head, so each saved round trip and millisecond of Python counts. The
    count is the dashboard's rollup (`audit.rollup`): two more counters, in the
    same statement on PostgreSQL.
    """
    ops = db.ops
    adapted = {
        **columns,
        "occurred_at": ops.adapt_datetimefield_value(columns["occurred_at"]),
        "ip": ops.adapt_ipaddressfield_value(columns["ip"]),
        "data": json.dumps(columns["data"], sort_keys=True),
    }
    values = [adapted[name] for name in EVENT_COLUMNS]
    head = [columns["seq"], columns["row_hash"], columns["chain_id"]]
    counters = rollup.counter_keys(
        practice_id=columns["practice_id"],
        occurred_at=columns["occurred_at"],
        kind=columns["kind"],
        actor_id=columns["actor_ref"],
    )
    if db.vendor == "postgresql":
        cursor.execute(_append_sql("postgresql"), head + counters + values)
        return cursor.fetchone()[0]
    cursor.execute(_append_sql(db.vendor), values)
    event_id = cursor.lastrowid
    cursor.execute("UPDATE audit_auditchain SET seq = %s, row_hash = %s WHERE id = %s", head)
    cursor.execute(rollup.COUNT_SQL[0], counters[:4])
    cursor.execute(rollup.COUNT_SQL[1], counters[4:])
    return event_id


# The export


@dataclass(frozen=True)
class AuditExport:
    """An export already recorded in the log: its row count and its content, still to stream."""

    rows: int
    checkpoint: int
    content: Iterator[bytes]


@dataclass(frozen=True)
class ExportSubject:
    """The account or the patient an exported history is about."""

    account: User | None = None
    patient: AuditedPatient | None = None

    def filed(self) -> dict:
        """Where the export's events go: the subject's practice, and the patient."""
        if self.patient is not None:
            return {
                "practice": self.patient.practice,
                "patient_id": self.patient.patient_id,
                "patient_name": self.patient.patient_name,
            }
        return {"practice": self.account.practice} if self.account.practice else {}


def audit_log_export(
    *,
    acting_user: User,
    ip: str | None,
    events: QuerySet[AuditEvent],
    filters: str,
    filter_data: dict[str, Scalar],
    time_zone: ZoneInfo,
    fhir: bool = False,
    about: ExportSubject | None = None,
) -> AuditExport:
    """Record an export of `events` in the log, then hand back its CSV to stream.

    `about`: the history of one account or patient. Its export's events are filed in
    the subject's practice's chain (its compliance officers read them, whoever
    exported) and, for a patient, under the patient, beside the history's views.

    With `fhir`, the content is a FHIR R4 Bundle of AuditEvent resources
    (`audit.fhir`) instead, recorded as AUDIT_EXPORTED_FHIR.

    `filters` words the filters for the event's Details (fixed wording only, see
    `AuditEventFilter.describe`); `filter_data` holds what was typed, for its data.

    Order: the AUDIT_EXPORTED event commits before the first byte can be read, so
    no row leaves unless the log says who exported how many rows under which
    filters (fail closed: if the event cannot be written, there is no file).
    Streaming comes after the commit, when the response is already on its way:
    if it then stops part-way, a second event in its own transaction says so and
    how many rows had gone (AUDIT_EXPORT_FAILED for an error, then the error goes
    on; AUDIT_EXPORT_INTERRUPTED when the server closes the download early). Only
    a process killed mid-stream leaves the first event without its sequel.

    With a read replica (DATABASE_REPLICA_URL) the rows are counted and streamed
    from it, once it has replayed the checkpoint they are frozen at
    (`export_source`); the event's data says where they came from. A replica
    that fails while counting leaves the export on the primary before the event
    is written; one that fails before the first row has gone, the stream goes
    on from the primary (`_primary_before_first_row`: the rows are the same,
    frozen at the checkpoint). After that a half-sent file cannot be restarted:
    the stream stops as any failed stream does, and a CSV then ends with a line
    that says it is incomplete (`_watched`), so that a client whose download
    looks finished (HTTP/1.0, a proxy that buffers) cannot take it for the
    whole export.
    """
    frozen_at, source = export_source()
    freeze = selectors.covered_by(frozen_at.positions)
    number = frozen_at.checkpoint.number

    def content(alias: str) -> tuple[int, Iterator[tuple[bytes, int]]]:
        chosen = events.using(alias)
        if not fhir:
            blocks = export_rows(chosen, freeze=freeze, time_zone=time_zone)
        rows = export_count(chosen, freeze=freeze)
        if fhir:
            blocks = export_fhir(chosen, freeze=freeze, total=rows, checkpoint=number)
        return rows, blocks

    def stream(alias: str, rows: int) -> Iterator[tuple[bytes, int]]:
        chosen = events.using(alias)
        if fhir:
            return export_fhir(chosen, freeze=freeze, total=rows, checkpoint=number)
        return export_rows(chosen, freeze=freeze, time_zone=time_zone)

    try:
        rows, blocks = content(source.alias)
    except DatabaseError:
        if source.alias == DEFAULT_DB_ALIAS:
            raise
        logger.warning("read replica failed while counting an export", exc_info=True)
        connections[source.alias].close()
        source = ReadSource(DEFAULT_DB_ALIAS, "the replica failed while counting the rows")
        rows, blocks = content(source.alias)
    filed = about.filed() if about is not None else {}
    with transaction.atomic():
        started = audit_event_record(
            kind=kinds.AUDIT_EXPORTED_FHIR if fhir else kinds.AUDIT_EXPORTED,
            acting_user=acting_user,
            account=acting_user,
            ip=ip,
            **filed,
            params={"rows": rows, "filters": filters},
            data={**filter_data, "rows": rows, "checkpoint": number, **export_source_data(source)},
        )
    # The request's id and User-Agent, for an event written after the view returned.
    request = contextvars.copy_context()

    def record_after(kind: EventKind, *, params: dict, data: dict, what: str) -> None:
        """Record an event about the export once its rows have begun to go out; a failure
        to record it is logged, never raised over the export's own outcome."""
        try:
            with transaction.atomic():
                request.run(
                    audit_event_record,
                    kind=kind,
                    acting_user=acting_user,
                    account=acting_user,
                    ip=ip,
                    **filed,
                    params={**params, "rows": rows},
                    data={**data, "rows": rows, "export_event": started.pk},
                )
        except Exception:
            logger.exception("could not record that audit export %s %s", started.pk, what)

    def stopped(kind: EventKind, sent: int) -> None:
        record_after(kind, params={"sent": sent}, data={"sent": sent}, what="stopped")

    def moved_to_primary(reason: str) -> None:
        record_after(
            kinds.AUDIT_EXPORT_SOURCE_CHANGED,
            params={},
            data={"source": "primary", "source_fallback": reason},
            what="moved to the primary",
        )

    if source.alias != DEFAULT_DB_ALIAS:
        blocks = _primary_before_first_row(
            blocks, source.alias, lambda: stream(DEFAULT_DB_ALIAS, rows), moved_to_primary
        )
    incomplete = None if fhir else _csv_incomplete(rows)
    return AuditExport(rows, number, _watched(blocks, stopped, incomplete))


def export_source() -> tuple[checkpoints.Frozen, ReadSource]:
    """Freeze an export at a signed checkpoint; return it and the database to read it from.

    The checkpoint (every chain's head, now) is what the export streams, even while
    others write, and what an outside auditor verifies it against. It commits on
    its own, in a short transaction: checkpoint writers take turns, so it must not
    stay open while the replica catches up. Then, with a read replica, wait (at
    most DATABASE_REPLICA_WAIT_SECONDS) until the replica has replayed every
    commit up to now, the checkpoint's events included, so that it holds exactly
    the rows the checkpoint covers; the primary otherwise, with the reason. The
    wait comes before the export's event, so the event itself can say which
    database its rows come from: the log is append-only, and an event written
    first could not be corrected afterwards.
    """
    frozen_at = checkpoints.audit_checkpoint_create()
    return frozen_at, replica_after_writes()


def export_source_data(source: ReadSource) -> dict[str, Scalar]:
    """The event's account of where the rows came from (nothing without a replica)."""
    if replica_alias() is None:
        return {}
    data: dict[str, Scalar] = {"source": source.name}
    if source.fallback:
        data["source_fallback"] = source.fallback
    return data


def _primary_before_first_row(
    blocks: Generator[tuple[bytes, int]],
    alias: str,
    from_primary: Callable[[], Generator[tuple[bytes, int]]],
    moved: Callable[[str], None],
) -> Iterator[tuple[bytes, int]]:
    """Yield the replica's blocks; if it fails before any row was yielded, the primary's.

    Until the first row only the CSV's header has gone (a FHIR Bundle's opening
    comes with its first rows), the same bytes from either database: the
    primary's stream goes on after as many blocks as were already handed on,
    and the rows, frozen at the export's checkpoint, are those the event
    counted. The export's event, written before and append-only, names the
    replica: `moved(reason)` records that the rows came from the primary
    (AUDIT_EXPORT_SOURCE_CHANGED), and a warning in the server's log says so
    too. Once a row has gone the error goes on (`_watched`).
    """
    handed = sent = 0
    try:
        for block, rows in blocks:
            handed += 1
            sent += rows
            yield block, rows
        return
    except (DatabaseError, connections[alias].Database.Error) as error:
        if sent:
            raise
        failure = error
    finally:
        blocks.close()
    logger.warning(
        "read replica %r failed before an export's first row, streaming it from the primary: %s",
        alias,
        failure,
    )
    connections[alias].close()
    again = from_primary()
    for _ in range(handed):
        next(again)  # what was already sent: the header
    # Recorded once the primary has answered with the next block (rows, or the end):
    # if it fails too, the stream fails as any other, and nothing claims it served.
    first = next(again, None)
    moved("the replica failed before the first row")
    if first is not None:
        yield first
        yield from again


def _csv_incomplete(rows: int) -> Callable[[int], bytes]:
    """Return the CSV's last line after a failure: that the file is not the whole export."""

    def line(sent: int) -> bytes:
        out = io.StringIO()
        csv.writer(out).writerow(
            [
                f"EXPORT INCOMPLETE: it stopped after {sent} of {rows} events; this file is not "
                "the whole export (the audit log records the failure: audit.export_failed)."
            ]
        )
        return out.getvalue().encode()

    return line


def _watched(
    blocks: Iterator[tuple[bytes, int]],
    stopped,
    incomplete: Callable[[int], bytes] | None = None,
) -> Iterator[bytes]:
    """Yield the blocks; if they stop before the end, call `stopped(kind, rows sent)`.

    After an error, `incomplete(rows sent)`, when given, is the content's last
    block before the error goes on: the web server can then only cut the
    connection, which a client told the length by chunked encoding sees as a
    failed download, but one told nothing (HTTP/1.0) takes for the end.
    """
    sent = 0
    try:
        for block, rows in blocks:
            sent += rows
            yield block
    except GeneratorExit:
        # The server closed the response (the client went away): end the query
        # first, so the event is written on a connection that is free again.
        try:
            blocks.close()
        finally:
            stopped(kinds.AUDIT_EXPORT_INTERRUPTED, sent)
        raise
    except Exception:
        stopped(kinds.AUDIT_EXPORT_FAILED, sent)
        if incomplete is not None:
            yield incomplete(sent)
        raise


def audit_history_view_record(
    *,
    acting_user: User,
    ip: str | None,
    account: User | None = None,
    patient: AuditedPatient | None = None,
    rows: int,
    period: str,
    include_actions: bool = False,
) -> AuditEvent:
    """Record who read whose history ("who touched this account or patient"), for which
    period, and how many events it showed: an account's, or else a patient's. One event,
    written in its own transaction (or the caller's)."""
    if not can_review_audit_subjects(acting_user):
        raise PermissionDenied("only compliance officers and platform auditors read histories")
    params = {"rows": rows, "period": period}
    if account is not None:
        return audit_event_record(
            kind=kinds.AUDIT_ACCOUNT_HISTORY_VIEWED,
            acting_user=acting_user,
            account=account,
            ip=ip,
            params=params,
            data={"subject_account_id": account.pk, "include_actions": include_actions},
        )
    return audit_event_record(
        kind=kinds.AUDIT_PATIENT_HISTORY_VIEWED,
        acting_user=acting_user,
        practice=patient.practice,
        patient_id=patient.patient_id,
        patient_name=patient.patient_name,
        ip=ip,
        params={**params, "patient": patient.patient_name},
        data={"patient_id": patient.patient_id},
    )
