"""On SQLite the log stays in one table: nothing is partitioned or archived, and the commands say so."""

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent

pytestmark = pytest.mark.sqlite_only


def test_archiving_is_refused_on_sqlite(db, tmp_path):
    with pytest.raises(CommandError, match="Archiving needs PostgreSQL"):
        call_command("audit_archive", "--month", "2001-01", "--to", str(tmp_path / "a.jsonl"))
    with pytest.raises(CommandError, match="Archiving needs PostgreSQL"):
        call_command("audit_archive", "--due", "--to-dir", str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_partitions_are_a_no_op_on_sqlite(db, capsys):
    call_command("audit_partitions")
    assert "SQLite keeps the audit log in one table" in capsys.readouterr().out
    assert not AuditEvent.objects.exists()
