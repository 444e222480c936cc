"""Archive one month of the audit log to a signed file and drop it from the database."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from audit.archive import ArchiveRefused, archive_due_month, audit_archive_month, parse_month
from audit.checkpoints import CheckpointRefused
from audit.integrity import audit_checkpoint_refusal_record


class Command(BaseCommand):
    help = (
        "Write the events of --month (YYYY-MM) to --to FILE, an evidence file that "
        "`audit_verify --file FILE --public-key KEY` verifies offline; verify it; then drop the "
        "month's partition. Refuses months younger than AUDIT_RETENTION_YEARS. With --due and "
        "--to-dir DIR instead, archives the oldest month the retention period lets go, if any, "
        "to DIR/audit-YYYY-MM.jsonl. PostgreSQL only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", help="The month to archive, YYYY-MM (UTC).")
        parser.add_argument("--to", help="The archive file to write (new).")
        parser.add_argument(
            "--due",
            action="store_true",
            help="Archive the oldest month past the retention period, if one is left.",
        )
        parser.add_argument("--to-dir", help="With --due: the folder to write its file in.")
        parser.add_argument(
            "--skip-undelivered",
            action="store_true",
            help="Archive the month even though the syslog destination has not received all "
            "of its events; they are then never sent, which the audit log and the destination "
            "record.",
        )

    def handle(self, *args, **options):
        month_given = options["month"] or options["to"]
        due_given = options["due"] or options["to_dir"]
        by_month = bool(options["month"] and options["to"]) and not due_given
        due = bool(options["due"] and options["to_dir"]) and not month_given
        if not (by_month or due):
            raise CommandError("Give either --month and --to, or --due and --to-dir.")
        label = options["month"] or "the month due"
        try:
            if due:
                month = archive_due_month()
                if month is None:
                    self.stdout.write("No month is due for archiving.")
                    return
                path = Path(options["to_dir"]) / f"audit-{month:%Y-%m}.jsonl"
                label = f"{month:%Y-%m}"
            else:
                month, path = parse_month(options["month"]), Path(options["to"])
            done = audit_archive_month(
                month=month, path=path, skip_undelivered=options["skip_undelivered"]
            )
        except ArchiveRefused as refused:
            raise CommandError(str(refused)) from None
        except CheckpointRefused as refused:
            audit_checkpoint_refusal_record(refused)  # the Integrity page, and its alert
            raise CommandError(
                f"Archive of {label} stopped, nothing dropped from the database: the log no longer "
                f"matches its last signed checkpoint, at {refused.problem.where()}: "
                f"{refused.problem.reason}."
            ) from None
        except DatabaseError as error:
            raise CommandError(f"Archive of {label} stopped: {error}") from None
        self.stdout.write(
            f"Archived {done.month:%Y-%m}: {done.events} events of {done.chains} chains written "
            f"to {done.path} (SHA-256 {done.sha256}), verified against checkpoint "
            f"{done.checkpoint}, and removed from the database; checkpoint "
            f"{done.boundary_checkpoint} signs the chains' new starts."
        )
