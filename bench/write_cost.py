"""Where the CPU of one audited write goes, run with BENCH_DATABASE_URL set (PostgreSQL).

    python -m bench.write_cost [EVENTS]

One writer records EVENTS (default 2000) events, each `audit_event_record` in
its own committed transaction as production runs it, and the run reports per
event: the wall time, the writer process's CPU (Python, Django and psycopg),
the CPU of its PostgreSQL backend and of the server's other processes (WAL
writer, checkpointer), and the statements Django sent. It then repeats the
loop with `synchronous_commit = off` in that session, which leaves the CPU as
it is and takes the commit's disk flush out of the wait; times commits of a
transaction that writes one WAL record and nothing else, with and without the
flush, so the disk's share stands alone; and runs a quarter of the events
again through bench/proxy.py (BENCH_DELAY_MS each way), counting the proxy's
own CPU too.

CPU comes from /proc/<pid>/schedstat (nanoseconds on the CPU), so this runs on
the machine that runs the server. From the split it prints the ceiling a
machine of `os.cpu_count()` cores allows: many writers on different practices
cannot go faster than cores / (CPU per event), while one writer waits for the
whole round (CPU, round trips and the flush) once per event.
"""

import contextlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
import django

django.setup()

from django.db import connection, transaction  # noqa: E402

from accounts.models import User  # noqa: E402
from audit import kinds  # noqa: E402
from audit.services import audit_event_record  # noqa: E402
from bench.proxy import delayed_database  # noqa: E402
from bench.writes import DELAY_MS, writers  # noqa: E402


def _cpu_ns(pid: int) -> int:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def _server_pids(backend: int) -> list[int]:
    """The server's other processes: the postmaster's children but `backend` and clients."""
    parent = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == backend:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        # Backends of other clients are not ours to count; background workers are.
        if int(fields[1]) == parent and b"postgres:" in cmdline and b"127.0.0.1" not in cmdline:
            pids.append(int(entry.name))
    return pids


def _others_ns(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += _cpu_ns(pid)
    return total


def measure(user: User, events: int, *, durable: bool) -> dict:
    statements = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = " + ("on" if durable else "off"))
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    others = _server_pids(backend)
    for _ in range(50):  # warm caches and the statement paths
        with transaction.atomic():
            audit_event_record(kind=kinds.PROFILE_UPDATED, acting_user=user, account=user, ip=None)
    wall0, cpu0 = time.perf_counter(), time.process_time_ns()
    backend0, others0 = _cpu_ns(backend), _others_ns(others)
    with connection.execute_wrapper(count):
        for _ in range(events):
            with transaction.atomic():
                audit_event_record(
                    kind=kinds.PROFILE_UPDATED, acting_user=user, account=user, ip=None
                )
    wall = time.perf_counter() - wall0
    client = time.process_time_ns() - cpu0
    server = _cpu_ns(backend) - backend0
    rest = _others_ns(others) - others0
    with connection.cursor() as cursor:
        cursor.execute("RESET synchronous_commit")
    return {
        "durable": durable,
        "events": events,
        "wall_us": round(wall / events * 1e6, 1),
        "client_cpu_us": round(client / events / 1000, 1),
        "backend_cpu_us": round(server / events / 1000, 1),
        "other_server_cpu_us": round(rest / events / 1000, 1),
        "statements_per_event": len(statements) / events,
        "statements": sorted(
            {sql.split(" ", 3)[0] + " " + sql.split(" ", 3)[1] for sql in statements}
        ),
    }


def empty_commits(count: int = 500) -> dict:
    """Commits of a transaction that writes one WAL record and nothing else, with and without
    the flush: what the disk adds to a durable commit. (A transaction that only takes an id
    writes no WAL of its own, and PostgreSQL then commits it without waiting for the disk.)
    """
    out = {}
    for durable in (True, False):
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = " + ("on" if durable else "off"))
        waits = []
        for _ in range(count):
            t0 = time.perf_counter()
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_logical_emit_message(true, 'bench', '')")
            waits.append(time.perf_counter() - t0)
        waits.sort()
        out["durable" if durable else "not_durable"] = {
            "p50_us": round(waits[len(waits) // 2] * 1e6, 1),
            "p95_us": round(waits[int(0.95 * (len(waits) - 1))] * 1e6, 1),
        }
    with connection.cursor() as cursor:
        cursor.execute("RESET synchronous_commit")
    out["flush_p50_us"] = round(out["durable"]["p50_us"] - out["not_durable"]["p50_us"], 1)
    return out


def _ticks_ns(pid: int) -> int:
    """CPU of a whole process, exited threads included (clock ticks, as nanoseconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 10**9 // os.sysconf("SC_CLK_TCK")


def through_proxy(user: User, events: int) -> dict:
    """The same loop through bench/proxy.py: wall time, and the proxy's own CPU per event."""
    with delayed_database(DELAY_MS) as proxy:
        before = _ticks_ns(proxy.pid)
        result = measure(user, events, durable=True)
        result["proxy_cpu_us"] = round((_ticks_ns(proxy.pid) - before) / events / 1000, 1)
        result["delay_ms_each_way"] = DELAY_MS
    return result


def ceiling(loopback: dict, proxied: dict, cores: int) -> dict:
    """Events/s the machine allows, and the 16-practices-to-1 ratio it leaves room for.

    Many writers on different practices never wait for each other's locks, so
    they are bounded by the cores: every event's CPU (the writer's, its
    backend's, and through the proxy the proxy's) has to run somewhere, while
    the commits of concurrent writers share one disk flush. One writer does one
    event per full round (CPU, round trips, flush), as measured. The ratio
    cannot exceed cores * (one writer's wall time per event) / (CPU per event);
    contention among 16 writers on 2 cores only lowers it.
    """
    out = {}
    for name, run, extra in (
        ("loopback", loopback, 0.0),
        ("proxy", proxied, proxied.get("proxy_cpu_us", 0.0)),
    ):
        cpu_us = run["client_cpu_us"] + run["backend_cpu_us"] + run["other_server_cpu_us"] + extra
        many = cores * 1e6 / cpu_us
        one = 1e6 / run["wall_us"]
        out[name] = {
            "cpu_per_event_us": round(cpu_us, 1),
            "many_writers_max_events_per_s": round(many),
            "one_writer_events_per_s": round(one),
            "ratio_ceiling": round(many / one, 2),
        }
    return out


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    if connection.vendor != "postgresql":
        raise SystemExit("bench.write_cost measures a PostgreSQL server")
    user = User.objects.select_related("provider_profile").get(pk=writers(1)[0])
    result = {"cores": os.cpu_count()}
    result["durable"] = measure(user, events, durable=True)
    result["not_durable"] = measure(user, events, durable=False)
    result["empty_commits"] = empty_commits()
    result["proxy"] = through_proxy(user, max(events // 4, 200))
    result["ceiling"] = ceiling(result["durable"], result["proxy"], os.cpu_count() or 1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
