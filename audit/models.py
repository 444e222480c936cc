"""The audit trail: append-only, hash-chained events."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from audit.hashing import GENESIS_HASH
from audit.kinds import Action, EventType


class AuditEvent(models.Model):
    """One thing that happened: who did what to which account, when and from where.

    Rows are append-only: the database refuses UPDATE and DELETE (triggers, made by
    migrations 0002, 0003 and 0006), except that deleting a user may set `actor`/`account` to
    NULL; `actor_ref`/`account_ref` keep the ids inside the hash. Each event sits
    in one chain (its practice's, or the platform's) at position `seq`, without
    gaps; `row_hash` is the public SHA-256 link over its content and the previous
    event's hash (`audit/hashing.py`), and `mac` is keyed (`audit/chain.py`).
    """

    chain = models.ForeignKey(
        "AuditChain",
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # the (chain, seq) constraint serves it
        help_text="The hash chain the event belongs to.",
    )
    seq = models.BigIntegerField(help_text="Position in its chain, 1, 2, 3 ...")
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
    key_id = models.CharField(max_length=16, help_text="Which AUDIT_HMAC_KEYS key made `mac`.")
    prev_hash = models.CharField(max_length=64, help_text="row_hash of the previous event.")
    row_hash = models.CharField(max_length=64, help_text="SHA-256 link of this row and prev_hash.")
    mac = models.CharField(max_length=64, help_text="HMAC-SHA-256 with an AUDIT_HMAC_KEYS key.")

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # One index per way the report narrows the log, each ending in the sort key, so
            # a page is one range scan of its rows, newest first (docs/audit.md).
            models.Index(fields=["occurred_at", "id"], name="audit_time_idx"),
            models.Index(fields=["practice", "occurred_at", "id"], name="audit_practice_time_idx"),
            models.Index(fields=["actor", "occurred_at"], name="audit_actor_time_idx"),
            # The acting user last: the report's count of a username reads the account's
            # rows that another user acted on from the index alone (`count_parts`).
            models.Index(
                fields=["account", "occurred_at", "id", "actor"], name="audit_account_time_idx"
            ),
            models.Index(
                fields=["practice", "patient_id", "occurred_at"], name="audit_patient_time_idx"
            ),
            # The username filter reads the acting user's and the account's rows apart.
            models.Index(
                fields=["practice", "actor", "occurred_at", "id"], name="audit_practice_actor_idx"
            ),
            models.Index(
                fields=["practice", "account", "occurred_at", "id", "actor"],
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
            models.UniqueConstraint(fields=["chain", "seq"], name="audit_chain_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"#{self.chain_id}.{self.seq} {self.occurred_at:%Y-%m-%d %H:%M:%S} {self.details}"


class AuditChain(models.Model):
    """One hash chain and its head: one per practice, one for the platform, and the legacy one.

    Writers of a chain lock its row (`SELECT ... FOR UPDATE`) until their
    transaction ends, so one practice's events take turns and different
    practices never wait on each other. `seq`/`row_hash` are the newest event's;
    `start_seq` is the first event kept (1 unless older events were archived),
    whose `prev_hash` is `start_hash`.

    The legacy chain holds the events written before chains were split (one chain
    for the whole platform); it takes no new events.
    """

    class Kind(models.TextChoices):
        PRACTICE = "practice", "Practice"
        PLATFORM = "platform", "Platform"
        LEGACY = "legacy", "Before chains per practice"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    practice = models.OneToOneField(
        "accounts.Practice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The practice whose events this chain holds; empty for platform and legacy.",
    )
    seq = models.BigIntegerField(default=0, help_text="seq of the newest event (0: none yet).")
    row_hash = models.CharField(
        max_length=64, default=GENESIS_HASH, help_text="row_hash of the newest event."
    )
    start_seq = models.BigIntegerField(default=1, help_text="seq of the first event kept.")
    start_hash = models.CharField(
        max_length=64, default=GENESIS_HASH, help_text="prev_hash of the first event kept."
    )
    start_mac = models.CharField(
        max_length=64,
        default=GENESIS_HASH,
        help_text="Legacy chain only: the keyed hash the first kept event points back to.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind="practice", practice__isnull=False)
                    | (models.Q(kind__in=["platform", "legacy"], practice__isnull=True))
                ),
                name="audit_chain_kind_practice",
            ),
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(kind__in=["platform", "legacy"]),
                name="audit_chain_one_platform_one_legacy",
            ),
        ]

    def __str__(self) -> str:
        owner = f"practice {self.practice_id}" if self.practice_id else self.kind
        return f"Audit chain {self.pk} ({owner}) at seq {self.seq}"


class AuditCheckpoint(models.Model):
    """A signed statement of every chain's head at one moment (see docs/audit.md).

    Signed with Ed25519 by `AUDIT_SIGNING_KEY`, so anyone with the public key can
    check it; each names the one before it, so they form a chain of their own.
    The heads themselves are `AuditCheckpointLeaf` rows, written only for chains
    that moved since the previous checkpoint.
    """

    number = models.BigIntegerField(unique=True, help_text="1, 2, 3 ...")
    created_at = models.DateTimeField(help_text="When it was taken (UTC).")
    prev_hash = models.CharField(max_length=64, help_text="Hash of the previous checkpoint.")
    merkle_root = models.CharField(max_length=64, help_text="Merkle root over every chain's head.")
    chain_count = models.IntegerField(help_text="How many chains the root covers.")
    key_id = models.CharField(max_length=16, help_text="Which signing key signed it.")
    signature = models.CharField(max_length=100, help_text="Ed25519 signature, base64url.")
    checkpoint_hash = models.CharField(max_length=64, help_text="SHA-256 of the signed message.")

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"Audit checkpoint {self.number} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class AuditCheckpointLeaf(models.Model):
    """One chain's head as a checkpoint saw it (only where it moved since the last one)."""

    checkpoint = models.ForeignKey(AuditCheckpoint, on_delete=models.PROTECT, related_name="+")
    chain = models.ForeignKey(AuditChain, on_delete=models.PROTECT, related_name="+")
    start_seq = models.BigIntegerField()
    start_hash = models.CharField(max_length=64)
    seq = models.BigIntegerField()
    row_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain", "checkpoint"], name="audit_leaf_unique")
        ]

    def __str__(self) -> str:
        return f"Chain {self.chain_id} at seq {self.seq} in checkpoint {self.checkpoint_id}"


class AuditedPatient(models.Model):
    """A patient who appears in a practice's audit log: what the report's patient box finds.

    Kept beside the log so looking a patient up does not scan a million events.
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
            models.UniqueConstraint(fields=["practice", "patient_id"], name="audit_patient_unique"),
            # NULLs differ in the one above: a patient of no practice is unique on its own.
            models.UniqueConstraint(
                fields=["patient_id"],
                condition=models.Q(practice__isnull=True),
                name="audit_patient_unique_without_practice",
            ),
        ]
        # A patient id across practices (a platform auditor's patient filter): the
        # unique pair above is indexed by practice first.
        indexes = [models.Index(fields=["patient_id"], name="audit_patient_id_idx")]

    def __str__(self) -> str:
        return f"{self.patient_name} ({self.patient_id})"


class AuditVerification(models.Model):
    """One verification of the whole log (every chain and checkpoint): asked for, run, found.

    Asked for on the Integrity page (run in the background by the outbox worker) or
    run by `manage.py audit_verify`; the newest finished one is what the page shows.
    """

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who asked for it on the Integrity page; empty when run from the command line.",
    )
    requested_at = models.DateTimeField(default=timezone.now, help_text="When it was asked for.")
    started_at = models.DateTimeField(null=True, blank=True, help_text="When a worker began it.")
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When it ended.")
    intact = models.BooleanField(
        null=True, blank=True, help_text="Every chain and checkpoint verified; empty if not run."
    )
    problem = models.TextField(blank=True, help_text="The first problem found, or why it stopped.")
    events = models.PositiveBigIntegerField(default=0, help_text="Events checked.")
    chains = models.PositiveIntegerField(default=0, help_text="Chains walked.")
    checkpoints = models.PositiveIntegerField(default=0, help_text="Checkpoints verified.")

    class Meta:
        ordering = ["-requested_at"]
        indexes = [models.Index(fields=["finished_at"], name="audit_verification_done_idx")]

    def __str__(self) -> str:
        return f"Verification {self.pk} requested {self.requested_at:%Y-%m-%d %H:%M}"


class AuditEventCount(models.Model):
    """How many events of one kind one practice's log took in one quarter of an hour (UTC).

    The dashboard's rollup, kept by the writer itself: `audit_event_record` adds
    one to its row in the same statement that appends the event, under the
    chain's lock, so the counts commit or roll back with the events and always
    equal a count over them (audit/dashboard.py says why it is kept there and
    not by a periodic job). Quarter hours because every time zone's day starts
    on one: offsets are whole multiples of 15 minutes (India +5:30, Nepal
    +5:45), so a day in any viewer's zone is a whole number of buckets.
    """

    practice_ref = models.BigIntegerField(
        help_text="Id of the events' practice; 0 for events that belong to none."
    )
    bucket = models.BigIntegerField(
        help_text="Quarter hour since 1970-01-01 00:00 UTC: floor(epoch seconds / 900)."
    )
    kind = models.CharField(max_length=64, help_text="Event kind code (audit/kinds.py).")
    actor_ref = models.BigIntegerField(
        default=0,
        help_text="The acting user, for the kinds counted per user (failed validations); else 0.",
    )
    count = models.BigIntegerField(help_text="Events of this kind in this bucket.")

    class Meta:
        constraints = [
            # The writer's upsert target; it also serves a practice's range of buckets.
            models.UniqueConstraint(
                fields=["practice_ref", "bucket", "kind", "actor_ref"],
                name="audit_count_unique",
            ),
            models.CheckConstraint(condition=models.Q(count__gte=1), name="audit_count_positive"),
        ]
        # The dashboard reads a range of buckets, of one practice or of all: on PostgreSQL
        # from these indexes alone (an index-only scan), not from rows scattered over the
        # table by the order in which counters were created. SQLite has no INCLUDE and
        # gets plain indexes of the first columns.
        indexes = [
            models.Index(
                fields=["practice_ref", "bucket"],
                include=["kind", "actor_ref", "count"],
                name="audit_count_practice_idx",
            ),
            models.Index(
                fields=["bucket"],
                include=["practice_ref", "kind", "actor_ref", "count"],
                name="audit_count_bucket_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.count} x {self.kind} in bucket {self.bucket} of practice {self.practice_ref}"


class AuditEventDayCount(models.Model):
    """How many events of one kind one practice's log took in one UTC day.

    The rollup's coarse level, kept beside `AuditEventCount` by the same
    statement: a viewer's day is read as whole UTC days from here, less or
    plus the quarter hours between UTC midnight and their own (audit/dashboard.py).
    """

    practice_ref = models.BigIntegerField(
        help_text="Id of the events' practice; 0 for events that belong to none."
    )
    day = models.BigIntegerField(
        help_text="UTC day since 1970-01-01: floor(epoch seconds / 86400)."
    )
    kind = models.CharField(max_length=64, help_text="Event kind code (audit/kinds.py).")
    actor_ref = models.BigIntegerField(
        default=0,
        help_text="The acting user, for the kinds counted per user (failed validations); else 0.",
    )
    count = models.BigIntegerField(help_text="Events of this kind in this day.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["practice_ref", "day", "kind", "actor_ref"], name="audit_day_count_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(count__gte=1), name="audit_day_count_positive"
            ),
        ]
        indexes = [models.Index(fields=["day"], name="audit_day_count_day_idx")]

    def __str__(self) -> str:
        return f"{self.count} x {self.kind} on UTC day {self.day} of practice {self.practice_ref}"


class AuditArchive(models.Model):
    """One month of events written to a signed archive file and removed from the database.

    Written by `manage.py audit_archive` (PostgreSQL) only after the file verified;
    the month's partition is then dropped. Rows are append-only.
    """

    month = models.DateField(unique=True, help_text="First day of the archived month (UTC).")
    archived_at = models.DateTimeField(help_text="When the partition was dropped.")
    file_name = models.CharField(max_length=500, help_text="Where the file was written.")
    file_sha256 = models.CharField(max_length=64, help_text="SHA-256 of the file's bytes.")
    events = models.PositiveBigIntegerField(help_text="Events the file holds and the month held.")
    evidence_checkpoint = models.BigIntegerField(
        help_text="The signed checkpoint the file verifies against (its number)."
    )
    boundary_checkpoint = models.BigIntegerField(
        help_text="The checkpoint that signed the chains' new starts after the drop (its number)."
    )

    class Meta:
        ordering = ["-month"]

    def __str__(self) -> str:
        return f"Audit archive of {self.month:%Y-%m} ({self.events} events)"


class AuditArchiveChain(models.Model):
    """Where an archive cut one chain: events `first_seq`..`last_seq` left the database.

    The chain's first live event is `last_seq + 1`, whose `prev_hash` is `last_hash`
    (and, for the legacy chain, whose keyed hash follows `last_mac`);
    `audit_verify` checks the chain's start against it.
    """

    archive = models.ForeignKey(AuditArchive, on_delete=models.PROTECT, related_name="chains")
    chain = models.ForeignKey(AuditChain, on_delete=models.PROTECT, related_name="+")
    first_seq = models.BigIntegerField(help_text="seq of the first archived event.")
    last_seq = models.BigIntegerField(help_text="seq of the last archived event.")
    last_hash = models.CharField(
        max_length=64, help_text="row_hash of the last archived event: the next one links to it."
    )
    last_mac = models.CharField(max_length=64, help_text="Keyed hash of the last archived event.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["archive", "chain"], name="audit_archive_chain_unique"),
            models.CheckConstraint(
                condition=models.Q(last_seq__gte=models.F("first_seq")),
                name="audit_archive_chain_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Chain {self.chain_id} seq {self.first_seq}-{self.last_seq} in {self.archive}"
