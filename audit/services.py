"""The one way to write the audit log."""

from django.db import transaction
from django.utils import timezone

from accounts.models import Practice, User
from audit import chain
from audit.kinds import EventKind
from audit.models import AuditChainHead, AuditedPatient, AuditEvent
from ehr.middleware import current_request_context

Scalar = str | int | bool | None


def user_label(user: User | None) -> str:
    """Label a user as the seed's User column does: `496094 (dorothy Ludwig)`.

    Providers are named by Doctor ID, everyone else by username.
    """
    if user is None:
        return ""
    profile = getattr(user, "provider_profile", None)
    ident = str(profile.doctor_id) if profile is not None else user.username
    return f"{ident} ({user.display_name})"


class AuditWriteError(RuntimeError):
    """The event could not be written; the action it records must not happen."""


def audit_event_record(
    *,
    kind: EventKind,
    actor: User | None,
    account: User | None = None,
    ip: str | None,
    practice: Practice | None = None,
    patient_id: str = "",
    patient_name: str = "",
    params: dict[str, str | int] | None = None,
    data: dict[str, Scalar] | None = None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    The details are the kind's wording filled with `params` (by default the
    account's name); there is no free-text argument, so a caller cannot pass a
    PIN, a password or a key into the log by accident. `data` holds scalar facts.

    Ordering: the chain head row is locked with SELECT ... FOR UPDATE until the
    caller's transaction ends, so concurrent writers take turns; each reads the
    previous hash and the next `seq` under the lock, and `occurred_at` is taken
    under it too, so chain order is time order. On SQLite the whole transaction
    holds the database write lock from its start (`transaction_mode=IMMEDIATE`),
    which gives the same guarantee. If the caller's transaction rolls back, the
    event and the head update roll back with it.
    """
    details_params = {"account": account.display_name if account else ""}
    details_params.update(params or {})
    for name, value in details_params.items():
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise TypeError(f"audit parameter {name!r} must be a string or an integer")
    for name, value in (data or {}).items():
        if not isinstance(value, Scalar):
            raise TypeError(f"audit data {name!r} must be a scalar")
    context = current_request_context()
    if practice is None:
        practice = (account.practice if account else None) or (actor.practice if actor else None)
    labels = {"actor_label": user_label(actor), "account_label": user_label(account)}

    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
        if head is None:
            raise AuditWriteError("the audit chain head is missing; run migrations")
        key_id, key = chain.signing_key()
        row = {
            "seq": head.seq + 1,
            "occurred_at": timezone.now(),
            "actor_ref": actor.pk if actor else None,
            "account_ref": account.pk if account else None,
            "practice_id": practice.pk if practice else None,
            "patient_id": patient_id[:64],
            "patient_name": patient_name[:200],
            "kind": kind.code,
            "type": kind.type.value,
            "action": kind.action.value,
            "details": kind.details(details_params)[:1000],
            "ip": ip,
            "user_agent": context.user_agent if context else "",
            "request_id": context.request_id if context else "",
            "data": dict(data or {}),
            **labels,
        }
        row["actor_label"] = row["actor_label"][:200]
        row["account_label"] = row["account_label"][:200]
        digest = chain.row_hash(row, prev_hash=head.row_hash, key=key)
        event = AuditEvent.objects.create(
            actor=actor,
            account=account,
            key_id=key_id,
            prev_hash=head.row_hash,
            row_hash=digest,
            **row,
        )
        head.seq, head.row_hash = event.seq, digest
        head.save(update_fields=["seq", "row_hash"])
        if patient_id:
            AuditedPatient.objects.update_or_create(
                practice=practice,
                patient_id=patient_id[:64],
                defaults={"patient_name": patient_name[:200]},
            )
    return event
