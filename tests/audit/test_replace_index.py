"""Migration 0010 replaces an index of the monthly partitioned event table (PostgreSQL).

It must go on after a run that stopped (an index already replaced is left alone),
and the statements that lock the table for a moment must give up after a short
wait, and try again, rather than queue every writer behind a long reader.
"""

import threading
import time
from datetime import date
from importlib import import_module

import pytest
from django.db import OperationalError, connection, transaction

from audit import partitions
from audit.models import AuditEvent

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

migration = import_module("audit.migrations.0010_count_indexes")
REPLACED = migration.Migration.operations[1]  # (practice, account, ...) gains the actor
OLD, NEW = REPLACED.old, REPLACED.new
NEW_COLUMNS = ["practice_id", "account_id", "occurred_at", "id", "actor_id"]
OLD_COLUMNS = ["practice_id", "account_id", "occurred_at", "id"]


def columns(name: str) -> list[str] | None:
    with connection.cursor() as cursor:
        return migration._index_columns(cursor, name)


def index_oid(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)::oid", [name])
        return cursor.fetchone()[0]


def replace(old, new) -> None:
    with connection.schema_editor(atomic=False) as editor:
        migration._replace_postgres(editor, AuditEvent, old, new)


@pytest.fixture
def put_back():
    """Leave the index as the migrations made it, whatever the test did to it."""
    yield
    if columns(NEW.name) != NEW_COLUMNS:
        replace(OLD, NEW)


def hold_the_table(seconds: float, held: threading.Event) -> threading.Thread:
    """A writer's lock on the event table, held from another connection for `seconds`."""

    def hold():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("LOCK TABLE audit_auditevent IN ROW EXCLUSIVE MODE")
                held.set()
                time.sleep(seconds)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    return thread


def test_the_index_is_replaced_both_ways_and_a_second_run_leaves_it(put_back):
    assert columns(NEW.name) == NEW_COLUMNS
    replace(NEW, OLD)
    assert columns(OLD.name) == OLD_COLUMNS
    replace(OLD, NEW)
    assert columns(NEW.name) == NEW_COLUMNS
    before = index_oid(NEW.name)
    replace(OLD, NEW)  # as after a run that stopped at a later step
    assert index_oid(NEW.name) == before
    assert columns(f"{NEW.name}_new") is None


def test_a_brief_lock_gives_up_soon_and_is_tried_again(put_back, monkeypatch):
    replace(NEW, OLD)
    monkeypatch.setattr(migration, "LOCK_TIMEOUT", "100ms")
    monkeypatch.setattr(migration, "ATTEMPTS", 1)
    thread = hold_the_table(5, threading.Event())
    with pytest.raises(OperationalError):
        replace(OLD, NEW)
    assert thread.is_alive()  # it gave up while the writer still held the table
    thread.join()
    monkeypatch.setattr(migration, "ATTEMPTS", 30)
    thread = hold_the_table(1.5, threading.Event())
    replace(OLD, NEW)  # the same statements, tried again until the lock is gone
    thread.join()
    assert columns(NEW.name) == NEW_COLUMNS


def test_a_run_that_stopped_before_the_drop_goes_on(put_back, monkeypatch):
    replace(NEW, OLD)
    brief = migration._briefly

    def stop_at_the_drop(cursor, sql):
        if sql.startswith("DROP INDEX"):
            raise OperationalError("stopped")
        brief(cursor, sql)

    monkeypatch.setattr(migration, "_briefly", stop_at_the_drop)
    with pytest.raises(OperationalError):
        replace(OLD, NEW)  # every partition's new index built and attached
    assert columns(OLD.name) == OLD_COLUMNS
    # A month created meanwhile gets the parent's new index, under a name of its own.
    month = date(2090, 1, 1)
    partitions.partition_create(month)
    try:
        monkeypatch.setattr(migration, "_briefly", brief)
        replace(OLD, NEW)  # keeps what is attached, drops, renames
        assert columns(NEW.name) == NEW_COLUMNS
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {partitions.partition_name(month)}")


def test_the_old_index_stays_until_the_new_one_covers_every_partition(put_back, monkeypatch):
    replace(NEW, OLD)
    brief = migration._briefly
    skipped = []

    def skip_one_attach(cursor, sql):
        if "ATTACH PARTITION" in sql and not skipped:
            skipped.append(sql)
            return
        brief(cursor, sql)

    monkeypatch.setattr(migration, "_briefly", skip_one_attach)
    with pytest.raises(RuntimeError, match="does not cover every partition"):
        replace(OLD, NEW)
    assert skipped and columns(OLD.name) == OLD_COLUMNS
