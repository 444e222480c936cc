"""Audit-log benchmark steps, each run in its own process by bench/run.py.

    python -m bench.audit generate N    build the benchmark log (a valid chain)
    python -m bench.audit report        report pages vs a trivial page, served by gunicorn
                                        (and beside the log BENCH_REFERENCE_DATABASE_URL
                                        names, served by a second one, when set)
    python -m bench.audit client-setup  the report's cases and sessions of this log (for the above)
    python -m bench.audit dashboard     the compliance dashboard vs the same trivial page
    python -m bench.audit export        the app's CSV export of every row
    python -m bench.audit dump          the database's own dump of the same columns
Each prints one JSON object on its last line.
"""

import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.roles import Role  # noqa: E402
from accounts.services import practice_create, user_create  # noqa: E402
from audit import chain, hashing, kinds, rollup  # noqa: E402
from audit.checkpoints import audit_checkpoint_create  # noqa: E402
from audit.models import AuditChain, AuditEvent  # noqa: E402
from audit.services import (  # noqa: E402
    EVENT_COLUMNS,
    insert_sql,
    user_label,
)
from bench.signin import signed_in_client  # noqa: E402

PASSWORD = "bench-password-0000"  # noqa: S105


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def emit(result: dict) -> None:
    print(json.dumps(result))


# generate


def generate(total: int) -> None:
    """Create 2 practices, 50 users, patients, and `total` events over two years."""
    if (
        AuditEvent.objects.count() >= total
        and User.objects.filter(username="bench_compliance").exists()
    ):
        emit({"generated": 0, "events": AuditEvent.objects.count()})
        return
    if AuditEvent.objects.exists():
        sys.exit("the benchmark database holds another log; delete bench/data or drop the database")
    rng = random.Random(2024)  # noqa: S311  (benchmark data, not secrets)
    practices = [
        practice_create(name=f"Bench Practice {i}", group_id=900000 + i, acting_user=None)
        for i in (1, 2)
    ]
    users = []
    for i in range(50):
        practice = practices[i % 2]
        role = Role.PROVIDER if i % 5 == 0 else Role.NURSE
        users.append(
            user_create(
                username=f"bench_user{i}",
                email=f"bench{i}@bench.example",
                password=PASSWORD,
                first_name=f"First{i}",
                last_name=f"Last{i}",
                role=role,
                practice=practice,
                doctor_id=700000 + i if role == Role.PROVIDER else None,
                acting_user=None,
            )
        )
    for username, role, practice in (
        ("bench_compliance", Role.COMPLIANCE_OFFICER, practices[0]),
        ("bench_auditor", Role.PLATFORM_AUDITOR, None),
    ):
        user_create(
            username=username,
            email=f"{username}@bench.example",
            password=PASSWORD,
            first_name=username,
            last_name="Bench",
            role=role,
            practice=practice,
            acting_user=None,
        )
    patients = {
        p.pk: [(f"{p.pk}-{n:05d}", f"Patient{n:05d} Example") for n in range(2000)]
        for p in practices
    }
    # One chain per practice, as the writer keeps them.
    chains = {
        p.pk: AuditChain.objects.get_or_create(practice=p, kind="practice")[0] for p in practices
    }
    heads = {p.pk: (chains[p.pk].seq, chains[p.pk].row_hash) for p in practices}
    key_id, key = chain.signing_key()
    end = timezone.now()
    start = end - timedelta(days=730)
    _partitions_for(start, end)
    step = (end - start) / total
    mix = [
        (kinds.SIGNED_IN, 30),
        (kinds.SIGNED_OUT, 20),
        (kinds.SIGN_IN_FAILED, 5),
        (kinds.PROFILE_UPDATED, 5),
        (kinds.PATIENT_CHART_VIEWED, 40),
    ]
    choices = [kind for kind, weight in mix for _ in range(weight)]
    labels = {u.pk: user_label(u) for u in users}
    names = {u.pk: u.display_name for u in users}
    columns = list(EVENT_COLUMNS)  # the order the writer uses; rows below follow it
    batch = []
    started = time.perf_counter()
    for n in range(total):
        user = users[rng.randrange(len(users))]
        kind = choices[rng.randrange(len(choices))]
        seq, prev = heads[user.practice_id]
        seq += 1
        patient_id = patient_name = ""
        params = {"account": names[user.pk]}
        if kind is kinds.PATIENT_CHART_VIEWED:
            patient_id, patient_name = patients[user.practice_id][rng.randrange(2000)]
            params["patient"] = patient_name
        ip = (
            f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            if rng.random() < 0.7
            else f"2605:a601:ac72:c200::{rng.randrange(1, 65535):x}"
        )
        row = {
            "chain_id": chains[user.practice_id].pk,
            "seq": seq,
            "occurred_at": start + step * n,
            "actor_ref": user.pk,
            "actor_label": labels[user.pk],
            "account_ref": user.pk,
            "account_label": labels[user.pk],
            "practice_id": user.practice_id,
            "patient_id": patient_id,
            "patient_name": patient_name,
            "kind": kind.code,
            "type": kind.type.value,
            "action": kind.action.value,
            "details": kind.details(params),
            "ip": ip,
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
            "request_id": f"{rng.getrandbits(128):032x}",
            "data": {},
        }
        digest = hashing.row_hash(row, prev_hash=prev)
        stored = {
            **row,
            "actor_id": user.pk,
            "account_id": user.pk,
            "data": "{}",
            "key_id": key_id,
            "prev_hash": prev,
            "row_hash": digest,
            "mac": chain.event_mac(digest, key=key),
        }
        batch.append(tuple(stored[name] for name in columns))
        heads[user.practice_id] = (seq, digest)
        if len(batch) == 20000 or n == total - 1:
            _insert(columns, batch)
            batch.clear()
    with transaction.atomic():
        for practice_id, (seq, digest) in heads.items():
            AuditChain.objects.filter(pk=chains[practice_id].pk).update(seq=seq, row_hash=digest)
        from audit.models import AuditedPatient

        AuditedPatient.objects.bulk_create(
            [
                AuditedPatient(practice_id=pk, patient_id=pid, patient_name=name)
                for pk, rows in patients.items()
                for pid, name in rows
            ],
            ignore_conflicts=True,
        )
    with transaction.atomic(), connection.cursor() as cursor:
        # The dashboard's rollup, as the writer keeps it (the rows above bypassed the writer):
        # counted afresh, the accounts' creation the writer already counted included.
        cursor.execute(f"DELETE FROM {rollup.TABLE}")  # noqa: S608  # nosec B608  (fixed names)
        cursor.execute(f"DELETE FROM {rollup.DAY_TABLE}")  # noqa: S608  # nosec B608  (fixed names)
        for statement in rollup.rebuild_sql(connection.vendor):
            cursor.execute(statement, [])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    generated = round(time.perf_counter() - started, 1)
    # The first checkpoint walks every chain from its start before it signs, as a log
    # migrated without one would; taken here, so that no measured export pays for it.
    started = time.perf_counter()
    audit_checkpoint_create()
    emit(
        {
            "generated": total,
            "seconds": generated,
            "first_checkpoint_seconds": round(time.perf_counter() - started, 1),
        }
    )


def _partitions_for(start, end) -> None:
    """On PostgreSQL, a partition for every month of the log, as `audit_partitions` would
    have made them over two years, so no generated event lands in the default partition."""
    from audit import partitions

    if not partitions.supported():
        return
    with connection.cursor() as cursor:
        have = partitions.existing_months(cursor)
    month, last = partitions.first_of(start), partitions.first_of(end)
    while month <= last:
        if month not in have:
            partitions.partition_create(month)
        month = partitions.add_months(month, 1)


def _insert(columns: list[str], rows: list[tuple]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(
                f"COPY audit_auditevent ({', '.join(columns)}) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            # The writer's own statement (audit/services.py), so both insert the same columns.
            at = columns.index("occurred_at")
            cursor.executemany(
                insert_sql("sqlite"),
                [(*r[:at], r[at].strftime("%Y-%m-%d %H:%M:%S.%f"), *r[at + 1 :]) for r in rows],
            )


# report

REPORT_ROUNDS = int(os.environ.get("BENCH_REPORT_ROUNDS", "40"))  # samples of each page
TRIVIAL_PAGE = "/"  # loads the session and the user, and redirects to the account page
# Not report pages: what a page of the same layout costs, for reading the ratios.
REFERENCE_PAGES = {"account page (same layout)": ("bench_compliance", "/account/staff/")}


def _stats(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[math.ceil(0.95 * len(ordered)) - 1], 3),  # nearest rank
    }


def report_cases() -> dict[str, tuple[str, dict]]:
    """Return each timed report page: who asks, and the query string it sends."""
    from zoneinfo import ZoneInfo

    compliance = User.objects.get(username="bench_compliance")
    today = timezone.now().astimezone(ZoneInfo(compliance.time_zone)).date()
    full = {"date_from": (today - timedelta(days=730)).isoformat(), "date_to": today.isoformat()}
    month = {"date_from": (today - timedelta(days=30)).isoformat(), "date_to": today.isoformat()}
    middle = (today - timedelta(days=365)).isoformat()
    members = User.objects.filter(username__startswith="bench_user").order_by("pk")
    own = members.filter(practice=compliance.practice)[1].username
    other = members.exclude(practice=compliance.practice).first().username
    # The patient of the practice's newest chart view: one with events at every log size.
    patient = (
        AuditEvent.objects.filter(practice=compliance.practice, type="Patient")
        .order_by("-occurred_at", "-id")
        .values_list("patient_id", flat=True)
        .first()
    )
    officer, auditor = "bench_compliance", "bench_auditor"
    return {
        "first page (2 years)": (officer, full),
        "oldest page (2 years)": (officer, {**full, "page": "last"}),
        "username + month": (officer, {**month, "username": own}),
        "username, 2 years": (officer, {**full, "username": own}),
        "other practice's username": (officer, {**full, "username": other}),
        "patient, 2 years": (officer, {**full, "patient": patient}),
        "patient, auditor": (auditor, {**full, "patient": patient}),
        "one day in the middle": (officer, {"date_from": middle, "date_to": middle}),
        "type Report, 2 years": (officer, {**full, "type": "Report"}),
        "break-glass only, 2 years": (officer, {**full, "break_glass": "on"}),
        "break-glass only, auditor": (auditor, {**full, "break_glass": "on"}),
        "username matching nobody": (officer, {**full, "username": "nobody-by-that-name"}),
        # Other orders: the newest 10,000 matching events sorted, a page by OFFSET.
        "sorted by User, 2 years": (officer, {**full, "sort": "user"}),
        "sorted by Details, last page": (officer, {**full, "sort": "-details", "n": "200"}),
        "sorted by User, username": (officer, {**full, "username": own, "sort": "user"}),
        "sorted by IP, auditor": (auditor, {**full, "sort": "ip"}),
    }


def client_setup() -> None:
    """Print the report's cases for this log and a signed-in session key for each viewer.

    For `report`, which serves the reference log from a second server: usernames and
    the patient are this log's own, and the sessions live in its database.
    """
    from bench.signin import session_key_for

    cases = report_cases()
    viewers = {viewer for viewer, _params in cases.values()}
    viewers |= {viewer for viewer, _path in REFERENCE_PAGES.values()}
    emit(
        {
            "cases": cases,
            "sessions": {v: session_key_for(User.objects.get(username=v)) for v in viewers},
            "events": AuditEvent.objects.count(),
        }
    )


REFERENCE_URL = os.environ.get("BENCH_REFERENCE_DATABASE_URL", "")


def _reference_setup() -> dict:
    """Run `client_setup` against the reference log, in a process of its own."""
    env = {**os.environ, "BENCH_DATABASE_URL": REFERENCE_URL}
    done = subprocess.run(
        [sys.executable, "-m", "bench.audit", "client-setup"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"reference log: client-setup failed\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report() -> None:
    """Time each report page and a trivial signed-in page, alternately, on one gunicorn process.

    One worker serves both, so the ratio compares pages of the same process; each
    page's ratio is to the trivial requests made just before its own. A page of
    the same layout with one small form (the officer's own account page) is timed
    the same way, as a reference for what any rendered page costs here.

    With BENCH_REFERENCE_DATABASE_URL (bench/run.py passes the 10,000-event log), a
    second gunicorn serves that log and every sample of a page on this log is taken
    beside one on the other, the order of the two alternating by round: how much more
    a page costs on the larger log (its ratio over the smaller log's ratio) is then
    read under the same conditions, not from two runs at different moments. Each
    round's own quotient is kept too, for the spread.
    """
    from contextlib import ExitStack
    from urllib.parse import urlencode

    from django.conf import settings

    from bench.pins import Session, sign_in
    from bench.server import gunicorn

    cases = report_cases()
    logs = {"this": (cases, None)}
    if REFERENCE_URL:
        other = _reference_setup()
        logs["reference"] = ({k: tuple(v) for k, v in other["cases"].items()}, other)
    connection.close()
    with ExitStack() as stack:
        sessions, paths = {}, {}
        for log, (log_cases, setup) in logs.items():
            env = {"BENCH_DATABASE_URL": REFERENCE_URL} if setup else None
            port = stack.enter_context(gunicorn(workers=1, env=env))
            log_paths = {
                name: (viewer, f"/audit/?{urlencode(params)}")
                for name, (viewer, params) in log_cases.items()
            }
            log_paths |= REFERENCE_PAGES
            paths[log] = log_paths
            viewers = {viewer for viewer, _path in log_paths.values()}
            if setup is None:
                sessions[log] = {viewer: sign_in(port, viewer) for viewer in viewers}
            else:
                sessions[log] = {}
                for viewer in viewers:
                    session = Session(port)
                    session.cookies[settings.SESSION_COOKIE_NAME] = setup["sessions"][viewer]
                    sessions[log][viewer] = session

        def get(log: str, viewer: str, path: str) -> tuple[float, int, str]:
            t0 = time.perf_counter()
            status, page = sessions[log][viewer].request("GET", path)
            return (time.perf_counter() - t0) * 1000, status, page

        names = list(paths["this"])
        rows = {log: {} for log in logs}
        for _ in range(3):  # warm the workers: imports, templates, connections, caches
            for name in names:
                for log in logs:
                    viewer, path = paths[log][name]
                    get(log, viewer, TRIVIAL_PAGE)
                    _ms, status, page = get(log, viewer, path)
                    if status != 200:
                        raise SystemExit(f"{log} log, {name}: {path} answered {status}")
                    rows[log][name] = page.count('<td class="nowrap">')
        trivial = {log: {name: [] for name in names} for log in logs}
        pages = {log: {name: [] for name in names} for log in logs}
        order = list(logs)
        for _ in range(REPORT_ROUNDS):
            for name in names:
                for log in order:
                    viewer, path = paths[log][name]
                    ms, status, _page = get(log, viewer, TRIVIAL_PAGE)
                    if status not in (301, 302):
                        raise SystemExit(f"{TRIVIAL_PAGE} answered {status}")
                    trivial[log][name].append(ms)
                    ms, status, page = get(log, viewer, path)
                    if status != 200 or page.count('<td class="nowrap">') != rows[log][name]:
                        raise SystemExit(
                            f"{log} log, {name}: {path} answered {status} with other rows"
                        )
                    pages[log][name].append(ms)
            order.reverse()

    def summary(log: str) -> dict:
        found = {}
        for name in names:
            page, base = _stats(pages[log][name]), _stats(trivial[log][name])
            viewer, _path = paths[log][name]
            found[name] = {
                "viewer": viewer,
                "params": logs[log][0][name][1] if name in logs[log][0] else {},
                "rows": rows[log][name],
                "page": page,
                "trivial": base,
                "ratio": round(page["median_ms"] / base["median_ms"], 2),
            }
        return found

    results = summary("this")
    out = {
        "report": {name: results[name] for name in cases},
        "reference": {name: results[name] for name in REFERENCE_PAGES},
        "trivial": _stats([ms for samples in trivial["this"].values() for ms in samples]),
        "rounds": REPORT_ROUNDS,
    }
    if REFERENCE_URL:
        small = summary("reference")
        growth = {}
        for name in cases:
            per_round = sorted(
                (pages["this"][name][n] / trivial["this"][name][n])
                / (pages["reference"][name][n] / trivial["reference"][name][n])
                for n in range(REPORT_ROUNDS)
            )
            growth[name] = {
                "ratio_of_ratios": round(results[name]["ratio"] / small[name]["ratio"], 2),
                "rounds_quartiles": [round(q, 2) for q in statistics.quantiles(per_round, n=4)]
                if REPORT_ROUNDS > 1
                else [],
            }
        out["reference_log"] = {
            "events": logs["reference"][1]["events"],
            "report": {name: small[name] for name in cases},
            "growth": growth,
        }
    emit(out)


# dashboard

DASHBOARD_CASES = {
    "officer, 30 days": ("bench_compliance", "/audit/dashboard/?days=30"),
    "officer, 90 days": ("bench_compliance", "/audit/dashboard/?days=90"),
    "auditor, every practice, 90 days": ("bench_auditor", "/audit/dashboard/?days=90"),
}


def dashboard() -> None:
    """Time the dashboard against the trivial signed-in page, alternately, on one gunicorn process.

    As the report pages are timed (`report`): each sample of the dashboard follows
    one of the trivial page from the same process, and the ratio is of medians.
    """
    from bench.pins import sign_in
    from bench.server import gunicorn

    connection.close()
    with gunicorn(workers=1) as port:
        viewers = {viewer for viewer, _path in DASHBOARD_CASES.values()}
        sessions = {viewer: sign_in(port, viewer) for viewer in viewers}

        def get(viewer: str, path: str) -> tuple[float, int, str]:
            t0 = time.perf_counter()
            status, page = sessions[viewer].request("GET", path)
            return (time.perf_counter() - t0) * 1000, status, page

        charts: dict[str, int] = {}
        for _ in range(3):  # warm the worker
            for name, (viewer, path) in DASHBOARD_CASES.items():
                get(viewer, TRIVIAL_PAGE)
                _ms, status, page = get(viewer, path)
                if status != 200:
                    raise SystemExit(f"{name}: {path} answered {status}")
                charts[name] = page.count('<svg class="chart"')
        trivial = {name: [] for name in DASHBOARD_CASES}
        pages = {name: [] for name in DASHBOARD_CASES}
        for _ in range(REPORT_ROUNDS):
            for name, (viewer, path) in DASHBOARD_CASES.items():
                ms, status, _page = get(viewer, TRIVIAL_PAGE)
                if status not in (301, 302):
                    raise SystemExit(f"{TRIVIAL_PAGE} answered {status}")
                trivial[name].append(ms)
                ms, status, page = get(viewer, path)
                if status != 200 or page.count('<svg class="chart"') != charts[name]:
                    raise SystemExit(f"{name}: {path} answered {status} with other charts")
                pages[name].append(ms)
    results = {}
    for name, (viewer, path) in DASHBOARD_CASES.items():
        page, base = _stats(pages[name]), _stats(trivial[name])
        results[name] = {
            "viewer": viewer,
            "path": path,
            "charts": charts[name],
            "page": page,
            "trivial": base,
            "ratio": round(page["median_ms"] / base["median_ms"], 2),
        }
    emit({"dashboard": results, "rounds": REPORT_ROUNDS})


# export


def export() -> None:
    auditor = User.objects.get(username="bench_auditor")
    client = signed_in_client(auditor)
    baseline = peak_rss_mb()
    params = {"date_from": "2000-01-01", "date_to": "2100-01-01"}
    t0 = time.perf_counter()
    response = client.get("/audit/export.csv", params)
    size = rows = 0
    for block in response.streaming_content:
        size += len(block)
        rows += block.count(b"\n")
    seconds = time.perf_counter() - t0
    emit(
        {
            "rows": rows - 1,
            "bytes": size,
            "seconds": round(seconds, 2),
            "rows_per_s": round((rows - 1) / seconds),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "rss_before_mb": round(baseline, 1),
        }
    )


# The columns the export writes, in its order, newest first: what both dumps read.
DUMP_COLUMNS = "occurred_at, patient_name, actor_label, type, action, details, ip"
DUMP_ORDER = "ORDER BY occurred_at DESC, id DESC"


def dump() -> None:
    """The database's own CSV dump of the export's rows, read through a pipe and counted."""
    sql = f"SELECT {DUMP_COLUMNS} FROM audit_auditevent {DUMP_ORDER}"  # noqa: S608  (fixed SQL)
    t0 = time.perf_counter()
    size = rows = 0
    if connection.vendor == "postgresql":
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH CSV") as copy,
        ):
            for block in copy:
                size += len(block)
                rows += 1
        method = "COPY ... TO STDOUT WITH CSV"
    else:
        # SQLite's command-line shell in CSV mode, its output counted as the export's is.
        shell = shutil.which("sqlite3")
        if shell is None:
            sys.exit("the dump on SQLite needs the sqlite3 command-line shell")
        database = str(connection.settings_dict["NAME"])
        with subprocess.Popen(  # noqa: S603  (fixed SQL, the benchmark's own database file)
            [shell, "-csv", "-readonly", database, sql], stdout=subprocess.PIPE
        ) as shell_process:
            while block := shell_process.stdout.read(64 * 1024):
                size += len(block)
                rows += block.count(b"\n")
        if shell_process.returncode:
            sys.exit(f"sqlite3 exited with {shell_process.returncode}")
        method = "sqlite3 -csv -readonly (command-line shell)"
    seconds = time.perf_counter() - t0
    emit(
        {
            "method": method,
            "rows": rows,
            "bytes": size,
            "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds),
            "peak_rss_mb": round(peak_rss_mb(), 1),  # this reading process's
        }
    )


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "generate":
        generate(int(sys.argv[2]))
    else:
        {
            "report": report,
            "client-setup": client_setup,
            "dashboard": dashboard,
            "export": export,
            "dump": dump,
        }[command]()
