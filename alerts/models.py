"""Alerts: misuse or trouble that a rule noticed in the audit log, until someone looks."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Rule(models.TextChoices):
    """What an alert is about; docs/audit.md describes each rule and its setting."""

    AGENT_FAILED_VALIDATIONS = (
        "agent_failed_validations",
        "Support agent's failed PIN validations across accounts",
    )
    SUPPORT_PIN_VIEWS = "support_pin_views", "Support PIN viewed unusually often"
    BREAK_GLASS_UNREVIEWED = "break_glass_unreviewed", "Break-glass access not reviewed"
    SIGN_IN_LOCKOUTS = "sign_in_lockouts", "Burst of sign-in lockouts"
    VERIFICATION_FAILED = "verification_failed", "Audit log verification failed"
    STREAM_LAG = "stream_lag", "Audit stream behind"
    CHECKPOINT_LAG = "checkpoint_lag", "Audit events not signed"
    OFFICER_NAMED = "officer_named", "Compliance officer named by a practice admin"


# The rules whose `observed` is a number of events, which the stored ids may fall short
# of; the others measure seconds waited or hours left, or name one event.
COUNTING_RULES = frozenset(
    {Rule.AGENT_FAILED_VALIDATIONS, Rule.SUPPORT_PIN_VIEWS, Rule.SIGN_IN_LOCKOUTS}
)


class Alert(models.Model):
    """One occurrence a rule noticed: who or what it concerns, the events behind it, and
    whether someone has acknowledged it (with a note).

    `dedupe_key` names the occurrence (rule, subject, start of its window), so a
    rule evaluated twice, or by two processes at once, raises it once: the
    database refuses the second row. An alert is raised with its `alert.raised`
    audit event and its mail in one transaction.
    """

    rule = models.CharField(max_length=32, choices=Rule.choices, help_text="The rule that fired.")
    dedupe_key = models.CharField(
        max_length=200, help_text="Rule, subject and window start: one alert per occurrence."
    )
    subject_key = models.CharField(
        max_length=100,
        help_text="What the rule counted for (`user:12`, `practice:3`, `grant:5` ...).",
    )
    practice = models.ForeignKey(
        "accounts.Practice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The practice whose compliance officers see it; empty: platform auditors only.",
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The account it concerns (the agent, the PIN's owner), if one.",
    )
    subject_label = models.CharField(
        max_length=200, blank=True, help_text="Who or what it concerns, as shown when raised."
    )
    report_username = models.CharField(
        max_length=150, blank=True, help_text="Username for the Audit Log Report's user filter."
    )
    summary = models.CharField(max_length=500, help_text="What was noticed, in fixed wording.")
    observed = models.PositiveIntegerField(
        help_text="What was counted or measured (events, hours, seconds)."
    )
    threshold = models.PositiveIntegerField(help_text="The setting's value when it fired.")
    window_start = models.DateTimeField(help_text="First event behind it (UTC).")
    window_end = models.DateTimeField(
        help_text="End of the window it covers; for streaming lag, when last seen behind."
    )
    raised_at = models.DateTimeField(help_text="When it was raised (UTC).")
    event_ids = models.JSONField(
        default=list, blank=True, help_text="Ids of audit events behind it (the first 50)."
    )
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who acknowledged it.",
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True, help_text="When.")
    acknowledgement_note = models.TextField(
        blank=True, help_text="What the person who acknowledged it checked or did."
    )

    class Meta:
        ordering = ["-raised_at", "-id"]
        indexes = [
            # The list: one practice's (or every) open alerts, newest first.
            models.Index(
                fields=["practice", "acknowledged_at", "raised_at"], name="alert_practice_open_idx"
            ),
            models.Index(fields=["acknowledged_at", "raised_at"], name="alert_open_idx"),
            # A rule's previous alert for the same subject (where its next window starts).
            models.Index(fields=["rule", "subject_key", "window_end"], name="alert_subject_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                name="alert_once_per_occurrence",
                violation_error_message="This occurrence already raised an alert.",
            ),
            models.CheckConstraint(
                condition=Q(window_end__gte=models.F("window_start")),
                name="alert_window_ordered",
            ),
            # An acknowledgement is whole (who, when, note) or absent.
            models.CheckConstraint(
                condition=Q(
                    acknowledged_by__isnull=True,
                    acknowledged_at__isnull=True,
                    acknowledgement_note="",
                )
                | (
                    Q(acknowledged_by__isnull=False, acknowledged_at__isnull=False)
                    & ~Q(acknowledgement_note="")
                ),
                name="alert_acknowledgement_whole",
                violation_error_message="An acknowledgement records who, when and a note.",
            ),
        ]

    def __str__(self) -> str:
        return f"Alert #{self.pk} ({self.rule}) {self.subject_label}"

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None

    @property
    def events_left_out(self) -> bool:
        """More events were counted than the ids kept with it (EVENT_IDS_KEPT)."""
        return self.rule in COUNTING_RULES and len(self.event_ids) < self.observed
