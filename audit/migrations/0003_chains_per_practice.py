"""One hash chain per practice (plus the platform's), and signed checkpoints.

The events written so far move, unchanged in content and order, into the
legacy chain: each keeps its `seq`; the keyed hash it was written with becomes
its `mac` (verified as before, with AUDIT_HMAC_KEYS), and its new public
`row_hash` links it to the one before it (audit/hashing.py). A signed archive
anchor, if one was set, becomes the legacy chain's start. The legacy chain
takes no new events; new events go into their practice's chain.

The append-only guards are replaced by ones that know the new columns and also
cover chains and checkpoints.
"""

import importlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from audit import hashing

GENESIS = "0" * 64
BATCH = 2000

previous_guards = importlib.import_module("audit.migrations.0002_append_only")

# Every column of an event (the SQLite guard lists them; a test checks the list).
EVENT_COLUMNS = [
    "id",
    "chain_id",
    "seq",
    "occurred_at",
    "actor_ref",
    "actor_label",
    "account_ref",
    "account_label",
    "practice_id",
    "patient_id",
    "patient_name",
    "kind",
    "type",
    "action",
    "details",
    "ip",
    "user_agent",
    "request_id",
    "data",
    "key_id",
    "prev_hash",
    "row_hash",
    "mac",
]
APPEND_ONLY = ["audit_auditcheckpoint", "audit_auditcheckpointleaf"]

# A chain row may move its head forward (and its start, when old events are
# archived) but never change owner; only practice chains are created, empty.
SQLITE_INSTALL = [
    """CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON audit_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON audit_auditevent
       WHEN NOT ({" AND ".join(f"NEW.{c} IS OLD.{c}" for c in EVENT_COLUMNS)}
                 AND (NEW.actor_id IS OLD.actor_id OR NEW.actor_id IS NULL)
                 AND (NEW.account_id IS OLD.account_id OR NEW.account_id IS NULL))
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_chain_no_delete BEFORE DELETE ON audit_auditchain
       BEGIN SELECT RAISE(ABORT, 'audit chains cannot be deleted'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_chain_forward BEFORE UPDATE ON audit_auditchain
       WHEN NEW.id IS NOT OLD.id OR NEW.kind IS NOT OLD.kind
            OR NEW.practice_id IS NOT OLD.practice_id OR NEW.seq < OLD.seq
            OR (NEW.seq = OLD.seq AND NEW.row_hash IS NOT OLD.row_hash)
            OR (OLD.kind = 'legacy' AND NEW.seq <> OLD.seq)
            OR NEW.start_seq < OLD.start_seq
            OR (NEW.start_seq = OLD.start_seq AND (NEW.start_hash IS NOT OLD.start_hash
                                                   OR NEW.start_mac IS NOT OLD.start_mac))
       BEGIN SELECT RAISE(ABORT, 'an audit chain only moves forward'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_chain_new BEFORE INSERT ON audit_auditchain
       WHEN NEW.kind <> 'practice' OR NEW.seq <> 0 OR NEW.start_seq <> 1
       BEGIN SELECT RAISE(ABORT, 'a new audit chain starts empty'); END""",
    *(
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table}
            BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only: {op} refused'); END"""
        for table in APPEND_ONLY
        for op in ("UPDATE", "DELETE")
    ),
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
    "DROP TRIGGER IF EXISTS audit_event_no_update",
    "DROP TRIGGER IF EXISTS audit_chain_no_delete",
    "DROP TRIGGER IF EXISTS audit_chain_forward",
    "DROP TRIGGER IF EXISTS audit_chain_new",
    *(f"DROP TRIGGER IF EXISTS {t}_no_{op}" for t in APPEND_ONLY for op in ("update", "delete")),
]

POSTGRES_INSTALL = [
    previous_guards.POSTGRES_INSTALL[0],  # audit_event_guard(): compares whole rows, so unchanged
    """CREATE OR REPLACE FUNCTION audit_chain_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        IF NEW.kind <> 'practice' OR NEW.seq <> 0 OR NEW.start_seq <> 1 THEN
          RAISE EXCEPTION 'a new audit chain starts empty';
        END IF;
        RETURN NEW;
      END IF;
      IF TG_OP <> 'UPDATE' OR NEW.id <> OLD.id OR NEW.kind <> OLD.kind
         OR NEW.practice_id IS DISTINCT FROM OLD.practice_id OR NEW.seq < OLD.seq
         OR (NEW.seq = OLD.seq AND NEW.row_hash <> OLD.row_hash)
         OR (OLD.kind = 'legacy' AND NEW.seq <> OLD.seq)
         OR NEW.start_seq < OLD.start_seq
         OR (NEW.start_seq = OLD.start_seq AND (NEW.start_hash <> OLD.start_hash
                                                OR NEW.start_mac <> OLD.start_mac)) THEN
        RAISE EXCEPTION 'an audit chain only moves forward';
      END IF;
      RETURN NEW;
    END $$""",
    """CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION USING MESSAGE = 'audit checkpoints are append-only: ' || TG_OP || ' refused';
    END $$""",
    """CREATE OR REPLACE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE
       ON audit_auditevent FOR EACH ROW EXECUTE FUNCTION audit_event_guard()""",
    """CREATE OR REPLACE TRIGGER audit_event_no_truncate BEFORE TRUNCATE
       ON audit_auditevent FOR EACH STATEMENT EXECUTE FUNCTION audit_event_guard()""",
    """CREATE OR REPLACE TRIGGER audit_chain_forward BEFORE INSERT OR UPDATE OR DELETE
       ON audit_auditchain FOR EACH ROW EXECUTE FUNCTION audit_chain_guard()""",
    """CREATE OR REPLACE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE
       ON audit_auditchain FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""",
    *(
        f"""CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE
            ON {table} FOR EACH ROW EXECUTE FUNCTION audit_append_only()"""
        for table in APPEND_ONLY
    ),
    *(
        f"""CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE
            ON {table} FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"""
        for table in APPEND_ONLY
    ),
]
POSTGRES_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent",
    "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent",
    "DROP TRIGGER IF EXISTS audit_chain_forward ON audit_auditchain",
    "DROP TRIGGER IF EXISTS audit_chain_no_truncate ON audit_auditchain",
    *(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}" for t in APPEND_ONLY),
    *(f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}" for t in APPEND_ONLY),
]


def statements(vendor: str, *, install: bool) -> list[str]:
    if vendor == "postgresql":
        return POSTGRES_INSTALL if install else POSTGRES_REMOVE
    if vendor == "sqlite":
        return SQLITE_INSTALL if install else SQLITE_REMOVE
    raise RuntimeError(f"the audit log supports SQLite and PostgreSQL, not {vendor}")


def install_guards(apps, schema_editor):
    for sql in statements(schema_editor.connection.vendor, install=True):
        schema_editor.execute(sql)


def remove_guards(apps, schema_editor):
    for sql in statements(schema_editor.connection.vendor, install=False):
        schema_editor.execute(sql)


def create_platform_chain(apps, schema_editor):
    apps.get_model("audit", "AuditChain").objects.get_or_create(kind="platform")


def move_into_chains(apps, schema_editor):
    """Create the platform chain; put the existing events, in order, into the legacy chain."""
    Chain = apps.get_model("audit", "AuditChain")
    Event = apps.get_model("audit", "AuditEvent")
    Head = apps.get_model("audit", "AuditChainHead")
    Anchor = apps.get_model("audit", "AuditChainAnchor")
    if schema_editor.connection.vendor == "postgresql":
        # Check the foreign keys set below now, not at commit: the schema changes
        # that follow cannot run with checks still pending.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    create_platform_chain(apps, schema_editor)
    head = Head.objects.filter(pk=1).first()
    if not Event.objects.exists():
        return
    anchor = Anchor.objects.order_by("-seq").first()
    start_seq = anchor.seq if anchor else 1
    legacy = Chain.objects.create(
        kind="legacy",
        start_seq=start_seq,
        start_mac=anchor.prev_hash if anchor else GENESIS,
    )
    prev, last_seq = GENESIS, start_seq - 1
    after = None
    while True:
        batch = Event.objects.order_by("seq")
        if after is not None:
            batch = batch.filter(seq__gt=after)
        batch = list(batch[:BATCH])
        if not batch:
            break
        for event in batch:
            row = {
                name: getattr(event, name) for name in hashing.EVENT_FIELDS if name != "chain_id"
            }
            row["chain_id"] = legacy.pk
            event.chain_id = legacy.pk
            event.mac = event.row_hash  # the keyed hash it was written with
            event.prev_hash = prev
            event.row_hash = prev = hashing.row_hash(row, prev_hash=prev)
            last_seq = event.seq
        Event.objects.bulk_update(batch, ["chain", "mac", "prev_hash", "row_hash"])
        after = batch[-1].seq
    # The legacy chain's head is where the single chain's head was: if events at
    # the end were deleted before this migration, verification says so.
    head_seq = head.seq if head else last_seq
    Chain.objects.filter(pk=legacy.pk).update(
        seq=head_seq, row_hash=prev if head_seq == last_seq else GENESIS
    )


def back_to_one_chain(apps, schema_editor):
    """Undo, while only legacy events exist: each event's `mac` was its row hash."""
    Chain = apps.get_model("audit", "AuditChain")
    Event = apps.get_model("audit", "AuditEvent")
    if Event.objects.exclude(chain__kind="legacy").exists():
        raise RuntimeError("events were written into chains per practice: there is no way back")
    legacy = Chain.objects.filter(kind="legacy").first()
    if legacy is not None and legacy.start_seq != 1:
        raise RuntimeError("the legacy chain starts after archived events: restore them first")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    prev, after = GENESIS, 0
    while batch := list(Event.objects.filter(seq__gt=after).order_by("seq")[:BATCH]):
        for event in batch:
            event.prev_hash, event.row_hash = prev, event.mac
            prev = event.mac
        Event.objects.bulk_update(batch, ["prev_hash", "row_hash"])
        after = batch[-1].seq
    apps.get_model("audit", "AuditChainHead").objects.create(
        pk=1, seq=legacy.seq if legacy else 0, row_hash=prev
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("audit", "0002_append_only"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(previous_guards.remove_guards, previous_guards.install_guards),
        migrations.CreateModel(
            name="AuditChain",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("practice", "Practice"),
                            ("platform", "Platform"),
                            ("legacy", "Before chains per practice"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "seq",
                    models.BigIntegerField(
                        default=0, help_text="seq of the newest event (0: none yet)."
                    ),
                ),
                (
                    "row_hash",
                    models.CharField(
                        default="0000000000000000000000000000000000000000000000000000000000000000",
                        help_text="row_hash of the newest event.",
                        max_length=64,
                    ),
                ),
                (
                    "start_seq",
                    models.BigIntegerField(default=1, help_text="seq of the first event kept."),
                ),
                (
                    "start_hash",
                    models.CharField(
                        default="0000000000000000000000000000000000000000000000000000000000000000",
                        help_text="prev_hash of the first event kept.",
                        max_length=64,
                    ),
                ),
                (
                    "start_mac",
                    models.CharField(
                        default="0000000000000000000000000000000000000000000000000000000000000000",
                        help_text="Legacy chain only: the keyed hash the first kept event points back to.",
                        max_length=64,
                    ),
                ),
                (
                    "practice",
                    models.OneToOneField(
                        blank=True,
                        help_text="The practice whose events this chain holds; empty for platform and legacy.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.practice",
                    ),
                ),
            ],
        ),
        migrations.AddConstraint(
            model_name="auditchain",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("kind", "practice"), ("practice__isnull", False)),
                    models.Q(("kind__in", ["platform", "legacy"]), ("practice__isnull", True)),
                    _connector="OR",
                ),
                name="audit_chain_kind_practice",
            ),
        ),
        migrations.AddConstraint(
            model_name="auditchain",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind__in", ["platform", "legacy"])),
                fields=("kind",),
                name="audit_chain_one_platform_one_legacy",
            ),
        ),
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.BigIntegerField(help_text="1, 2, 3 ...", unique=True)),
                ("created_at", models.DateTimeField(help_text="When it was taken (UTC).")),
                (
                    "prev_hash",
                    models.CharField(help_text="Hash of the previous checkpoint.", max_length=64),
                ),
                (
                    "merkle_root",
                    models.CharField(
                        help_text="Merkle root over every chain's head.", max_length=64
                    ),
                ),
                ("chain_count", models.IntegerField(help_text="How many chains the root covers.")),
                (
                    "key_id",
                    models.CharField(help_text="Which signing key signed it.", max_length=16),
                ),
                (
                    "signature",
                    models.CharField(help_text="Ed25519 signature, base64url.", max_length=100),
                ),
                (
                    "checkpoint_hash",
                    models.CharField(help_text="SHA-256 of the signed message.", max_length=64),
                ),
            ],
            options={
                "ordering": ["-number"],
            },
        ),
        migrations.CreateModel(
            name="AuditCheckpointLeaf",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("start_seq", models.BigIntegerField()),
                ("start_hash", models.CharField(max_length=64)),
                ("seq", models.BigIntegerField()),
                ("row_hash", models.CharField(max_length=64)),
            ],
        ),
        migrations.AddField(
            model_name="auditcheckpointleaf",
            name="chain",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to="audit.auditchain"
            ),
        ),
        migrations.AddField(
            model_name="auditcheckpointleaf",
            name="checkpoint",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="audit.auditcheckpoint",
            ),
        ),
        migrations.AddConstraint(
            model_name="auditcheckpointleaf",
            constraint=models.UniqueConstraint(
                fields=("chain", "checkpoint"), name="audit_leaf_unique"
            ),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="mac",
            field=models.CharField(
                default="", help_text="HMAC-SHA-256 with an AUDIT_HMAC_KEYS key.", max_length=64
            ),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="key_id",
            field=models.CharField(
                help_text="Which AUDIT_HMAC_KEYS key made `mac`.", max_length=16
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="row_hash",
            field=models.CharField(
                help_text="SHA-256 link of this row and prev_hash.", max_length=64
            ),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="chain",
            field=models.ForeignKey(
                db_index=False,
                help_text="The hash chain the event belongs to.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="audit.auditchain",
            ),
        ),
        migrations.RunPython(move_into_chains, back_to_one_chain),
        migrations.AlterField(
            model_name="auditevent",
            name="chain",
            field=models.ForeignKey(
                db_index=False,
                help_text="The hash chain the event belongs to.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="audit.auditchain",
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="seq",
            field=models.BigIntegerField(help_text="Position in its chain, 1, 2, 3 ..."),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(
                fields=("chain", "seq"), name="audit_chain_seq_unique"
            ),
        ),
        migrations.DeleteModel(
            name="AuditChainAnchor",
        ),
        migrations.DeleteModel(
            name="AuditChainHead",
        ),
        migrations.RunPython(install_guards, remove_guards),
    ]
