"""Everything that reads a PIN in clear or writes one: reveal, generate, validate, re-key.

Every function here writes its audit events through audit_event_record inside
its own transaction, so a PIN is shown, changed or validated only if the event
is written too (fail closed). Mail goes out only after the transaction commits.
"""

import itertools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import cache, partial
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import User
from accounts.roles import Role
from alerts.services import alert_agent_failures_check
from audit import kinds
from audit.models import AuditEvent
from audit.services import audit_event_record
from ehr import crypto
from ehr.moments import shown_at
from ehr.policies import can_manage_account, can_validate_pin_of
from outbox.services import mail_enqueue, mail_enqueue_each_zone
from support_pin import conf
from support_pin.models import AccountPins

MODEL_LABEL = "support_pin.AccountPins"
PIN_FIELDS = ("support_pin", "app_pin")
# ASCII digits only: str.isdigit() and re's \d also accept Arabic-Indic and full-width digits.
PIN_PATTERN = re.compile(r"[0-9]{4}")


class InvalidPinFormat(ValueError):
    """Not exactly 4 ASCII digits. Never counted as a guess."""


def normalize_pin(raw: str) -> str:
    """Return the 4 ASCII digits of `raw` (spaces around it ignored) or raise InvalidPinFormat."""
    text = (raw or "").strip()
    if not PIN_PATTERN.fullmatch(text):
        raise InvalidPinFormat("A PIN is exactly 4 digits, 0-9.")
    return text


class WeakAppPin(ValueError):
    """An App Unlock PIN anyone would try first (`1111`, `1234`, `9876`)."""


def app_pin_weakness(pin: str) -> str | None:
    """Return why a 4-digit App Unlock PIN is among the first anyone tries, or None.

    Refused: one digit four times (`0000`, `7777`) and runs that count up or down
    by one, wrapping past 9 or 0 as a keypad does (`1234`, `7890`, `4321`, `1098`).
    The Support PIN is drawn at random and never chosen, so this is for the App
    Unlock PIN, which its owner picks.
    """
    digits = [int(c) for c in pin]
    if len(set(digits)) == 1:
        return "it repeats one digit"
    steps = {(b - a) % 10 for a, b in itertools.pairwise(digits)}
    if steps == {1}:
        return "its digits count up in a row"
    if steps == {9}:
        return "its digits count down in a row"
    return None


def _aad(user_id: int, field: str) -> bytes:
    return crypto.associated_data(model=MODEL_LABEL, field=field, owner_pk=user_id)


def _seal(pin: str, *, user_id: int, field: str) -> str:
    return crypto.encrypt(pin, aad=_aad(user_id, field))


def _open(pins: AccountPins, field: str) -> str:
    return crypto.decrypt(getattr(pins, field), aad=_aad(pins.user_id, field))


def new_pin(*, differs_from: str | None = None) -> str:
    """Return 4 random ASCII digits from `secrets`, never equal to `differs_from`."""
    while True:
        pin = f"{secrets.randbelow(10_000):04d}"
        if pin != differs_from:
            return pin


def _new_app_pin() -> str:
    """Return a random App Unlock PIN that its owner would also be allowed to choose."""
    while True:
        pin = new_pin()
        if app_pin_weakness(pin) is None:
            return pin


def _pins_of(user: User) -> AccountPins:
    """Return the account's PIN row, locked until the caller's transaction ends."""
    pins = AccountPins.objects.select_for_update().get(user_id=user.pk)
    pins.user = user  # the caller's object (and whatever profile it already loaded)
    return pins


@transaction.atomic
def account_pins_create(*, user: User) -> AccountPins:
    """Give a new account its Support PIN and App Unlock PIN (called at account creation)."""
    return AccountPins.objects.create(
        user=user,
        support_pin=_seal(new_pin(), user_id=user.pk, field="support_pin"),
        app_pin=_seal(_new_app_pin(), user_id=user.pk, field="app_pin"),
        support_pin_changed_at=timezone.now(),
    )


def _replace_support_pin(pins: AccountPins, *, current: str) -> None:
    """Seal a new Support PIN into `pins`; the caller saves it and records the event.

    Callers save their rows before recording events: the audit chain head stays
    locked from the first event to the commit, so events last keeps every other
    writer waiting the least.
    """
    pins.support_pin = _seal(
        new_pin(differs_from=current), user_id=pins.user_id, field="support_pin"
    )
    pins.support_pin_changed_at = timezone.now()


# Reveal and change (the owner, after accounts.auth_events.identity_confirm passed)


def _reveal(*, acting_user: User, ip: str | None, field: str, kind) -> str:
    with transaction.atomic():
        pins = _pins_of(acting_user)
        pin = _open(pins, field)
        audit_event_record(kind=kind, acting_user=acting_user, account=acting_user, ip=ip)
        return pin


def support_pin_reveal(*, acting_user: User, ip: str | None) -> str:
    """Return the owner's Support PIN, recorded; the caller has confirmed who they are."""
    return _reveal(
        acting_user=acting_user, ip=ip, field="support_pin", kind=kinds.SUPPORT_PIN_VIEWED
    )


def app_pin_reveal(*, acting_user: User, ip: str | None) -> str:
    """Return the owner's App Unlock PIN, recorded; the caller has confirmed who they are."""
    return _reveal(acting_user=acting_user, ip=ip, field="app_pin", kind=kinds.APP_PIN_VIEWED)


@transaction.atomic
def app_pin_change(*, acting_user: User, new_app_pin: str, ip: str | None) -> str:
    """Set the owner's App Unlock PIN (4 ASCII digits, not a trivial one); the caller has
    confirmed who they are."""
    pin = normalize_pin(new_app_pin)
    weakness = app_pin_weakness(pin)
    if weakness is not None:
        raise WeakAppPin(f"An App Unlock PIN that is easy to guess is refused: {weakness}.")
    pins = _pins_of(acting_user)
    pins.app_pin = _seal(pin, user_id=acting_user.pk, field="app_pin")
    pins.save(update_fields=["app_pin"])
    audit_event_record(
        kind=kinds.APP_PIN_CHANGED, acting_user=acting_user, account=acting_user, ip=ip
    )
    return pin


# Generate (the owner, or the system after a validation)


@transaction.atomic
def support_pin_generate(*, account: User, acting_user: User | None, ip: str | None) -> None:
    """Replace the Support PIN now with a different random one.

    When the owner does it, validation starts afresh: a block after repeated
    locks is lifted, and the count of locks in a row starts again.
    """
    pins = _pins_of(account)
    _replace_support_pin(pins, current=_open(pins, "support_pin"))
    fields = list(_ROTATION_FIELDS)
    was_blocked = pins.validation_blocked_at is not None
    if acting_user is not None and acting_user.pk == account.pk:
        _clear_validation_state(pins)
        fields += _VALIDATION_FIELDS
    pins.save(update_fields=fields)
    audit_event_record(
        kind=kinds.SUPPORT_PIN_GENERATED, acting_user=acting_user, account=account, ip=ip
    )
    if was_blocked and pins.validation_blocked_at is None:
        audit_event_record(
            kind=kinds.SUPPORT_PIN_VALIDATION_UNBLOCKED_BY_OWNER,
            acting_user=acting_user,
            account=account,
            ip=ip,
        )


@transaction.atomic
def support_pin_validation_unblock(*, acting_user: User, account: User, ip: str | None) -> None:
    """Let support validate the account's PIN again after repeated locks (a practice admin)."""
    if not can_manage_account(acting_user, account):
        raise PermissionDenied("not allowed to manage this account")
    pins = _pins_of(account)
    if pins.validation_blocked_at is None:
        return
    _clear_validation_state(pins)
    pins.save(update_fields=_VALIDATION_FIELDS)
    audit_event_record(
        kind=kinds.SUPPORT_PIN_VALIDATION_UNBLOCKED,
        acting_user=acting_user,
        account=account,
        ip=ip,
    )


def _clear_validation_state(pins: AccountPins) -> None:
    pins.failed_validations, pins.validation_locked_until = 0, None
    pins.validation_locks_in_a_row, pins.validation_blocked_at = 0, None


# Validate (a support agent, with the PIN a caller gives)


class ValidationOutcome(Enum):
    MATCHED = "matched"
    MISMATCHED = "mismatched"
    LOCKED = "locked"  # this account, for a while
    BLOCKED = "blocked"  # this account, until its owner generates a new PIN
    AGENT_LOCKED = "agent_locked"  # this agent, for the rest of the window


@dataclass(frozen=True)
class ValidationResult:
    outcome: ValidationOutcome
    locked_until: datetime | None = None


@transaction.atomic
def support_pin_validate(
    *, acting_user: User, account: User, pin: str, ip: str | None
) -> ValidationResult:
    """Tell a support agent whether `pin` is the account's Support PIN.

    The account's PIN row is locked for the whole check, so two agents
    validating the same PIN at once are served one after the other: the first
    matches and rotates the PIN, the second no longer matches. A match rotates
    the PIN at once (recorded as the system's, as the seed shows).

    Guessing is bounded three ways, each checked before any comparison (the
    account's block and lock first: they refuse without comparing, whatever the
    agent's count):
    - VALIDATION_LOCK_AFTER failures in a row lock the account's validation for
      VALIDATION_LOCK_FOR, rotate the PIN and email the owner;
    - VALIDATION_BLOCK_AFTER_LOCKS locks in a row (no success between them)
      block it until the owner generates a new PIN (or a practice admin
      unblocks it): at most LOCK_AFTER x BLOCK_AFTER_LOCKS guesses for the life
      of a PIN the owner chose to have;
    - an agent whose failures over all accounts reach AGENT_FAILURE_LIMIT in
      AGENT_FAILURE_WINDOW is refused until the window passes (the agent's own
      validations are taken one at a time, so the count is exact).
    """
    agent = acting_user
    if not can_validate_pin_of(agent, account):
        raise PermissionDenied("only support agents validate Support PINs, and not their own")
    given = normalize_pin(pin)  # a malformed PIN is refused before anything is counted
    if connection.features.has_select_for_update:
        # NO KEY UPDATE: the events this agent writes elsewhere meanwhile (their foreign
        # key takes KEY SHARE on this row) go on; only its validations wait.
        User.objects.select_for_update(no_key=True).filter(pk=agent.pk).values_list("pk").get()
    # else SQLite: no row locks, and its IMMEDIATE transaction already holds the database's
    # write lock from its first statement, so validations are taken one at a time anyway.
    now = timezone.now()
    pins, agent_failures = _pins_for_validation(account=account, agent=agent, now=now)
    if pins.validation_blocked_at is not None:
        audit_event_record(
            kind=kinds.SUPPORT_PIN_VALIDATION_REFUSED_BLOCKED,
            acting_user=agent,
            account=account,
            ip=ip,
        )
        return ValidationResult(ValidationOutcome.BLOCKED)
    if pins.validation_locked_until and pins.validation_locked_until > now:
        audit_event_record(
            kind=kinds.SUPPORT_PIN_VALIDATION_REFUSED, acting_user=agent, account=account, ip=ip
        )
        return ValidationResult(ValidationOutcome.LOCKED, pins.validation_locked_until)
    # Only a comparison can be a guess: the refusals above do not count the agent's failures.
    if agent_failures >= conf.AGENT_FAILURE_LIMIT:
        audit_event_record(
            kind=kinds.SUPPORT_PIN_VALIDATION_REFUSED_AGENT,
            acting_user=agent,
            account=agent,
            ip=ip,
            data={"account": account.pk},
        )
        return ValidationResult(ValidationOutcome.AGENT_LOCKED)
    current = _open(pins, "support_pin")
    # The row is saved before the events are recorded (see _replace_support_pin).
    if constant_time_compare(given, current):
        _replace_support_pin(pins, current=current)
        _clear_validation_state(pins)
        pins.save(update_fields=[*_VALIDATION_FIELDS, *_ROTATION_FIELDS])
        audit_event_record(
            kind=kinds.SUPPORT_PIN_VALIDATED, acting_user=agent, account=account, ip=ip
        )
        _record_rotation(account)
        return ValidationResult(ValidationOutcome.MATCHED)
    return _validation_failed(
        pins,
        agent=agent,
        account=account,
        current=current,
        now=now,
        ip=ip,
        agent_failures=agent_failures + 1,
    )


def _validation_failed(
    pins: AccountPins,
    *,
    agent: User,
    account: User,
    current: str,
    now: datetime,
    ip: str | None,
    agent_failures: int,
) -> ValidationResult:
    """Count a wrong PIN against the account and the agent; lock or block what reached a limit.

    `agent_failures` counts this failure too: the count read before the comparison
    plus one, exact because the agent's validations are taken one at a time (its row
    stays locked until the transaction ends), so the log is not read again.
    """
    failures = pins.failed_validations + 1
    locked_until = None
    if failures < conf.VALIDATION_LOCK_AFTER:
        pins.failed_validations = failures
        pins.save(update_fields=_VALIDATION_FIELDS)
    else:
        locked_until = now + conf.VALIDATION_LOCK_FOR
        _replace_support_pin(pins, current=current)
        pins.failed_validations, pins.validation_locked_until = 0, locked_until
        pins.validation_locks_in_a_row += 1
        if pins.validation_locks_in_a_row >= conf.VALIDATION_BLOCK_AFTER_LOCKS:
            pins.validation_blocked_at = now
        pins.save(update_fields=[*_VALIDATION_FIELDS, *_ROTATION_FIELDS])
    audit_event_record(
        kind=kinds.SUPPORT_PIN_VALIDATION_FAILED, acting_user=agent, account=account, ip=ip
    )
    if locked_until is not None:
        blocked = pins.validation_blocked_at is not None
        audit_event_record(
            kind=kinds.SUPPORT_PIN_VALIDATION_BLOCKED
            if blocked
            else kinds.SUPPORT_PIN_VALIDATION_LOCKED,
            acting_user=None,
            account=account,
            ip=None,
            params={"failures": failures, "locks": pins.validation_locks_in_a_row},
        )
        _record_rotation(account)
        _mail_validation_locked(account, locked_until, blocked)
    if agent_failures == conf.AGENT_FAILURE_LIMIT:
        _agent_locked(agent, now=now)
    # After the commit, outside the agent's row lock and the chain's: the spray alert
    # (alerts/) is raised in its own transaction; should that fail, the validation
    # stands and the periodic evaluation raises it.
    transaction.on_commit(partial(alert_agent_failures_check, agent_id=agent.pk), robust=True)
    return ValidationResult(ValidationOutcome.MISMATCHED, locked_until)


def _pins_for_validation(*, account: User, agent: User, now: datetime) -> tuple[AccountPins, int]:
    """Lock and return the account's PIN row with the agent's failed validations over all
    accounts within the window, counted from the log (indexed by actor and time) up to the
    limit: no more is ever needed.

    Called once the agent's row is locked: the count then includes every earlier
    validation of the agent's, and no other can add to it before this one ends.

    One statement, written out from the models' own table and column names: it runs
    while validations wait for the agent's row (on SQLite for the whole database), where
    a round trip to the database and the ORM's building of two queries (more Python than
    running them) would keep them waiting longer.
    """
    since = connection.ops.adapt_datetimefield_value(now - conf.AGENT_FAILURE_WINDOW)
    failed = kinds.SUPPORT_PIN_VALIDATION_FAILED.code
    params = [agent.pk, failed, since, conf.AGENT_FAILURE_LIMIT, account.pk]
    sql = _pins_for_validation_sql(lock=connection.features.has_select_for_update)
    rows = list(AccountPins.objects.raw(sql, params))
    if not rows:
        raise AccountPins.DoesNotExist(f"account {account.pk} has no PINs")
    pins = rows[0]
    pins.user = account  # the caller's object (and whatever profile it already loaded)
    return pins, pins.agent_failures


@cache
def _pins_for_validation_sql(*, lock: bool) -> str:
    pins, events = AccountPins._meta, AuditEvent._meta
    actor, kind, occurred_at = (
        events.get_field(name).column for name in ("actor", "kind", "occurred_at")
    )
    failures = (
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {events.db_table} "  # noqa: S608  (names from the models)  # nosec B608
        f"WHERE {actor} = %s AND {kind} = %s AND {occurred_at} > %s LIMIT %s) AS failures"
    )
    columns = ", ".join(field.column for field in pins.concrete_fields)
    owner = pins.get_field("user").column
    return (
        f"SELECT {columns}, ({failures}) AS agent_failures FROM {pins.db_table} "  # noqa: S608  (names from the models, values as parameters)  # nosec B608
        f"WHERE {owner} = %s" + (" FOR UPDATE" if lock else "")  # SQLite: see the caller
    )


def _agent_locked(agent: User, *, now: datetime) -> None:
    """Record that the agent reached the limit; tell whoever oversees the accounts it tried."""
    audit_event_record(
        kind=kinds.SUPPORT_PIN_AGENT_LOCKED,
        acting_user=None,
        account=agent,
        ip=None,
        params={"failures": conf.AGENT_FAILURE_LIMIT},
    )
    practices = list(
        AuditEvent.objects.filter(
            actor_id=agent.pk,
            occurred_at__gt=now - conf.AGENT_FAILURE_WINDOW,
            kind=kinds.SUPPORT_PIN_VALIDATION_FAILED.code,
            practice_id__isnull=False,
        )
        .values_list("practice_id", flat=True)
        .distinct()
    )
    _mail_agent_locked(agent, practices)


def _record_rotation(account: User) -> None:
    """Record the system's rotation as the seed shows it: no acting user, IP None."""
    audit_event_record(kind=kinds.SUPPORT_PIN_GENERATED, acting_user=None, account=account, ip=None)


_VALIDATION_FIELDS = [
    "failed_validations",
    "validation_locked_until",
    "validation_locks_in_a_row",
    "validation_blocked_at",
]
_ROTATION_FIELDS = ["support_pin", "support_pin_changed_at"]


def _mail_validation_locked(account: User, locked_until: datetime, blocked: bool) -> None:
    def body(time_zone: ZoneInfo) -> str:
        if blocked:
            what = (
                "This has happened again since the last successful validation, so support can "
                "no longer validate any Support PIN for your account until you generate a new "
                "one yourself (Generate New PIN), or your practice administrator unblocks it."
            )
        else:
            what = f"Validation is locked until {shown_at(locked_until, time_zone)}."
        return (
            f"Hello {account.display_name},\n\n"
            f"Someone gave support {conf.VALIDATION_LOCK_AFTER} wrong Support PINs for your "
            f"account in a row. {what} Your Support PIN has been replaced.\n\n"
            "You can view the new PIN under Account Settings (providers) or Staff Account "
            "Information. If you did not contact support, tell your practice administrator.\n"
        )

    mail_enqueue_each_zone(
        people=[account], subject="Support PIN validation locked on your account", body=body
    )


def _mail_agent_locked(agent: User, practice_ids: list[int]) -> None:
    overseers = (
        User.objects.filter(is_active=True)
        .filter(
            Q(groups__name=Role.PLATFORM_AUDITOR.value)
            | Q(groups__name=Role.COMPLIANCE_OFFICER.value, practice_id__in=practice_ids)
        )
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )
    recipients = sorted(overseers)
    if not recipients:
        return
    window = int(conf.AGENT_FAILURE_WINDOW.total_seconds() // 60)
    mail_enqueue(
        subject="Support agent refused further PIN validations",
        body=(
            f"Support agent {agent.display_name} ({agent.username}) gave "
            f"{conf.AGENT_FAILURE_LIMIT} wrong Support PINs across accounts within {window} "
            "minutes and is refused further validations until that time has passed. The "
            "audit log lists the accounts tried (filter by the agent's username). If this was "
            "not expected, end the agent's sessions and review the accounts.\n"
        ),
        recipients=recipients,
    )


# Key rotation


@dataclass(frozen=True)
class RekeyProgress:
    done: int
    remaining: int


def field_keys_rotate_batch(*, batch_size: int = 500) -> RekeyProgress:
    """Re-encrypt one batch of PIN rows not yet under the primary key.

    Each batch is its own short transaction with the rows locked
    (SKIP LOCKED), so the site keeps serving and the command can be stopped and
    run again at any point: rows already re-keyed are not selected again. Each
    batch writes its event in its transaction: rows re-keyed are always in the log.
    """
    prefix = crypto.current_prefix()
    stale = AccountPins.objects.exclude(
        support_pin__startswith=prefix
    ) | AccountPins.objects.exclude(app_pin__startswith=prefix)
    with transaction.atomic():
        rows = list(stale.select_for_update(skip_locked=True).order_by("pk")[:batch_size])
        for pins in rows:
            for field in PIN_FIELDS:
                if crypto.needs_rotation(getattr(pins, field)):
                    setattr(
                        pins, field, _seal(_open(pins, field), user_id=pins.user_id, field=field)
                    )
            pins.save(update_fields=list(PIN_FIELDS))
        if rows:
            field_keys_rotation_record(count=len(rows), what="accounts' PINs")
    return RekeyProgress(done=len(rows), remaining=stale.count())


def field_keys_rotation_record(*, count: int, what: str) -> None:
    """Record a batch re-encrypted under the primary key, in the batch's transaction."""
    audit_event_record(
        kind=kinds.FIELD_KEYS_ROTATED,
        acting_user=None,
        ip=None,
        params={"count": count, "key_id": settings.FIELD_ENCRYPTION_KEYS.current_id},
        data={"count": count, "what": what},
    )
