"""Make the audit log append-only in the database itself, and create the chain head.

The guards refuse DELETE and UPDATE on audit events, with one exception: when a
user is deleted, Django sets `actor_id`/`account_id` to NULL (on_delete=SET_NULL);
the hash covers `actor_ref`/`account_ref`, which never change. The chain head may
only move forward. A migration that adds a column to AuditEvent must add it to
EVENT_COLUMNS below (the SQLite guard lists them; a test checks the list).
"""

from django.db import migrations

EVENT_COLUMNS = [
    "id",
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
]

SQLITE_INSTALL = [
    """CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON audit_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON audit_auditevent
       WHEN NOT ({" AND ".join(f"NEW.{c} IS OLD.{c}" for c in EVENT_COLUMNS)}
                 AND (NEW.actor_id IS OLD.actor_id OR NEW.actor_id IS NULL)
                 AND (NEW.account_id IS OLD.account_id OR NEW.account_id IS NULL))
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_head_no_delete BEFORE DELETE ON audit_auditchainhead
       BEGIN SELECT RAISE(ABORT, 'the audit chain head cannot be deleted'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_head_forward BEFORE UPDATE ON audit_auditchainhead
       WHEN NEW.seq <= OLD.seq OR NEW.id IS NOT OLD.id
       BEGIN SELECT RAISE(ABORT, 'the audit chain head only moves forward'); END""",
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
    "DROP TRIGGER IF EXISTS audit_event_no_update",
    "DROP TRIGGER IF EXISTS audit_head_no_delete",
    "DROP TRIGGER IF EXISTS audit_head_forward",
]

POSTGRES_INSTALL = [
    """CREATE OR REPLACE FUNCTION audit_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION USING MESSAGE = 'audit events are append-only: ' || TG_OP || ' refused';
      END IF;
      IF (to_jsonb(NEW) - 'actor_id' - 'account_id') IS DISTINCT FROM
         (to_jsonb(OLD) - 'actor_id' - 'account_id')
         OR (NEW.actor_id IS DISTINCT FROM OLD.actor_id AND NEW.actor_id IS NOT NULL)
         OR (NEW.account_id IS DISTINCT FROM OLD.account_id AND NEW.account_id IS NOT NULL) THEN
        RAISE EXCEPTION 'audit events are append-only: UPDATE refused';
      END IF;
      RETURN NEW;
    END $$""",
    """CREATE OR REPLACE FUNCTION audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'UPDATE' OR NEW.seq <= OLD.seq OR NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'the audit chain head only moves forward';
      END IF;
      RETURN NEW;
    END $$""",
    """CREATE OR REPLACE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE
       ON audit_auditevent FOR EACH ROW EXECUTE FUNCTION audit_event_guard()""",
    """CREATE OR REPLACE TRIGGER audit_event_no_truncate BEFORE TRUNCATE
       ON audit_auditevent FOR EACH STATEMENT EXECUTE FUNCTION audit_event_guard()""",
    """CREATE OR REPLACE TRIGGER audit_head_forward BEFORE UPDATE OR DELETE
       ON audit_auditchainhead FOR EACH ROW EXECUTE FUNCTION audit_head_guard()""",
    """CREATE OR REPLACE TRIGGER audit_head_no_truncate BEFORE TRUNCATE
       ON audit_auditchainhead FOR EACH STATEMENT EXECUTE FUNCTION audit_head_guard()""",
]
POSTGRES_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent",
    "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent",
    "DROP TRIGGER IF EXISTS audit_head_forward ON audit_auditchainhead",
    "DROP TRIGGER IF EXISTS audit_head_no_truncate ON audit_auditchainhead",
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


def create_head(apps, schema_editor):
    apps.get_model("audit", "AuditChainHead").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(create_head, migrations.RunPython.noop),
        migrations.RunPython(install_guards, remove_guards),
    ]
