"""How far behind the outbox is, per destination (the auditor's page and outbox_status)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q

from outbox.models import Destination


@dataclass(frozen=True)
class DestinationStatus:
    name: str
    pending: int
    set_aside: int
    oldest_pending_at: datetime | None
    delivered: int
    last_delivered_at: datetime | None
    failures: int
    next_attempt_at: datetime | None
    last_error: str
    last_error_at: datetime | None

    def lag(self, now: datetime) -> timedelta:
        return now - self.oldest_pending_at if self.oldest_pending_at else timedelta(0)


def outbox_status() -> list[DestinationStatus]:
    live = Q(items__dead_at__isnull=True)
    rows = Destination.objects.order_by("name").annotate(
        pending=Count("items", filter=live),
        set_aside=Count("items", filter=Q(items__dead_at__isnull=False)),
        oldest=Min("items__created_at", filter=live),
    )
    return [
        DestinationStatus(
            name=row.name,
            pending=row.pending,
            set_aside=row.set_aside,
            oldest_pending_at=row.oldest,
            delivered=row.delivered,
            last_delivered_at=row.last_delivered_at,
            failures=row.failures,
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
            last_error_at=row.last_error_at,
        )
        for row in rows
    ]
