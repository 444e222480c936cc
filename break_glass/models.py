"""Break-glass access: a support agent's time-limited, justified access to an account."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class BreakGlassGrant(models.Model):
    """One emergency access to one account by one agent, for a stated reason and a short time.

    Opened when a caller cannot be verified by PIN; it shows the account's
    identity details and lets the agent force a PIN rotation. Every use is
    audited with this row's id, and a compliance officer reviews it afterwards.
    """

    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="break_glass_opened",
        help_text="The support agent who opened it.",
    )
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="break_glass_received",
        help_text="The account it opens.",
    )
    justification = models.TextField(help_text="Why, in the agent's words (required).")
    opened_at = models.DateTimeField(help_text="When it was opened.")
    expires_at = models.DateTimeField(help_text="When it stops working (at most 60 minutes).")
    expiry_recorded_at = models.DateTimeField(
        null=True, blank=True, help_text="When its expiry was written to the audit log."
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="break_glass_reviewed",
        help_text="The compliance officer who reviewed it.",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True, help_text="When it was reviewed.")

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("opened_at"))
                & Q(expires_at__lte=F("opened_at") + timedelta(minutes=60)),
                name="break_glass_at_most_an_hour",
            )
        ]

    def __str__(self) -> str:
        return f"Break-glass #{self.pk} by {self.agent_id} on {self.account_id}"
