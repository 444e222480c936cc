"""Print what waits in the outbox; exit non-zero when it is too far behind (for monitoring)."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ehr.arguments import number_between
from outbox.selectors import outbox_status


class Command(BaseCommand):
    help = (
        "Print, per destination, what is pending, the oldest undelivered item, the last error "
        "and the delivered count. Exits 1 when the oldest pending item is older than --max-age "
        "seconds, or when items were set aside as undeliverable."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--max-age", type=number_between(1, 10**7), default=300, help="Seconds (default 300)."
        )

    def handle(self, *args, **options):
        now = timezone.now()
        late = []
        statuses = outbox_status()
        if not statuses:
            self.stdout.write("Nothing has gone through the outbox yet.")
        for status in statuses:
            lag = int(status.lag(now).total_seconds())
            line = (
                f"{status.name}: {status.pending} pending (oldest {lag}s), "
                f"{status.delivered} delivered"
            )
            if status.last_delivered_at:
                line += f", last at {status.last_delivered_at:%Y-%m-%d %H:%M:%S} UTC"
            if status.failures:
                line += (
                    f"; {status.failures} failed attempts in a row, next at "
                    f"{status.next_attempt_at:%H:%M:%S} UTC"
                )
            if status.last_error:
                line += f"; last error ({status.last_error_at:%Y-%m-%d %H:%M:%S} UTC): {status.last_error}"
            if status.set_aside:
                line += f"; {status.set_aside} set aside as undeliverable"
            self.stdout.write(line)
            if lag > options["max_age"] or status.set_aside:
                late.append(status.name)
        if late:
            raise CommandError(f"Outbox behind or blocked: {', '.join(late)}.")
