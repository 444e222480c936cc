"""Suite-wide pytest hooks: database-specific selection and the CI no-skip rule."""

import os

import pytest
from django.conf import settings


def _database_vendor() -> str:
    engine = settings.DATABASES["default"]["ENGINE"]
    return "postgresql" if "postgresql" in engine else "sqlite"


def pytest_report_header(config) -> str:
    replica = ", with a read replica" if _replica_configured() else ""
    return f"database: {_database_vendor()} ({settings.DATABASES['default']['ENGINE']}){replica}"


def _replica_configured() -> bool:
    return "replica" in settings.DATABASES


def pytest_collection_modifyitems(config, items):
    """Deselect (not skip) tests for the other database: CI runs the suite on both.

    Tests marked `replica` need a primary and a streaming standby
    (DATABASE_REPLICA_URL, `.ci/replica-pg`): without one they are deselected
    from a whole run, and asking for them (`-m replica`) is an error, never a
    run that passes by testing nothing.
    """
    other = {"sqlite_only" if _database_vendor() == "postgresql" else "postgres_only"}
    if not _replica_configured():
        markexpr = config.getoption("markexpr", "") or ""
        if "replica" in markexpr and "not replica" not in markexpr:
            raise pytest.UsageError(
                "-m replica needs a streaming replica: set DATABASE_REPLICA_URL "
                "(`.ci/replica-pg run -- make test PYTEST_ARGS='-m replica'` starts a pair)"
            )
        other.add("replica")
    selected, deselected = [], []
    for item in items:
        wrong = any(item.get_closest_marker(name) for name in other)
        (deselected if wrong else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    # Kept on the item so fixtures (browser screenshots) can see whether the test failed.
    setattr(item, f"rep_{report.when}", report)
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        # In CI every test must run: a skip means a missing dependency, which is a failure.
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"
    return report
