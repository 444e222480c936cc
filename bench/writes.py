"""Audit writes as production commits them, run by bench/run.py with BENCH_DATABASE_URL set.

    python -m bench.writes

Each audited action is `audit_event_record` in its own transaction, committed.
Configurations take turns, BENCH_WRITE_ROUNDS (3) times over; medians are printed
with each round's ratio.
Prints what one caller waits for that (p50, with the commit), what it adds over
an empty transaction, and events/s for 1, 4 and 16 writer processes each on
its own practice and for 16 on one practice: on loopback, and (PostgreSQL)
again through bench/proxy.py adding BENCH_DELAY_MS (default 0.5) each way, as a
network between app servers and the database would. Then a checkpoint, and
every chain and checkpoint is verified.

Beside them, on PostgreSQL, the lock pattern alone (`_pattern_writer`): the same
four round trips (begin, lock a head row, insert and move the head in one
statement, commit) on two bare tables of a schema of their own, with none of the
project's work around them, as the issue that set the targets measured it outside
the project. Its ratio of 16 writers on 16 heads to 1 writer is what this machine
allows any writer that uses the pattern, measured in the same rounds as the
project's own.

Durable commits are what production runs: the output says whether the server
had `fsync` and `synchronous_commit` on (bench/README.md shows how to start one
that does); figures from a server without them are not write figures.
"""

import hashlib
import json
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
import django

django.setup()

from django.db import connection, connections, transaction  # noqa: E402

from accounts.models import Practice, User  # noqa: E402
from accounts.roles import Role  # noqa: E402
from accounts.services import practice_create, user_create  # noqa: E402
from audit import kinds  # noqa: E402
from audit.checkpoints import audit_checkpoint_create  # noqa: E402
from audit.services import audit_event_record  # noqa: E402
from audit.verification import audit_log_verify  # noqa: E402
from bench.proxy import delayed_database  # noqa: E402

ROUND_SECONDS = float(os.environ.get("BENCH_WRITE_SECONDS", "5"))
DELAY_MS = float(os.environ.get("BENCH_DELAY_MS", "0.5"))
PASSWORD = "bench-password-0000"  # noqa: S105


def writers(count: int) -> list[int]:
    """One nurse in each of `count` practices of their own (created once)."""
    users = []
    for i in range(count):
        username = f"bench_writer{i}"
        user = User.objects.filter(username=username).first()
        if user is None:
            practice = Practice.objects.filter(group_id=910000 + i).first() or practice_create(
                name=f"Bench Writer Practice {i}", group_id=910000 + i, acting_user=None
            )
            user = user_create(
                username=username,
                email=f"{username}@bench.example",
                password=PASSWORD,
                first_name="Writer",
                last_name=str(i),
                role=Role.NURSE,
                practice=practice,
                acting_user=None,
            )
        users.append(user.pk)
    return users


def _record_once(user: User) -> None:
    with transaction.atomic():
        audit_event_record(kind=kinds.PROFILE_UPDATED, acting_user=user, account=user, ip=None)


def _writer(user_pk: int) -> Callable[[], None]:
    """One audited event of the user's, as the app records it."""
    user = User.objects.select_related("provider_profile").get(pk=user_pk)
    return lambda: _record_once(user)


def _timed(target: int, make, port: int | None, ready, go, deadline, counts, slot: int) -> None:
    """In a process of its own: write with `make(target)`'s writer until the deadline."""
    connections.close_all()
    if port is not None:
        connection.settings_dict["PORT"] = port
    once = make(target)
    once()  # connect and warm up before the clock starts
    ready.wait()
    go.wait()
    done = 0
    while time.time() < deadline.value:
        once()
        done += 1
    counts[slot] = done
    connections.close_all()


_PATTERN_LOCK = "SELECT seq, hash FROM bench_lock_pattern.head WHERE id = %s FOR UPDATE"
_PATTERN_APPEND = (
    "WITH event AS (INSERT INTO bench_lock_pattern.event (head_id, seq, hash, occurred_at, details)"
    " VALUES (%s, %s, %s, now(), %s))"
    " UPDATE bench_lock_pattern.head SET seq = %s, hash = %s WHERE id = %s"
)


def pattern_setup(heads: int = 16) -> None:
    """The lock pattern's tables, made afresh: `heads` head rows and an event table."""
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA IF EXISTS bench_lock_pattern CASCADE")
        cursor.execute("CREATE SCHEMA bench_lock_pattern")
        cursor.execute(
            "CREATE TABLE bench_lock_pattern.head (id integer PRIMARY KEY, seq bigint NOT NULL,"
            " hash bytea NOT NULL)"
        )
        cursor.execute(
            "CREATE TABLE bench_lock_pattern.event (id bigserial PRIMARY KEY,"
            " head_id integer NOT NULL REFERENCES bench_lock_pattern.head, seq bigint NOT NULL,"
            " hash bytea NOT NULL, occurred_at timestamptz NOT NULL, details text NOT NULL,"
            " UNIQUE (head_id, seq))"
        )
        cursor.execute(
            "INSERT INTO bench_lock_pattern.head SELECT n, 0, sha256(''::bytea)"
            " FROM generate_series(0, %s) AS n",
            [heads - 1],
        )


def pattern_drop() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA IF EXISTS bench_lock_pattern CASCADE")


def _pattern_once(raw, head: int) -> None:
    """One event by the lock pattern alone: the head locked until the commit."""
    with raw.transaction():
        seq, prev = raw.execute(_PATTERN_LOCK, [head], prepare=True).fetchone()
        details = "Updated profile for Writer"
        digest = hashlib.sha256(prev + details.encode()).digest()
        raw.execute(
            _PATTERN_APPEND, [head, seq + 1, digest, details, seq + 1, digest, head], prepare=True
        )


def _pattern_writer(head: int) -> Callable[[], None]:
    """One event by the lock pattern alone, on psycopg's own connection (in autocommit:
    BEGIN is sent)."""
    connection.ensure_connection()
    raw = connection.connection
    return lambda: _pattern_once(raw, head)


def run_writers(targets: list[int], port: int | None, writer=_writer) -> float:
    """Events/s of len(targets) processes writing for ROUND_SECONDS, all started together.

    `targets`: a user for each `_writer`, a head for each `_pattern_writer`."""
    ctx = multiprocessing.get_context("fork")
    connections.close_all()
    ready, go = ctx.Barrier(len(targets) + 1), ctx.Barrier(len(targets) + 1)
    deadline = ctx.Value("d", 0.0)
    counts = ctx.Array("l", len(targets))
    processes = [
        ctx.Process(target=_timed, args=(target, writer, port, ready, go, deadline, counts, slot))
        for slot, target in enumerate(targets)
    ]
    for process in processes:
        process.start()
    ready.wait()
    deadline.value = time.time() + ROUND_SECONDS
    go.wait()
    for process in processes:
        process.join()
    return round(sum(counts) / ROUND_SECONDS, 1)


def caller_wait(user_pk: int, count: int = 300) -> dict:
    user = User.objects.select_related("provider_profile").get(pk=user_pk)
    _record_once(user)
    waits, empty = [], []
    for _ in range(count):
        t0 = time.perf_counter()
        _record_once(user)
        waits.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        empty.append((time.perf_counter() - t0) * 1000)
    return {
        "record_p50_ms": round(statistics.median(waits), 3),
        "record_p95_ms": round(sorted(waits)[int(0.95 * (count - 1))], 3),
        "empty_transaction_p50_ms": round(statistics.median(empty), 3),
        "record_adds_p50_ms": round(statistics.median(waits) - statistics.median(empty), 3),
    }


def durability() -> dict:
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous")
            (level,) = cursor.fetchone()
        return {"sqlite_synchronous": level}
    settings = {}
    with connection.cursor() as cursor:
        for name in ("fsync", "synchronous_commit", "full_page_writes"):
            cursor.execute(f"SHOW {name}")
            (settings[name],) = cursor.fetchone()
    settings["durable"] = settings["fsync"] == "on" and settings["synchronous_commit"] == "on"
    return settings


ROUNDS = int(os.environ.get("BENCH_WRITE_ROUNDS", "3"))


def matrix(users: list[int], port: int | None) -> dict:
    """Each configuration in turn, ROUNDS times over: medians, and each round's ratio.

    Taking turns puts a slow spell of the disk or the machine on every side alike.
    """
    configurations = {
        "one_writer_events_per_s": (users[:1], _writer),
        "four_practices_events_per_s": (users[:4], _writer),
        "sixteen_practices_events_per_s": (users[:16], _writer),
        "sixteen_on_one_practice_events_per_s": ([users[0]] * 16, _writer),
    }
    if connection.vendor == "postgresql":
        configurations |= {
            "pattern_one_writer_events_per_s": ([0], _pattern_writer),
            "pattern_sixteen_heads_events_per_s": (list(range(16)), _pattern_writer),
        }
    rounds = {name: [] for name in configurations}
    for _ in range(ROUNDS):
        for name, (targets, writer) in configurations.items():
            rounds[name].append(run_writers(targets, port, writer))
    result = {name: statistics.median(values) for name, values in rounds.items()}
    pairs = {
        "16_practices_to_1": ("sixteen_practices_events_per_s", "one_writer_events_per_s"),
        "16_on_one_to_1": ("sixteen_on_one_practice_events_per_s", "one_writer_events_per_s"),
        "pattern_16_heads_to_1": (
            "pattern_sixteen_heads_events_per_s",
            "pattern_one_writer_events_per_s",
        ),
    }
    for pair, (many, one) in pairs.items():
        if many in rounds:
            result[f"ratio_{pair}"] = round(result[many] / result[one], 2)
            result[f"round_ratios_{pair}"] = [
                round(m / o, 2) for m, o in zip(rounds[many], rounds[one], strict=True)
            ]
    result["rounds"] = rounds
    return result


def main() -> None:
    users = writers(16)
    if connection.vendor == "postgresql":
        pattern_setup()
    result = {"durability": durability(), "round_seconds": ROUND_SECONDS}
    result["caller"] = caller_wait(users[0])
    result["loopback"] = matrix(users, None)
    if connection.vendor == "postgresql":
        with delayed_database(DELAY_MS):
            result["proxy_delay_ms_each_way"] = DELAY_MS
            result["proxy_caller"] = caller_wait(users[0], count=100)
            result["proxy"] = matrix(users, connection.settings_dict["PORT"])
    if connection.vendor == "postgresql":
        pattern_drop()
    started = time.perf_counter()
    checkpoint = audit_checkpoint_create().checkpoint
    verified = audit_log_verify()
    result["verified"] = {
        "ok": verified.problem is None,
        "problem": verified.problem.reason if verified.problem else None,
        "events": verified.events,
        "chains": verified.chains,
        "checkpoints": verified.checkpoints,
        "latest_checkpoint": checkpoint.number,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
