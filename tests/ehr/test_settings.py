import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from ehr.settings import check_secret_key, env_bool, env_int

ROOT = Path(__file__).resolve().parents[2]
STRONG = "k" * 20 + "Zx9-_qLmNoPq" * 4


def test_missing_secret_key_is_refused_in_development_and_production():
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set"):
        check_secret_key("", debug=True)
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set"):
        check_secret_key("", debug=False)


@pytest.mark.parametrize("key", ["short", "django-insecure-" + "abcdefgh" * 8, "a" * 80])
def test_weak_secret_key_is_refused_in_production_only(key):
    with pytest.raises(ImproperlyConfigured, match="too weak"):
        check_secret_key(key, debug=False)
    check_secret_key(key, debug=True)


def test_strong_secret_key_is_accepted_in_production():
    check_secret_key(STRONG, debug=False)


def test_env_helpers_reject_garbage(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG must be true or false"):
        env_bool("X_FLAG", False)
    monkeypatch.setenv("X_NUM", "12a")
    with pytest.raises(ImproperlyConfigured, match="X_NUM must be a whole number"):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_FLAG", " Off ")
    assert env_bool("X_FLAG", True) is False


def _start(env_overrides: dict, code: str = "print('started')") -> subprocess.CompletedProcess:
    """Start a fresh interpreter with the real settings and the given environment."""
    unset = {
        "SECRET_KEY",
        "DEBUG",
        "DATABASE_URL",
        "DATABASE_REPLICA_URL",
        "DJANGO_ALLOW_ASYNC_UNSAFE",
    }
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update({"ENV_FILE": "", "DJANGO_SETTINGS_MODULE": "ehr.settings", **env_overrides})
    script = f"import django; django.setup(); {code}"
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_process_refuses_to_start_without_a_real_secret_key():
    result = _start({"DEBUG": "false"})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr

    result = _start({"DEBUG": "false", "SECRET_KEY": "django-insecure-changeme"})
    assert result.returncode != 0
    assert "too weak for production" in result.stderr

    result = _start({"DEBUG": "false", "SECRET_KEY": STRONG})
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_database_url_selects_postgresql_through_psycopg3():
    result = _start(
        {"SECRET_KEY": STRONG, "DATABASE_URL": "postgres://u:p@127.0.0.1:5999/ehr"},
        code=(
            "from django.conf import settings; from django.db import connection; "
            "print(settings.DATABASES['default']['ENGINE'], connection.Database.__name__)"
        ),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "psycopg"]


def test_without_database_url_the_default_is_a_sqlite_file_in_the_project():
    result = _start(
        {"SECRET_KEY": STRONG},
        code="from django.conf import settings; print(settings.DATABASES['default']['NAME'])",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(ROOT / "db.sqlite3")


def test_a_replica_url_adds_a_read_only_alias_beside_the_primary():
    result = _start(
        {
            "SECRET_KEY": STRONG,
            "DATABASE_URL": "postgres://u:p@127.0.0.1:5999/ehr",
            "DATABASE_REPLICA_URL": "postgres://u:p@10.0.0.2:5432/ehr",
        },
        code=(
            "import json; from django.conf import settings as s; r = s.DATABASES['replica']; "
            "print(json.dumps([r['HOST'], r['PORT'], r['OPTIONS'], r['TEST']['MIRROR'], "
            "s.REPORTING_DATABASE, s.DATABASE_ROUTERS, s.DATABASE_REPLICA_WAIT_SECONDS]))"
        ),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        "10.0.0.2",
        5432,
        {"prepare_threshold": 5, "connect_timeout": 2},
        "default",
        "replica",
        ["ehr.db.PrimaryRouter"],
        3,
    ]


def test_without_a_replica_url_there_is_no_replica_alias():
    result = _start(
        {"SECRET_KEY": STRONG, "DATABASE_URL": "postgres://u:p@127.0.0.1:5999/ehr"},
        code="from django.conf import settings as s; print(sorted(s.DATABASES), s.REPORTING_DATABASE)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['default']", "default"]


@pytest.mark.parametrize(
    ("primary", "replica", "message"),
    [
        ("", "postgres://u@10.0.0.2/ehr", "needs a PostgreSQL DATABASE_URL"),
        ("postgres://u@127.0.0.1/ehr", "sqlite:////tmp/x.db", "must be a PostgreSQL URL"),
    ],
)
def test_a_replica_needs_postgresql_on_both_sides(primary, replica, message):
    env = {"SECRET_KEY": STRONG, "DATABASE_REPLICA_URL": replica}
    if primary:
        env["DATABASE_URL"] = primary
    result = _start(env)
    assert result.returncode != 0
    assert message in result.stderr


def test_storage_is_utc(settings):
    assert settings.TIME_ZONE == "UTC"
    assert settings.USE_TZ is True


@pytest.mark.parametrize("limits", [("0", "5"), ("5", "-1"), ("five", "5")])
def test_bad_sign_in_lockout_limits_refuse_to_start(limits):
    result = _start(
        {
            "SECRET_KEY": STRONG,
            "LOGIN_FAILURE_LIMIT": limits[0],
            "LOGIN_FAILURE_LIMIT_USERNAME": limits[1],
        }
    )
    assert result.returncode != 0
    assert "LOGIN_FAILURE_LIMIT" in result.stderr
