"""What must leave the system, kept in the database until it has.

An item is written in the transaction of the action that causes it, so it
commits and rolls back with that action; `manage.py outbox_worker` delivers it
afterwards (docs/outbox.md).
"""

import uuid

from django.db import models
from django.utils import timezone


class Destination(models.Model):
    """Somewhere items go (the mail server), with its delivery state.

    A worker takes a destination by setting `leased_until` (after locking its row
    with SKIP LOCKED on PostgreSQL) and delivers its items in order; other workers
    skip it until the lease ends, so no item is sent twice at once, and a worker
    that dies holds it no longer than the lease.
    """

    class Kind(models.TextChoices):
        MAIL = "mail", "Mail"
        SYSLOG = "syslog", "Audit events over TLS syslog"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    leased_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="After a failure: not before this (back-off)."
    )
    failures = models.IntegerField(default=0, help_text="Failed attempts in a row.")
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    delivered = models.BigIntegerField(default=0, help_text="Items delivered so far.")
    last_delivered_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class OutboxItem(models.Model):
    """One thing to deliver; deleted once delivered. The payload is sealed (ehr/crypto.py)."""

    destination = models.ForeignKey(Destination, on_delete=models.PROTECT, related_name="items")
    created_at = models.DateTimeField(default=timezone.now)
    token = models.UUIDField(default=uuid.uuid4, editable=False, help_text="Binds the payload.")
    payload = models.TextField(help_text="Sealed JSON: a mail's recipients, subject and text.")
    attempts = models.IntegerField(default=0)
    dead_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the item can never be sent (it will not open)."
    )

    class Meta:
        indexes = [models.Index(fields=["destination", "id"], name="outbox_item_order_idx")]

    def __str__(self) -> str:
        return f"Outbox item {self.pk} for {self.destination_id}"


class AuditCursor(models.Model):
    """How far a destination has received one audit chain: every event up to `seq`.

    Audit events need no outbox rows of their own: each is already committed,
    with its action, in an append-only table, in order within its chain. The
    worker sends each chain's events after the cursor, in order, and moves the
    cursor once the receiver has them.
    """

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="+")
    chain = models.ForeignKey("audit.AuditChain", on_delete=models.CASCADE, related_name="+")
    seq = models.BigIntegerField(help_text="The last position delivered.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["destination", "chain"], name="outbox_cursor_unique")
        ]

    def __str__(self) -> str:
        return f"{self.destination_id} has chain {self.chain_id} to {self.seq}"
