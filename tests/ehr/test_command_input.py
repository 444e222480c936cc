"""Management commands given bad input: one clear line, a failure, and nothing changed."""

import pytest
from django.core.management import CommandError, call_command

from audit import offline
from audit.models import AuditEvent


@pytest.mark.parametrize(
    ("command", "arguments", "message"),
    [
        ("rotate_field_keys", ["--batch-size", "0"], "from 1 to 100000, not 0"),
        ("rotate_field_keys", ["--batch-size", "-5"], "from 1 to 100000, not -5"),
        ("rotate_field_keys", ["--batch-size", "many"], "'many' is not a whole number"),
        ("outbox_status", ["--max-age", "0"], "from 1 to 1e\\+07, not 0"),
        ("outbox_worker", ["--interval", "-1"], "from 0.1 to 3600, not -1"),
        ("audit_recount", ["--month", "9999-12"], "must be before 9999-12"),
    ],
)
def test_a_bad_value_is_refused_in_one_line(db, command, arguments, message):
    before = AuditEvent.objects.count()
    with pytest.raises(CommandError, match=message):
        call_command(command, *arguments)
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("first_line", ["[1, 2]", '"x"', "3", '{"format": []}'])
def test_an_evidence_file_of_the_wrong_shape_is_refused_in_one_line(
    db, tmp_path, first_line, capsys
):
    evidence = tmp_path / "evidence.jsonl"
    evidence.write_text(first_line + "\n")
    keys = tmp_path / "key.txt"
    call_command("audit_public_key", stdout=keys.open("w"))
    with pytest.raises(CommandError, match=r"not|malformed"):
        call_command("audit_verify", "--file", str(evidence), "--public-key", str(keys))
    assert offline.main([str(evidence), "--public-key", str(keys)]) == 1
    assert "Evidence file not verified" in capsys.readouterr().err


def test_the_offline_verifier_says_when_the_file_is_missing(db, tmp_path, capsys):
    keys = tmp_path / "key.txt"
    call_command("audit_public_key", stdout=keys.open("w"))
    assert offline.main([str(tmp_path / "missing.jsonl"), "--public-key", str(keys)]) == 2
    assert "Evidence file: No such file or directory" in capsys.readouterr().err
