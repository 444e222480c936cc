"""Monthly partitions at work (PostgreSQL), run by bench/run.py with BENCH_DATABASE_URL set.

    python -m bench.partitions

Needs a database of its own, freshly migrated (bench/run.py makes one,
`<name>_bench_partitions`, and drops it first: the archive needs chains whose
oldest events are the month archived). Prints JSON with:

- archive: BENCH_ARCHIVE_EVENTS (default 200,000) events of one month twelve
  years ago in four practice chains (valid chains, written with COPY), a few
  in the next month, a checkpoint; then `audit_archive_month` of that month:
  rows/s from the start to the dropped partition (writing the file, reading it
  back to verify it, the boundary, the drop), and the file's size.
- partition under writers: 16 writer processes, each on its own practice,
  record events for BENCH_WRITE_SECONDS (default 5); halfway, the main process
  creates a partition 40 months ahead (the attach path) and then one whose
  month already has an event in the default partition (the path that moves
  rows). Events/s, each creation's time, and failed writes (must be 0).
"""

import json
import multiprocessing
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
import django

django.setup()

import time_machine  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.services import practice_create  # noqa: E402
from audit import chain, hashing, kinds, partitions  # noqa: E402
from audit.archive import audit_archive_month  # noqa: E402
from audit.checkpoints import audit_checkpoint_create  # noqa: E402
from audit.models import AuditChain  # noqa: E402
from audit.services import EVENT_COLUMNS, audit_event_record  # noqa: E402
from audit.verification import audit_log_verify  # noqa: E402
from bench.writes import writers  # noqa: E402

ARCHIVE_EVENTS = int(os.environ.get("BENCH_ARCHIVE_EVENTS", "200000"))
ROUND_SECONDS = float(os.environ.get("BENCH_WRITE_SECONDS", "5"))
WRITERS = 16


def emit(result: dict) -> None:
    print(json.dumps(result), flush=True)


def old_month() -> datetime:
    now = timezone.now()
    return datetime(now.year - 12, now.month, 1, tzinfo=UTC)


def generate(month: datetime, total: int) -> int:
    """Four practices created at the start of `month` (an event each), `total` events
    spread over the month in their chains, then five in the next; return the month's
    count."""
    partitions.partition_create(month.date())
    with time_machine.travel(month, tick=False):
        practices = [
            practice_create(name=f"Archive Bench {i}", group_id=920000 + i, acting_user=None)
            for i in range(4)
        ]
    chains = {p.pk: AuditChain.objects.get(kind="practice", practice=p) for p in practices}
    heads = {p.pk: (chains[p.pk].seq, chains[p.pk].row_hash) for p in practices}
    key_id, key = chain.signing_key()
    span = (partitions.bounds(month.date())[1] - month) - timedelta(minutes=1)
    columns = list(EVENT_COLUMNS)
    rows = []
    kind = kinds.SIGN_IN_FAILED_UNKNOWN
    for n in range(total + 5):
        practice = practices[n % 4]
        seq, prev = heads[practice.pk]
        when = month + span * n / total if n < total else month + span + timedelta(days=2)
        row = {
            "chain_id": chains[practice.pk].pk,
            "seq": seq + 1,
            "occurred_at": when,
            "actor_ref": None,
            "actor_label": "",
            "account_ref": None,
            "account_label": "",
            "practice_id": practice.pk,
            "patient_id": "",
            "patient_name": "",
            "kind": kind.code,
            "type": kind.type.value,
            "action": kind.action.value,
            "details": kind.details({"account": f"user{n}"}),
            "ip": "198.51.100.7",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
            "request_id": f"{n:032x}",
            "data": {},
        }
        digest = hashing.row_hash(row, prev_hash=prev)
        stored = {
            **row,
            "actor_id": None,
            "account_id": None,
            "data": "{}",
            "key_id": key_id,
            "prev_hash": prev,
            "row_hash": digest,
            "mac": chain.event_mac(digest, key=key),
        }
        rows.append(tuple(stored[name] for name in columns))
        heads[practice.pk] = (seq + 1, digest)
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY audit_auditevent ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        for practice_id, (seq, digest) in heads.items():
            AuditChain.objects.filter(pk=chains[practice_id].pk).update(seq=seq, row_hash=digest)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")
    audit_checkpoint_create()
    return total + len(practices)


def archive() -> dict:
    month = old_month()
    events = generate(month, ARCHIVE_EVENTS)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "archive.jsonl"
        started = time.perf_counter()
        done = audit_archive_month(month=month.date(), path=path)
        seconds = time.perf_counter() - started
        size = path.stat().st_size
    if done.events != events:
        raise SystemExit(f"archived {done.events} events of {events}")
    return {
        "month": f"{month:%Y-%m}",
        "events": events,
        "seconds": round(seconds, 2),
        "rows_per_s": round(events / seconds),
        "file_mb": round(size / 2**20, 1),
        "verified_after": audit_log_verify().problem is None,
    }


def _writer(user_pk: int, ready, go, deadline, counts, failures, slot: int) -> None:
    connections.close_all()
    user = User.objects.select_related("provider_profile").get(pk=user_pk)
    ready.wait()
    go.wait()
    done = failed = 0
    while time.time() < deadline.value:
        try:
            with transaction.atomic():
                audit_event_record(
                    kind=kinds.PROFILE_UPDATED, acting_user=user, account=user, ip=None
                )
            done += 1
        except Exception:  # counted: the figure is how many failed
            failed += 1
    counts[slot], failures[slot] = done, failed
    connections.close_all()


def partition_under_writers() -> dict:
    users = writers(WRITERS)
    now = timezone.now()
    ahead = partitions.add_months(partitions.first_of(now), 40)
    early = partitions.add_months(partitions.first_of(now), 41)
    user = User.objects.get(pk=users[0])
    with time_machine.travel(datetime(early.year, early.month, 2, tzinfo=UTC), tick=False):
        audit_event_record(kind=kinds.PROFILE_UPDATED, acting_user=user, account=user, ip=None)
    ctx = multiprocessing.get_context("fork")
    connections.close_all()
    ready, go = ctx.Barrier(WRITERS + 1), ctx.Barrier(WRITERS + 1)
    deadline = ctx.Value("d", 0.0)
    counts, failures = ctx.Array("l", WRITERS), ctx.Array("l", WRITERS)
    processes = [
        ctx.Process(target=_writer, args=(pk, ready, go, deadline, counts, failures, slot))
        for slot, pk in enumerate(users)
    ]
    for process in processes:
        process.start()
    ready.wait()
    deadline.value = time.time() + ROUND_SECONDS
    go.wait()
    time.sleep(ROUND_SECONDS / 3)
    started = time.perf_counter()
    partitions.partition_create(ahead)
    attach_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    moved = partitions.partition_create(early).moved
    move_ms = (time.perf_counter() - started) * 1000
    for process in processes:
        process.join()
    connections.close_all()
    return {
        "writers": WRITERS,
        "events_per_s": round(sum(counts) / ROUND_SECONDS, 1),
        "failed_writes": sum(failures),
        "create_ms": round(attach_ms, 1),
        "create_moving_rows_ms": round(move_ms, 1),
        "rows_moved": moved,
        "verified_after": audit_log_verify().problem is None,
    }


def main() -> None:
    if connection.vendor != "postgresql":
        emit({"skipped": "partitions are PostgreSQL's"})
        return
    emit({"archive": archive(), "partition_under_writers": partition_under_writers()})


if __name__ == "__main__":
    main()
