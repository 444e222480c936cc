"""Partitions created ahead, and months of the log archived to signed files (PostgreSQL).

`audit_archive_month` (`manage.py audit_archive --month YYYY-MM --to FILE`) is
the only way events leave the database, in this order:

1. Refuse, changing nothing, a month younger than AUDIT_RETENTION_YEARS, one
   already archived, a file that exists, a month whose chains still hold older
   events (months go oldest first), one no signed checkpoint covers yet, or
   one a syslog destination in the database has not received all of (unless
   told to skip those events: `skip_undelivered`, recorded as
   AUDIT_STREAM_SKIPPED for each destination).
2. Write the file: an evidence file (audit/evidence.py, audit/offline.py) for
   that month, against the first checkpoint signed after the month ended
   that signed every chain past the month's last event; then read it back
   and verify it with the public keys only. Recorded in the log
   (AUDIT_ARCHIVE_WRITTEN).
3. In one transaction: lock the chains concerned, check the month still
   holds what the file holds, move each chain's start past its archived
   events (the boundary: the next live event links to the last archived
   one's hash), sign a checkpoint of the new starts, and keep the boundary in
   AuditArchive and AuditArchiveChain. Then, in another, delete the
   dashboard's counters of the month's UTC days and drop the month's
   partition, and record AUDIT_ARCHIVED with both (see `_drop` for why two).

`audit_verify` then walks each live chain from its boundary and checks the
boundary against the archive tables and the checkpoint that signed it.
"""

import hashlib
import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from audit import checkpoints, hashing, kinds, offline, partitions, rollup
from audit.models import (
    AuditArchive,
    AuditArchiveChain,
    AuditChain,
    AuditCheckpoint,
    AuditCheckpointLeaf,
    AuditEvent,
)
from audit.services import audit_event_record
from outbox import audit_stream

BATCH = 5000
# What an archived event keeps: every column, so it can be restored as it was.
ARCHIVE_COLUMNS = (
    "id",
    "prev_hash",
    "row_hash",
    *hashing.EVENT_FIELDS,
    "actor_id",
    "account_id",
    "key_id",
    "mac",
)


class ArchiveRefused(Exception):
    """The month cannot be archived (yet); nothing was changed."""


def audit_partitions_create(*, now: datetime | None = None) -> list[partitions.Created]:
    """Create the missing partitions up to AUDIT_PARTITION_MONTHS_AHEAD and record each."""
    created = partitions.audit_partitions_ensure(now=now)
    for item in created:
        # After the partition's own transaction: the event table's lock is not held
        # while the platform chain is locked (the other order would deadlock writers).
        with transaction.atomic():
            month = f"{item.month:%Y-%m}"
            audit_event_record(
                kind=kinds.AUDIT_PARTITION_CREATED,
                acting_user=None,
                ip=None,
                params={"month": month, "moved": item.moved},
                data={"month": month, "moved": item.moved, "partition": item.name},
            )
    return created


def parse_month(text: str) -> date:
    try:
        parsed = datetime.strptime(text, "%Y-%m")
    except (TypeError, ValueError):
        raise ArchiveRefused(f"--month must be a month as YYYY-MM, not {text!r}.") from None
    if (parsed.year, parsed.month) == (9999, 12):  # its end, the next month, has no date
        raise ArchiveRefused(f"--month must be before 9999-12, not {text!r}.")
    return date(parsed.year, parsed.month, 1)


def archivable_from(month: date) -> datetime:
    """When `month` reaches the retention period: its last instant plus the years kept."""
    years = settings.AUDIT_RETENTION_YEARS
    _, end = partitions.bounds(month)
    return end.replace(year=end.year + years)  # the 1st of a month: no 29 February


def _require_partitions() -> None:
    if not partitions.supported():
        raise ArchiveRefused(
            "Archiving needs PostgreSQL, whose monthly partitions are dropped whole; on SQLite "
            "the log stays in one table and nothing is archived (docs/audit.md)."
        )


def archive_due_month(*, now: datetime | None = None) -> date | None:
    """The oldest month of the log, if the retention period lets it go.

    Months go oldest first, so this is the one month `audit_archive_month` may take
    now; a month refused stays the due one until it is archived.
    """
    _require_partitions()
    now = now or timezone.now()
    with connection.cursor() as cursor:
        months = partitions.existing_months(cursor)
    oldest = AuditEvent.objects.aggregate(first=Min("occurred_at"))["first"]
    if oldest is not None:  # its month may still sit in the default partition
        months.add(partitions.first_of(oldest.astimezone(UTC)))
    if not months or archivable_from(min(months)) > now:
        return None
    return min(months)


@dataclass(frozen=True)
class Segment:
    """One chain's events in the month: seq `first` to `last`."""

    chain: AuditChain
    first: int
    last: int
    count: int


@dataclass(frozen=True)
class Archived:
    month: date
    path: Path
    events: int
    chains: int
    checkpoint: int
    sha256: str
    boundary_checkpoint: int


def audit_archive_month(
    *, month: date, path: Path, now: datetime | None = None, skip_undelivered: bool = False
) -> Archived:
    """Write `month`'s events to `path`, verify the file, then drop the month's partition.

    A month whose events a syslog destination has not all received is refused:
    once dropped, they could never be sent. Every syslog destination in the
    database counts, whatever AUDIT_SYSLOG_URL says in this process. With
    `skip_undelivered` it goes anyway, and the events each destination never
    got are named in the log (AUDIT_STREAM_SKIPPED, itself sent on) and on the
    destination, whose cursors move past them.
    """
    _require_partitions()
    now = now or timezone.now()
    label = f"{month:%Y-%m}"
    if now < archivable_from(month):
        raise ArchiveRefused(
            f"{label} is younger than the retention period ({settings.AUDIT_RETENTION_YEARS} "
            f"years, AUDIT_RETENTION_YEARS): it may be archived from "
            f"{archivable_from(month):%Y-%m-%d}. Nothing was changed."
        )
    done = AuditArchive.objects.filter(month=month).first()
    if done is not None:
        if partitions.partition_of(month) is None:
            raise ArchiveRefused(f"{label} is already archived.")
        drop_archived_partition(done)  # the drop that failed last time
        return Archived(
            month,
            Path(done.file_name),
            done.events,
            done.chains.count(),
            done.evidence_checkpoint,
            done.file_sha256,
            done.boundary_checkpoint,
        )
    if path.exists():
        raise ArchiveRefused(f"{path} exists; an archive never overwrites a file.")
    # No month leaves a log that contradicts what was signed of it: the signer's check
    # (CheckpointRefused) runs before anything is written.
    checkpoints.audit_checkpoint_check()
    segments = _segments(month)
    checkpoint = _covering_checkpoint(segments, label, ended=partitions.bounds(month)[1])
    missing = audit_stream.undelivered(_stretches(segments))
    if missing and not skip_undelivered:
        raise ArchiveRefused(_undelivered_message(label, missing))

    digest, events = _write(path, month, segments, checkpoint)
    try:
        _verify_file(path, month, events)
    except ArchiveRefused:
        path.unlink()
        raise
    params = {
        "month": label,
        "events": events,
        "chains": len(segments),
        "checkpoint": checkpoint.number,
    }
    try:
        with transaction.atomic():
            audit_event_record(
                kind=kinds.AUDIT_ARCHIVE_WRITTEN,
                acting_user=None,
                ip=None,
                params=params,
                data={**params, "sha256": digest},
            )
    except BaseException:
        # No copy of a month of the log leaves the database unrecorded.
        path.unlink(missing_ok=True)
        raise
    boundary = _drop(month, segments, path, digest, events, checkpoint, skip_undelivered)
    return Archived(month, path, events, len(segments), checkpoint.number, digest, boundary)


def _stretches(segments: list[Segment]) -> dict[int, tuple[int, int]]:
    return {segment.chain.pk: (segment.first, segment.last) for segment in segments}


def _by_destination(
    missing: list[audit_stream.Undelivered],
) -> dict[str, list[audit_stream.Undelivered]]:
    grouped: dict[str, list[audit_stream.Undelivered]] = {}
    for item in missing:
        grouped.setdefault(item.destination, []).append(item)
    return grouped


def _undelivered_message(label: str, missing: list[audit_stream.Undelivered]) -> str:
    lacks = []
    for name, items in _by_destination(missing).items():
        events = sum(item.events for item in items)
        shown = ", ".join(str(item) for item in items[:5])
        more = f" and {len(items) - 5} more chains" if len(items) > 5 else ""
        lacks.append(
            f"The syslog destination {name!r} has not received {events} "
            f"{'event' if events == 1 else 'events'} of {label} "
            f"({shown}{more})"
        )
    return (
        "; ".join(lacks) + ": once the month is dropped they can never be sent. Let "
        "the outbox worker send them first (manage.py outbox_worker --once; its errors show "
        "on the Outbox page), or pass --skip-undelivered to archive the month without "
        "them, which the audit log (audit.stream_skipped) and each destination record. "
        "Nothing was changed."
    )


def _skip_undelivered(label: str, missing: list[audit_stream.Undelivered]) -> None:
    """Record, and move each destination past, the events it will never receive."""
    for name, items in _by_destination(missing).items():
        events = sum(item.events for item in items)
        skipped = "; ".join(str(item) for item in items)
        params = {"destination": name, "events": events, "month": label}
        audit_event_record(
            kind=kinds.AUDIT_STREAM_SKIPPED,
            acting_user=None,
            ip=None,
            params=params,
            data={**params, "skipped": skipped},
        )
        audit_stream.skip_undelivered(
            items,
            reason=f"{events} events of {label} archived before they were sent "
            f"(audit_archive --skip-undelivered): {skipped}",
        )


def _segments(month: date) -> list[Segment]:
    """Each chain's events in the month, checked to be the chain's oldest, without gaps."""
    start, end = partitions.bounds(month)
    ranges = (
        AuditEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        .values("chain_id")
        .annotate(
            first=Min("seq"),
            last=Max("seq"),
            count=Count("id"),
        )
        .order_by("chain_id")
    )
    chains = AuditChain.objects.in_bulk([row["chain_id"] for row in ranges])
    segments = []
    for row in ranges:
        chain = chains[row["chain_id"]]
        segment = Segment(chain, row["first"], row["last"], row["count"])
        if segment.first != chain.start_seq:
            raise ArchiveRefused(
                f"Chain {chain.pk} still holds events before {month:%Y-%m} (from seq "
                f"{chain.start_seq}; the month starts at seq {segment.first}): archive the "
                "older months first."
            )
        if segment.count != segment.last - segment.first + 1:
            raise ArchiveRefused(
                f"Chain {chain.pk}: the events of {month:%Y-%m} (seq {segment.first} to "
                f"{segment.last}) are not all in that month; run audit_verify."
            )
        segments.append(segment)
    return segments


def _covering_checkpoint(
    segments: list[Segment], label: str, *, ended: datetime
) -> AuditCheckpoint:
    """The first checkpoint signed once the month had `ended` that signed every chain at or
    past its last archived event.

    Signed after the month, its heads lie past every event of the month, so a chain
    that goes on shows its first event after the month (the file's "next") and one
    that does not ends at its head: neither can leave out the month's last events.
    """
    first_after = (
        AuditCheckpoint.objects.filter(created_at__gte=ended)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    if first_after is None:
        raise ArchiveRefused(
            f"No checkpoint was signed after {label} ended yet: run audit_checkpoint first."
        )
    needed = [first_after]
    for segment in segments:
        first = (
            AuditCheckpointLeaf.objects.filter(chain_id=segment.chain.pk, seq__gte=segment.last)
            .order_by("checkpoint_id")
            .values_list("checkpoint_id", flat=True)
            .first()
        )
        if first is None:
            raise ArchiveRefused(
                f"No signed checkpoint covers the events of {label} in chain {segment.chain.pk} "
                "yet: run audit_checkpoint first."
            )
        needed.append(first)
    return AuditCheckpoint.objects.get(pk=max(needed))


def _json(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _write(path: Path, month: date, segments: list[Segment], checkpoint: AuditCheckpoint):
    leaves = checkpoints.checkpoint_leaves(checkpoint.number)
    ordered = sorted(leaves)
    position = {chain_id: index for index, chain_id in enumerate(ordered)}
    tree = hashing.merkle_levels([hashing.leaf_bytes(leaves[c]) for c in ordered])
    sha, events = hashlib.sha256(), 0
    try:
        # A new file only, readable by its owner only: it holds the month's events.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise ArchiveRefused(f"Cannot write {path}: {error.strerror or error}.") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:

            def put(record: dict) -> None:
                line = _json(record)
                sha.update(line)
                handle.write(line)

            put(
                {
                    "format": offline.FORMAT,
                    "generated_at": hashing.timestamp(timezone.now()),
                    "practice_id": None,
                    "archive": {"month": f"{month:%Y-%m}"},
                    "checkpoint": checkpoints.file_record(checkpoint),
                }
            )
            for segment in segments:
                leaf = leaves[segment.chain.pk]
                index = position[segment.chain.pk]
                put(
                    {
                        "chain": leaf,
                        "index": index,
                        "path": hashing.merkle_path(tree, index),
                        "from": {"seq": segment.first, "prev_hash": segment.chain.start_hash},
                    }
                )
                for row in _rows(segment.chain.pk, segment.first, segment.last, ARCHIVE_COLUMNS):
                    row["occurred_at"] = hashing.timestamp(row["occurred_at"])
                    events += 1
                    put({"event": row})
                links = _rows(segment.chain.pk, segment.last + 1, leaf["seq"], _LINK_COLUMNS)
                for row in itertools.islice(links, 1):
                    # The chain's first event after the month, whole: its time shows that
                    # the month ended before it, so none of the month's events can hide
                    # among the links, which show no time.
                    put({"next": row})
                for row in links:
                    put(
                        {
                            "after": {
                                "seq": row["seq"],
                                "practice_id": row["practice_id"],
                                "content": hashing.event_content(row),
                                "prev_hash": row["prev_hash"],
                                "row_hash": row["row_hash"],
                            }
                        }
                    )
            put({"end": {"chains": len(segments), "events": events}})
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return sha.hexdigest(), events


_LINK_COLUMNS = ("prev_hash", "row_hash", *hashing.EVENT_FIELDS)


# Read as the hashes and the file spell them: the time as hashing.timestamp() writes it,
# the IP without its prefix length.
_SELECT = {
    "occurred_at": """to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
    "ip": "host(ip)",
}


def _rows(chain_id: int, first: int, last: int, columns) -> Iterator[dict]:
    """The chain's events `first` to `last` in seq order, in batches, as plain values.

    One raw query per batch, since this reads a whole month of events; the time
    comes as its hashed text form.
    """
    fields = ", ".join(_SELECT.get(name, name) for name in columns)
    sql = (
        f"SELECT {fields} FROM audit_auditevent WHERE chain_id = %s AND seq > %s "  # noqa: S608  # nosec B608  (fixed column names)
        f"AND seq <= %s ORDER BY seq LIMIT {BATCH}"
    )
    data = columns.index("data")
    after = first - 1
    with connection.cursor() as cursor:
        while after < last:
            cursor.execute(sql, [chain_id, after, last])
            batch = cursor.fetchall()
            if not batch:
                return
            for values in batch:
                row = dict(zip(columns, values, strict=True))
                if isinstance(values[data], str):
                    row["data"] = json.loads(values[data])
                yield row
            after = batch[-1][columns.index("seq")]


def _verify_file(path: Path, month: date, events: int) -> None:
    with path.open("rb") as handle:
        report = offline.verify_evidence(handle, checkpoints.trusted_public_keys())
    if report.problem is not None:
        raise ArchiveRefused(f"The archive written does not verify ({report.problem}); removed.")
    if report.month != f"{month:%Y-%m}" or report.events != events:
        raise ArchiveRefused("The archive written does not hold the month's events; removed.")


def _drop(
    month: date,
    segments: list[Segment],
    path: Path,
    digest: str,
    events: int,
    checkpoint: AuditCheckpoint,
    skip_undelivered: bool = False,
) -> int:
    """Move the chains' starts past the month and sign them; then drop the partition.

    With `skip_undelivered`, what the syslog destinations have still not received
    of the month (the worker may have sent more since the check) is recorded
    first, in the same transaction as the boundary: both happen or neither.

    Two transactions, so that no step holds the event table while it waits for a
    chain (writers hold their chain while they wait for the event table): first
    the boundary (the chains' rows, the archive's rows, a checkpoint), then the
    partition's DROP. Between the two the month's rows lie before every chain's
    start, where verification no longer reads; if the DROP fails, running the
    command again drops it. DROP TABLE rather than DETACH then DROP: on
    PostgreSQL 15, DETACH adds foreign-key triggers to the chain and user
    tables, which waits for their writers while they wait for the event table.
    """
    label = f"{month:%Y-%m}"
    start, end = partitions.bounds(month)
    name = partitions.partition_of(month) or partitions.partition_create(month).name
    with transaction.atomic(), connection.cursor() as cursor:
        missing = audit_stream.undelivered(_stretches(segments)) if skip_undelivered else []
        if missing:
            # Before the month's chains are locked: the event takes the platform
            # chain, which every lock of all chains takes first (the lowest id).
            _skip_undelivered(label, missing)
        ids = [segment.chain.pk for segment in segments]
        list(AuditChain.objects.filter(pk__in=ids).order_by("pk").select_for_update())
        cursor.execute(
            f"SELECT chain_id, count(*), min(seq), max(seq) FROM {name} GROUP BY chain_id "  # noqa: S608  # nosec B608  (partition name built from the month)
            "ORDER BY chain_id"
        )
        held = [tuple(row) for row in cursor.fetchall()]
        if held != [(s.chain.pk, s.count, s.first, s.last) for s in segments]:
            raise ArchiveRefused(
                f"Events of {label} changed while the archive was written; run it again."
            )
        lasts = _last_events(segments, start, end)
        moved = {}
        for segment in segments:
            last = lasts[segment.chain.pk]
            AuditChain.objects.filter(pk=segment.chain.pk).update(
                start_seq=segment.last + 1, start_hash=last["row_hash"], start_mac=last["mac"]
            )
            moved[segment.chain.pk] = (segment.last + 1, last["row_hash"])
        signed = checkpoints.audit_checkpoint_create(starts_moved=moved)
        archive = AuditArchive.objects.create(
            month=month,
            archived_at=timezone.now(),
            file_name=str(path),
            file_sha256=digest,
            events=events,
            evidence_checkpoint=checkpoint.number,
            boundary_checkpoint=signed.checkpoint.number,
        )
        AuditArchiveChain.objects.bulk_create(
            AuditArchiveChain(
                archive=archive,
                chain=segment.chain,
                first_seq=segment.first,
                last_seq=segment.last,
                last_hash=lasts[segment.chain.pk]["row_hash"],
                last_mac=lasts[segment.chain.pk]["mac"],
            )
            for segment in segments
        )
    drop_archived_partition(archive)
    return signed.checkpoint.number


def drop_archived_partition(archive: AuditArchive) -> None:
    """Record that a month whose boundary is recorded leaves the database; then drop its
    partition and its counters.

    The event first, in a transaction of its own: if it cannot be written, nothing
    is dropped (fail closed); if the drop then fails, running the command again
    drops the partition, and records nothing twice. Not in the drop's transaction:
    that one holds the event table, and the event would wait for the platform
    chain while the chain's writers wait for the table.

    The dashboard's counters of the month's UTC days (`audit.rollup`) go in the
    same transaction as the partition, so the dashboard never counts events the
    report no longer lists, nor loses counts of events still there. They go
    before the event table is locked: a month of counters takes a while to
    delete, and no writer touches them, while every writer waits for that lock.
    No writer adds to an archived month's counters either, so those the event
    counts are those the drop removes.
    """
    label = f"{archive.month:%Y-%m}"
    name = partitions.partition_of(archive.month)
    start, end = partitions.bounds(archive.month)
    if not AuditEvent.objects.filter(kind=kinds.AUDIT_ARCHIVED.code, data__month=label).exists():
        held = rollup.counters_held(start=start, end=end)
        with transaction.atomic():
            audit_event_record(
                kind=kinds.AUDIT_ARCHIVED,
                acting_user=None,
                ip=None,
                params={"month": label, "events": archive.events, "counters": sum(held)},
                data={
                    "month": label,
                    "events": archive.events,
                    "sha256": archive.file_sha256,
                    "checkpoint": archive.boundary_checkpoint,
                    "counters_removed": held.quarter_hours,
                    "day_counters_removed": held.days,
                },
            )
    if name is None:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as partitions.partition_create
        cursor.execute(f"SET LOCAL lock_timeout = '{partitions.LOCK_TIMEOUT}'")
        rollup.counters_remove(start=start, end=end)
        cursor.execute(f"LOCK TABLE {partitions.TABLE} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608  # nosec B608
        if cursor.fetchone()[0] != archive.events:
            raise ArchiveRefused(f"The partition of {label} holds other events than its archive.")
        cursor.execute(f"DROP TABLE {name}")


def _last_events(segments: list[Segment], start: datetime, end: datetime) -> dict[int, dict]:
    """Each chain's last archived event: the hashes its first live event links to."""
    if not segments:
        return {}
    match = Q()
    for segment in segments:
        match |= Q(chain_id=segment.chain.pk, seq=segment.last)
    rows = AuditEvent.objects.filter(match, occurred_at__gte=start, occurred_at__lt=end)
    return {row["chain_id"]: row for row in rows.values("chain_id", "row_hash", "mac")}
