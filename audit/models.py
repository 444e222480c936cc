"""The audit trail: append-only, hash-chained events."""

from django.conf import settings
from django.db import models

from audit.kinds import Action, EventType

GENESIS_HASH = "0" * 64  # prev_hash of the first event ever written


class AuditEvent(models.Model):
    """One thing that happened: who did what to which account, when and from where.

    Rows are append-only: the database refuses UPDATE and DELETE (triggers from
    migration 0002), except that deleting a user may set `actor`/`account` to
    NULL; `actor_ref`/`account_ref` keep the ids inside the hash. `row_hash` is
    HMAC-SHA-256 over the row's content and the previous row's hash (see
    `audit/chain.py`); `seq` numbers the chain without gaps.
    """

    seq = models.BigIntegerField(unique=True, help_text="Position in the hash chain, 1, 2, 3 ...")
    occurred_at = models.DateTimeField(help_text="When it happened (UTC).")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text="Who acted; empty for the system (automatic rotation) and anonymous requests.",
    )
    actor_ref = models.BigIntegerField(
        null=True, blank=True, help_text="Id of the acting user when written; survives deletion."
    )
    actor_label = models.CharField(
        max_length=200, blank=True, help_text="Who acted, as shown then: `496094 (dorothy Ludwig)`."
    )
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text="The account the event concerns.",
    )
    account_ref = models.BigIntegerField(
        null=True, blank=True, help_text="Id of the account concerned when written."
    )
    account_label = models.CharField(
        max_length=200, blank=True, help_text="The account concerned, as shown then."
    )
    practice = models.ForeignKey(
        "accounts.Practice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text="The practice whose compliance officers see this event.",
    )
    patient_id = models.CharField(
        max_length=64, blank=True, help_text="The patient concerned, if any (from other modules)."
    )
    patient_name = models.CharField(
        max_length=200, blank=True, help_text="The patient's name when the event was written."
    )
    kind = models.CharField(max_length=64, help_text="Event kind code (audit/kinds.py).")
    type = models.CharField(max_length=16, choices=EventType.choices, help_text="Type column.")
    action = models.CharField(max_length=16, choices=Action.choices, help_text="Action column.")
    details = models.CharField(max_length=1000, help_text="Details column, in the seed's wording.")
    ip = models.GenericIPAddressField(
        null=True, blank=True, help_text="Client IP (IPv4 or IPv6); empty for the system."
    )
    user_agent = models.CharField(max_length=256, blank=True, help_text="Truncated User-Agent.")
    request_id = models.CharField(
        max_length=32, blank=True, help_text="X-Request-ID of the request."
    )
    data = models.JSONField(
        default=dict, blank=True, help_text="Structured facts (ids, counts); never secrets."
    )
    key_id = models.CharField(max_length=16, help_text="Which AUDIT_HMAC_KEYS key signed the row.")
    prev_hash = models.CharField(max_length=64, help_text="row_hash of the previous event.")
    row_hash = models.CharField(max_length=64, help_text="HMAC-SHA-256 of this row and prev_hash.")

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # One index per way the report narrows the log, each ending in the sort key, so
            # a page is one range scan of its rows, newest first (docs/audit.md).
            models.Index(fields=["occurred_at", "id"], name="audit_time_idx"),
            models.Index(fields=["practice", "occurred_at", "id"], name="audit_practice_time_idx"),
            models.Index(fields=["actor", "occurred_at"], name="audit_actor_time_idx"),
            models.Index(fields=["account", "occurred_at"], name="audit_account_time_idx"),
            models.Index(
                fields=["practice", "patient_id", "occurred_at"], name="audit_patient_time_idx"
            ),
            # The username filter reads the acting user's and the account's rows apart.
            models.Index(
                fields=["practice", "actor", "occurred_at", "id"], name="audit_practice_actor_idx"
            ),
            models.Index(
                fields=["practice", "account", "occurred_at", "id"],
                name="audit_practice_account_idx",
            ),
            models.Index(
                fields=["practice", "type", "occurred_at", "id"], name="audit_practice_type_idx"
            ),
            models.Index(fields=["type", "occurred_at", "id"], name="audit_type_time_idx"),
            # "Break-glass only" reads each break-glass kind apart (audit/forms.py).
            models.Index(
                fields=["practice", "kind", "occurred_at", "id"], name="audit_practice_kind_idx"
            ),
            models.Index(fields=["kind", "occurred_at", "id"], name="audit_kind_time_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="audit_seq_positive"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.occurred_at:%Y-%m-%d %H:%M:%S} {self.details}"


class AuditChainHead(models.Model):
    """The newest end of the chain (one row). Writers lock it, which orders the chain."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0, help_text="seq of the newest event.")
    row_hash = models.CharField(
        max_length=64, default=GENESIS_HASH, help_text="row_hash of the newest event."
    )

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="audit_head_single")]

    def __str__(self) -> str:
        return f"Audit chain head at seq {self.seq}"


class AuditChainAnchor(models.Model):
    """A signed starting point for verification after older events were archived.

    `prev_hash` is the hash the first kept event points back to; `signature`
    (HMAC with the audit key) stops anyone without the key from planting one.
    """

    seq = models.BigIntegerField(unique=True, help_text="seq of the first event kept.")
    prev_hash = models.CharField(max_length=64, help_text="That event's prev_hash.")
    archived_through = models.DateTimeField(help_text="Events before this were archived.")
    key_id = models.CharField(max_length=16, help_text="Key that signed the anchor.")
    signature = models.CharField(max_length=64, help_text="HMAC over seq and prev_hash.")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the anchor was set.")

    def __str__(self) -> str:
        return f"Audit chain anchor at seq {self.seq}"


class AuditedPatient(models.Model):
    """A patient who appears in a practice's audit log: the report's Patient's Name list.

    Kept beside the log so the dropdown does not scan a million events.
    """

    practice = models.ForeignKey(
        "accounts.Practice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Practice of the events.",
    )
    patient_id = models.CharField(max_length=64, help_text="Patient identifier.")
    patient_name = models.CharField(max_length=200, help_text="Name as last recorded.")

    class Meta:
        ordering = ["patient_name"]
        constraints = [
            models.UniqueConstraint(fields=["practice", "patient_id"], name="audit_patient_unique")
        ]

    def __str__(self) -> str:
        return f"{self.patient_name} ({self.patient_id})"
