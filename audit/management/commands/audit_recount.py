"""Count a month's audit events afresh into the dashboard's counters (docs/audit.md)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from audit import partitions, rollup
from audit.archive import ArchiveRefused, parse_month


class Command(BaseCommand):
    help = (
        "Delete the compliance dashboard's counters of --month (YYYY-MM, UTC) and count the "
        "month's events that the database holds into them again: after a month was restored "
        "into the event table, or to remove the counters of a month archived by a release "
        "that left them. Audit writers wait while it runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="The month to recount, YYYY-MM (UTC).")

    def handle(self, *args, **options):
        try:
            month = parse_month(options["month"])
        except ArchiveRefused as refused:
            raise CommandError(str(refused)) from None
        start, end = partitions.bounds(month)
        try:
            written = rollup.counters_recount(start=start, end=end)
        except DatabaseError as error:
            raise CommandError(f"Recount of {month:%Y-%m} stopped: {error}") from None
        self.stdout.write(
            f"Recounted {month:%Y-%m}: {written.quarter_hours} quarter-hour and {written.days} "
            "day counters written from the events the database holds."
        )
