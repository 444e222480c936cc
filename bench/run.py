"""`make bench`: the audit log at scale, on SQLite and (when DATABASE_URL is PostgreSQL) on
PostgreSQL, side by side. Prints a table and writes JSON under bench/results/.

BENCH_EVENTS (default 1,000,000) sets the size of the generated log. The log
is generated once per database (bench/data/ for SQLite; a separate
`<name>_bench` database on PostgreSQL) and reused by later runs.
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
# BENCH_ONLY=export: generate if needed, then measure the export and the dump only.
ONLY = os.environ.get("BENCH_ONLY", "")
EXPORT_ROUNDS = int(os.environ.get("BENCH_EXPORT_ROUNDS", "2"))


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


def databases() -> dict[str, str]:
    # "chains": the layout with one hash chain per practice; older files are not reused.
    found = {"sqlite": f"sqlite:///{DATA / f'audit-chains-{EVENTS}.sqlite3'}"}
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(url)
        name = parts.path.lstrip("/") or "ehr"
        found["postgresql"] = urlunsplit(parts._replace(path=f"/{name}_bench_chains_{EVENTS}"))
    return found


def create_postgres_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def step(url: str, *args: str) -> dict:
    env = {**os.environ, "BENCH_DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    result = subprocess.run(  # noqa: S603
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"benchmark step failed: {' '.join(args)}")
    return json.loads(result.stdout.strip().splitlines()[-1])


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
    results: dict = {"events": EVENTS, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for vendor, url in databases().items():
        print(f"[{vendor}] preparing a log of {EVENTS:,} events ...", flush=True)
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
        generated = step(url, "-m", "bench.audit", "generate", str(EVENTS))
        print(f"[{vendor}] {generated}", flush=True)
        print(f"[{vendor}] measuring ...", flush=True)
        results[vendor] = export_and_dump(url)
        if ONLY == "export":
            continue
        results[vendor].update(
            {
                "report": step(url, "-m", "bench.audit", "report")["report"],
                "writes": step(url, "-m", "bench.writes"),
                "pins": step(url, "-m", "bench.pins"),
            }
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"audit-{results['when'].replace(':', '')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nJSON: {out.relative_to(ROOT)}")


def print_table(results: dict) -> None:
    vendors = [v for v in ("sqlite", "postgresql") if v in results]
    width = 34
    print(f"\nAudit log benchmark, {results['events']:,} events\n")
    print("metric".ljust(width) + "".join(v.rjust(22) for v in vendors) + "   target")
    print("-" * (width + 22 * len(vendors) + 12))

    def line(label, values, target=""):
        print(label.ljust(width) + "".join(str(v).rjust(22) for v in values) + f"   {target}")

    if ONLY == "export":
        export_lines(line, results, vendors)
        return
    for case in results[vendors[0]]["report"]:
        line(
            f"report {case}: median/p95 ms",
            [
                f"{results[v]['report'][case]['request']['median_ms']}/{results[v]['report'][case]['request']['p95_ms']}"
                for v in vendors
            ],
        )
        line(
            "  raw SQL median ms",
            [results[v]["report"][case]["raw_sql"]["median_ms"] for v in vendors],
        )
        line(
            "  ratio request/raw SQL",
            [results[v]["report"][case]["ratio"] for v in vendors],
            "<= 2",
        )
    export_lines(line, results, vendors)

    def writes(v, path):
        value = results[v]["writes"]
        for key in path:
            value = value.get(key, {}) if isinstance(value, dict) else {}
        return value if value != {} else "-"

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
            "  ratio 16 practices / 1 writer",
            [writes(v, [network, "ratio_16_practices_to_1"]) for v in vendors],
            ">= 4 (PostgreSQL)" if network == "loopback" else ">= 6",
        )
    line(
        "chains and checkpoints verified",
        [writes(v, ["verified", "ok"]) for v in vendors],
        "True",
    )
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
