"""Break-glass access: a support agent's time-limited, justified access to an account."""

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class ReviewOutcome(models.TextChoices):
    """What a reviewer concluded about a break-glass access."""

    JUSTIFIED = "justified", "Justified"
    NOT_JUSTIFIED = "not_justified", "Not justified"
    # Grants reviewed before reviews asked for an outcome and a note (never chosen now).
    UNRECORDED = "unrecorded", "Not recorded"


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
    review_outcome = models.CharField(
        max_length=20,
        blank=True,
        choices=ReviewOutcome.choices,
        help_text="The reviewer's conclusion; empty until reviewed.",
    )
    review_note = models.TextField(
        blank=True, help_text="What the reviewer checked and why they concluded so."
    )

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("opened_at"))
                & Q(expires_at__lte=F("opened_at") + timedelta(minutes=60)),
                name="break_glass_at_most_an_hour",
            ),
            # A review is whole (who, when, outcome, note) or absent.
            models.CheckConstraint(
                condition=Q(
                    reviewed_at__isnull=True,
                    reviewed_by__isnull=True,
                    review_outcome="",
                    review_note="",
                )
                | (
                    Q(reviewed_at__isnull=False, reviewed_by__isnull=False)
                    & ~Q(review_outcome="")
                    & ~Q(review_note="")
                ),
                name="break_glass_review_whole",
                violation_error_message="A review records who, when, an outcome and a note.",
            ),
        ]

    def __str__(self) -> str:
        return f"Break-glass #{self.pk} by {self.agent_id} on {self.account_id}"

    @property
    def is_open(self) -> bool:
        """Whether it still works: before its time is up, and no end written for it yet.

        Once the log says it expired or ended, it is over, even if a server whose clock
        ran ahead wrote the expiry early: access never outlasts what the log says.
        """
        return self.expiry_recorded_at is None and self.expires_at > timezone.now()

    @property
    def report_query(self) -> str:
        """The Audit Log Report's query string for what was done under this access: the
        account's break-glass events on the days it spanned, in the reader's time zone
        (the active one, as the report reads dates)."""
        return urlencode(
            {
                "break_glass": "on",
                "username": self.account.username,
                "date_from": timezone.localdate(self.opened_at).isoformat(),
                "date_to": timezone.localdate(self.expires_at).isoformat(),
            }
        )
