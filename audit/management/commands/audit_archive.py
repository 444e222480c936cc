"""Archive one month of the audit log to a signed file and drop it from the database."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from audit.archive import ArchiveRefused, audit_archive_month, parse_month


class Command(BaseCommand):
    help = (
        "Write the events of --month (YYYY-MM) to --to FILE, an evidence file that "
        "`audit_verify --file FILE --public-key KEY` verifies offline; verify it; then drop the "
        "month's partition. Refuses months younger than AUDIT_RETENTION_YEARS. PostgreSQL only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="The month to archive, YYYY-MM (UTC).")
        parser.add_argument("--to", required=True, help="The archive file to write (new).")
        parser.add_argument(
            "--skip-undelivered",
            action="store_true",
            help="Archive the month even though the syslog destination has not received all "
            "of its events; they are then never sent, which the audit log and the destination "
            "record.",
        )

    def handle(self, *args, **options):
        try:
            month = parse_month(options["month"])
            done = audit_archive_month(
                month=month,
                path=Path(options["to"]),
                skip_undelivered=options["skip_undelivered"],
            )
        except ArchiveRefused as refused:
            raise CommandError(str(refused)) from None
        except DatabaseError as error:
            raise CommandError(f"Archive of {options['month']} stopped: {error}") from None
        self.stdout.write(
            f"Archived {done.month:%Y-%m}: {done.events} events of {done.chains} chains written "
            f"to {done.path} (SHA-256 {done.sha256}), verified against checkpoint "
            f"{done.checkpoint}, and removed from the database; checkpoint "
            f"{done.boundary_checkpoint} signs the chains' new starts."
        )
