"""`make bench` starts from a clean checkout: its settings load, and its generated log is
whole (every event counted by the dashboard's rollup) and verifies."""

import base64
import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


@pytest.mark.sqlite_only
def test_the_benchmark_settings_start_and_generate_a_log_that_verifies(tmp_path):
    database = tmp_path / "bench.sqlite3"
    env = {
        # Only what a shell has: the test settings put their own values in os.environ.
        **{k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ},
        "BENCH_DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AUDIT_HMAC_KEYS": f"bench:{_key()}",
        "FIELD_ENCRYPTION_KEYS": f"bench:{_key()}",
        "AUDIT_SIGNING_KEY": f"bench:{_key()}",
    }

    def run(*args: str) -> str:
        done = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
            [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    run("manage.py", "migrate", "--noinput", "-v0")
    assert '"generated": 500' in run("-m", "bench.audit", "generate", "500")
    with sqlite3.connect(database) as db:
        events, counted, by_day = db.execute(
            "SELECT (SELECT COUNT(*) FROM audit_auditevent),"
            " (SELECT SUM(count) FROM audit_auditeventcount),"
            " (SELECT SUM(count) FROM audit_auditeventdaycount)"
        ).fetchone()
    assert events > 500 and counted == events and by_day == events
    run("manage.py", "audit_verify")
