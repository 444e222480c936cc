"""`make bench`: the audit log at scale, on SQLite and (when DATABASE_URL is PostgreSQL) on
PostgreSQL, side by side. Prints a table and writes JSON under bench/results/.

BENCH_EVENTS (default 1,000,000) sets the size of the generated log. The log
is generated once per database (bench/data/ for SQLite; a separate
`<name>_bench` database on PostgreSQL) and reused by later runs. BENCH_ONLY
(e.g. `report`, or `report,pins`) runs only the steps it names; BENCH_DATABASES
(`sqlite` or `postgresql`) only on the database it names.
"""

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results"
EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
EXPORT_ROUNDS = int(os.environ.get("BENCH_EXPORT_ROUNDS", "2"))
REFERENCE_EVENTS = 10_000  # the size whose report pages the larger logs are held to


def ensure_keys() -> None:
    """Write bench/data/bench.env once; add any key a newer version needs, keep the rest."""
    DATA.mkdir(parents=True, exist_ok=True)
    env = DATA / "bench.env"
    text = env.read_text() if env.exists() else ""
    wanted = {
        "SECRET_KEY": lambda: secrets.token_urlsafe(64),
        "AUDIT_HMAC_KEYS": lambda: f"bench:{_key()}",
        "FIELD_ENCRYPTION_KEYS": lambda: f"bench:{_key()}",
        "AUDIT_SIGNING_KEY": lambda: f"bench:{_key()}",
    }
    for name, make in wanted.items():
        if f"{name}=" not in text:
            text += f"{name}={make()}\n"
    env.write_text(text)


def _key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def databases(events: int = EVENTS) -> dict[str, str]:
    # "chains": the layout with one hash chain per practice; older files are not reused.
    found = {"sqlite": f"sqlite:///{DATA / f'audit-chains-{events}.sqlite3'}"}
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(url)
        name = parts.path.lstrip("/") or "ehr"
        found["postgresql"] = urlunsplit(parts._replace(path=f"/{name}_bench_chains_{events}"))
    return found


def prepare(vendor: str, url: str, events: int) -> None:
    """Create (PostgreSQL), migrate and fill the benchmark log of `events` events at `url`."""
    print(f"[{vendor}] preparing a log of {events:,} events ...", flush=True)
    if vendor == "postgresql":
        create_postgres_database(url)
    env_migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env={
            **os.environ,
            "BENCH_DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
        },
        check=False,
    )
    if env_migrate.returncode:
        raise SystemExit("migrating the benchmark database failed")
    generated = step(url, "-m", "bench.audit", "generate", str(events))
    print(f"[{vendor}] {generated}", flush=True)


def create_postgres_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def step(url: str, *args: str, env: dict[str, str] | None = None) -> dict:
    env = {
        **os.environ,
        "BENCH_DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        **(env or {}),
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"benchmark step failed: {' '.join(args)}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def git_commit() -> str:
    """Return the commit measured, with "+changes" when the work tree differs from it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{head}+changes" if dirty else head


def export_and_dump(url: str) -> dict:
    """The export against the database's own dump, in turns; the best run of each counts.

    Each runs EXPORT_ROUNDS times, alternating, so neither always pays for a cold cache
    or always meets the machine's busiest moment. The export's peak RSS is the highest.
    """
    exports, dumps = [], []
    for _ in range(EXPORT_ROUNDS):
        exports.append(step(url, "-m", "bench.audit", "export"))
        dumps.append(step(url, "-m", "bench.audit", "dump"))
    export = max(exports, key=lambda run: run["rows_per_s"])
    dump = max(dumps, key=lambda run: run["rows_per_s"])
    export["peak_rss_mb"] = max(run["peak_rss_mb"] for run in exports)
    export["ratio_to_dump"] = round(export["rows_per_s"] / dump["rows_per_s"], 2)
    export["runs_rows_per_s"] = [run["rows_per_s"] for run in exports]
    dump["runs_rows_per_s"] = [run["rows_per_s"] for run in dumps]
    return {"export": export, "dump": dump}


def main() -> None:
    ensure_keys()
    results: dict = {
        "events": EVENTS,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": git_commit(),
        # Figures are comparable only at like load (bench/README.md): 1, 5, 15 minutes.
        "load_at_start": [round(load, 2) for load in os.getloadavg()],
    }
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
    if only - set(STEPS):
        raise SystemExit(f"BENCH_ONLY names unknown steps: {', '.join(sorted(only - set(STEPS)))}")
    steps = [name for name in STEPS if not only or name in only]
    chosen = databases()
    vendors = set(filter(None, os.environ.get("BENCH_DATABASES", "").split(",")))
    if vendors - set(chosen):
        raise SystemExit(
            f"BENCH_DATABASES names databases not available here: "
            f"{', '.join(sorted(vendors - set(chosen)))} (have: {', '.join(chosen)})"
        )
    references = databases(REFERENCE_EVENTS)
    for vendor, url in chosen.items():
        if vendors and vendor not in vendors:
            continue
        prepare(vendor, url, EVENTS)
        reference = {}
        if "report" in steps and EVENTS != REFERENCE_EVENTS:
            # The report pages are held to their cost on a small log, served beside
            # this one in the same run (bench/audit.py, `report`).
            prepare(vendor, references[vendor], REFERENCE_EVENTS)
            reference = {"BENCH_REFERENCE_DATABASE_URL": references[vendor]}
        print(f"[{vendor}] measuring ...", flush=True)
        results[vendor] = {}
        if "report" in steps:
            results[vendor]["report"] = step(url, "-m", "bench.audit", "report", env=reference)
        if "dashboard" in steps:
            results[vendor]["dashboard"] = step(url, "-m", "bench.audit", "dashboard")
        if "export" in steps:
            results[vendor].update(export_and_dump(url))
        if "writes" in steps:
            results[vendor]["writes"] = step(url, "-m", "bench.writes")
        if "pins" in steps:
            results[vendor]["pins"] = step(url, "-m", "bench.pins")
        if "partitions" in steps and vendor == "postgresql":
            results[vendor]["partitions"] = partitions_step(url)
    results["ended"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results["load_at_end"] = [round(load, 2) for load in os.getloadavg()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"audit-{results['when'].replace(':', '')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nJSON: {out.relative_to(ROOT)}")


def partitions_step(url: str) -> dict:
    """bench/partitions.py in a database of its own, made afresh (the bench's own, dropped first)."""
    import psycopg

    parts = urlsplit(url)
    own = urlunsplit(
        parts._replace(path=parts.path.replace("_bench_chains_", "_bench_partitions_"))
    )
    name = urlsplit(own).path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "BENCH_DATABASE_URL": own, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    return step(own, "-m", "bench.partitions")


# BENCH_ONLY=report,pins runs only the steps named (the log is still generated first).
STEPS = ("report", "dashboard", "export", "writes", "pins", "partitions")


def print_table(results: dict) -> None:
    vendors = [v for v in ("sqlite", "postgresql") if v in results]
    width = 36
    print(f"\nAudit log benchmark, {results['events']:,} events (commit {results.get('commit')})")
    if "load_at_start" in results:
        print(
            f"{results['when']} to {results['ended']}, load average (1, 5, 15 min) "
            f"{' '.join(map(str, results['load_at_start']))} at the start, "
            f"{' '.join(map(str, results['load_at_end']))} at the end\n"
        )
    print("metric".ljust(width) + "".join(v.rjust(22) for v in vendors) + "   target")
    print("-" * (width + 22 * len(vendors) + 12))

    def line(label, values, target=""):
        print(label.ljust(width) + "".join(str(v).rjust(22) for v in values) + f"   {target}")

    def has(step):
        return all(step in results[v] for v in vendors)

    if has("report"):
        print_report(results, vendors, line)
    if has("dashboard"):
        for case in results[vendors[0]]["dashboard"]["dashboard"]:
            pages = {v: results[v]["dashboard"]["dashboard"][case] for v in vendors}
            line(
                f"dashboard, {case}",
                [f"{p['page']['median_ms']}/{p['page']['p95_ms']} ms" for p in pages.values()],
                "median/p95",
            )
            line(
                "  trivial page alongside",
                [
                    f"{p['trivial']['median_ms']}/{p['trivial']['p95_ms']} ms"
                    for p in pages.values()
                ],
                "median/p95",
            )
            line("  ratio to trivial page", [p["ratio"] for p in pages.values()], "<= 2")
    if has("export"):
        export_lines(line, results, vendors)
    if has("writes"):

        def writes(v, path):
            value = results[v]["writes"]
            for key in path:
                value = value.get(key, {}) if isinstance(value, dict) else {}
            return value if value != {} else "-"

        def per_round(v, network, pair):
            ratios = writes(v, [network, f"round_ratios_{pair}"])
            return " ".join(map(str, ratios)) if ratios != "-" else "-"

        line("commits durable", [writes(v, ["durability", "durable"]) for v in vendors], "yes")
        line(
            "audit write: caller waits p50 ms",
            [writes(v, ["caller", "record_p50_ms"]) for v in vendors],
        )
        line("  p95 ms", [writes(v, ["caller", "record_p95_ms"]) for v in vendors])
        line(
            "  added over empty txn p50 ms",
            [writes(v, ["caller", "record_adds_p50_ms"]) for v in vendors],
        )
        for network in ("loopback", "proxy"):
            label = "loopback" if network == "loopback" else "+0.5 ms each way"
            line(f"events/s ({label})", ["" for _ in vendors])
            if network == "proxy":
                line(
                    "  audit write: caller waits p50/p95",
                    [
                        f"{writes(v, ['proxy_caller', 'record_p50_ms'])}/"
                        f"{writes(v, ['proxy_caller', 'record_p95_ms'])} ms"
                        for v in vendors
                    ],
                )
            line("  1 writer", [writes(v, [network, "one_writer_events_per_s"]) for v in vendors])
            line(
                "  4 writers, 4 practices",
                [writes(v, [network, "four_practices_events_per_s"]) for v in vendors],
            )
            line(
                "  16 writers, 16 practices",
                [writes(v, [network, "sixteen_practices_events_per_s"]) for v in vendors],
            )
            line(
                "  16 writers, one practice",
                [writes(v, [network, "sixteen_on_one_practice_events_per_s"]) for v in vendors],
            )
            line(
                "  ratio one practice / 1 writer",
                [writes(v, [network, "ratio_16_on_one_to_1"]) for v in vendors],
                "(contrast: they take turns)",
            )
            line(
                "  ratio 16 practices / 1 writer",
                [writes(v, [network, "ratio_16_practices_to_1"]) for v in vendors],
                ">= 4 (PostgreSQL)" if network == "loopback" else ">= 6",
            )
            line("  per round", [per_round(v, network, "16_practices_to_1") for v in vendors])
            # The machine's own ceiling: the same lock pattern with none of the project's work.
            line(
                "  the lock pattern alone, 1 writer",
                [writes(v, [network, "pattern_one_writer_events_per_s"]) for v in vendors],
            )
            line(
                "    16 writers, 16 heads",
                [writes(v, [network, "pattern_sixteen_heads_events_per_s"]) for v in vendors],
            )
            line(
                "    ratio 16 heads / 1 writer",
                [writes(v, [network, "ratio_pattern_16_heads_to_1"]) for v in vendors],
                "what the machine allows",
            )
            line("    per round", [per_round(v, network, "pattern_16_heads_to_1") for v in vendors])
        line(
            "chains and checkpoints verified",
            [writes(v, ["verified", "ok"]) for v in vendors],
            "True",
        )
    if "partitions" in results.get("postgresql", {}):
        figures = results["postgresql"]["partitions"]
        archive, live = figures["archive"], figures["partition_under_writers"]
        print(
            f"\nPartitions (PostgreSQL): archive of {archive['events']:,} events of {archive['month']}"
        )
        print(
            f"  archive rows/s {archive['rows_per_s']:,} ({archive['seconds']} s, file "
            f"{archive['file_mb']} MB; written, verified, boundary signed, partition dropped); "
            f"chains verified after: {archive['verified_after']}"
        )
        print(
            f"  next partition created while {live['writers']} writers write: "
            f"{live['create_ms']} ms (attach), {live['create_moving_rows_ms']} ms moving "
            f"{live['rows_moved']} row(s) out of the default; {live['events_per_s']} events/s; "
            f"failed writes {live['failed_writes']} (target 0); verified after: "
            f"{live['verified_after']}"
        )
    if has("pins"):
        line(
            "gunicorn: trivial signed-in req/s",
            [results[v]["pins"]["trivial_signed_in_per_s"] for v in vendors],
        )
        line("  PIN validations req/s", [results[v]["pins"]["validate_per_s"] for v in vendors])
        line("  ratio validation/trivial", [results[v]["pins"]["ratio"] for v in vendors], ">= 0.5")
        line(
            "  ratio per round (min-max)",
            [
                f"{min(results[v]['pins']['round_ratios'])}-{max(results[v]['pins']['round_ratios'])}"
                for v in vendors
            ],
        )


def print_report(results: dict, vendors: list[str], line) -> None:
    """Print each report page beside the trivial page and, if measured, the other log size."""
    reports = {v: results[v]["report"] for v in vendors}
    first = reports[vendors[0]]
    samples = first["rounds"] * (len(first["report"]) + len(first.get("reference", {})))
    line(
        f"trivial signed-in page (x{samples})",
        [f"{r['trivial']['median_ms']}/{r['trivial']['p95_ms']} ms" for r in reports.values()],
        "median/p95",
    )
    for name in reports[vendors[0]].get("reference", {}):
        pages = {v: reports[v]["reference"][name] for v in vendors}
        line(
            f"ref. {name}",
            [f"{p['page']['median_ms']}/{p['page']['p95_ms']} ms" for p in pages.values()],
            "median/p95",
        )
        line("  ratio to trivial page", [p["ratio"] for p in pages.values()])
    for case in reports[vendors[0]]["report"]:
        pages = {v: reports[v]["report"][case] for v in vendors}
        line(
            f"report {case}",
            [f"{p['page']['median_ms']}/{p['page']['p95_ms']} ms" for p in pages.values()],
            "median/p95",
        )
        line("  rows on the page", [p["rows"] for p in pages.values()])
        line("  ratio to trivial page", [p["ratio"] for p in pages.values()], "<= 1.5")
        small = {v: reports[v].get("reference_log") for v in vendors}
        if not all(small.values()):
            continue
        line(
            f"  on {_size(small[vendors[0]]['events'])} events, served beside it",
            [
                f"{s['report'][case]['page']['median_ms']} ms ({s['report'][case]['ratio']})"
                for s in small.values()
            ],
            "median (ratio)",
        )
        growth = [s["growth"][case] for s in small.values()]
        line(
            "  larger log's ratio / smaller's",
            [
                f"{g['ratio_of_ratios']} ({g['rounds_quartiles'][0]}-{g['rounds_quartiles'][-1]})"
                if g["rounds_quartiles"]
                else str(g["ratio_of_ratios"])
                for g in growth
            ],
            "<= 1.2 (round quartiles)",
        )


def _size(events: int) -> str:
    return f"{events // 1_000_000}M" if events % 1_000_000 == 0 else f"{events // 1000}k"


def export_lines(line, results: dict, vendors: list[str]) -> None:
    line("export rows/s", [f"{results[v]['export']['rows_per_s']:,}" for v in vendors])
    line(
        "  database dump rows/s",
        [f"{results[v]['dump']['rows_per_s']:,}" for v in vendors],
        "sqlite3 -csv shell; COPY TO STDOUT CSV",
    )
    line(
        "  ratio export/dump",
        [results[v]["export"]["ratio_to_dump"] for v in vendors],
        ">= 0.5 (SQLite), >= 0.8 (PostgreSQL)",
    )
    line("  export peak RSS MB", [results[v]["export"]["peak_rss_mb"] for v in vendors], "< 150")


if __name__ == "__main__":
    main()
