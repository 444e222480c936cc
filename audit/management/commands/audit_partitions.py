"""Create the audit log's monthly partitions ahead of time: run daily (cron, docs/audit.md)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from audit import partitions
from audit.archive import audit_partitions_create


class Command(BaseCommand):
    help = (
        "PostgreSQL: create this month's audit event partition and the next "
        "AUDIT_PARTITION_MONTHS_AHEAD months' (default 3), moving any of their events out of the "
        "default partition. Run it daily. SQLite keeps one table: nothing to do."
    )

    def handle(self, *args, **options):
        if not partitions.supported():
            self.stdout.write("SQLite keeps the audit log in one table: no partitions to create.")
            return
        try:
            created = audit_partitions_create()
        except DatabaseError as error:
            raise CommandError(f"Could not create the audit partitions: {error}") from None
        for item in created:
            self.stdout.write(
                f"Created {item.name} for {item.month:%Y-%m} ({item.moved} events moved into it "
                "from the default partition)."
            )
        if not created:
            self.stdout.write(
                f"Every partition up to {partitions.months_ahead()} months ahead exists."
            )
