"""How far behind the outbox is, per destination (the auditor's page and outbox_status)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q

from audit.models import AuditEvent
from outbox import audit_stream
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
            pending=row.pending if row.kind != Destination.Kind.SYSLOG else _stream_pending(row),
            set_aside=row.set_aside,
            oldest_pending_at=row.oldest
            if row.kind != Destination.Kind.SYSLOG
            else _stream_oldest(row),
            delivered=row.delivered,
            last_delivered_at=row.last_delivered_at,
            failures=row.failures,
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
            last_error_at=row.last_error_at,
        )
        for row in rows
    ]


def _stream_pending(destination: Destination) -> int:
    return audit_stream.pending_count(destination)


def _stream_oldest(destination: Destination) -> datetime | None:
    """The time of the oldest audit event the destination has not received."""
    behind = list(audit_stream.chains_behind(destination)[:1000])
    if not behind:
        return None
    first_unsent = Q()
    for chain_id, sent, _head in behind:
        first_unsent |= Q(chain_id=chain_id, seq=sent + 1)
    return AuditEvent.objects.filter(first_unsent).aggregate(oldest=Min("occurred_at"))["oldest"]
