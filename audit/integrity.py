"""The log's integrity on screen: verifications asked for on the Integrity page, run in the
background by the outbox worker, and those run by `manage.py audit_verify`.

A request is a row (`AuditVerification`) committed with its audit event. A worker
claims the oldest unstarted request with a row lock (SKIP LOCKED), so two workers
never run the same one; a run that never finished (its worker was killed) is
claimed again after VERIFICATION_ABANDONED_AFTER. Only one request waits or runs
at a time: asking again while one does changes nothing.
"""

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from audit import kinds
from audit.checkpoints import CheckpointRefused
from audit.models import AuditVerification
from audit.services import audit_event_record
from audit.verification import VerifyResult, audit_log_verify

logger = logging.getLogger(__name__)

VERIFICATION_ABANDONED_AFTER = timedelta(hours=1)


class VerificationAlreadyAsked(Exception):
    """A verification already waits or runs; it will answer this request too."""


def _unfinished(now: datetime) -> Q:
    return Q(finished_at__isnull=True) & (
        Q(started_at__isnull=True) | Q(started_at__gt=now - VERIFICATION_ABANDONED_AFTER)
    )


def audit_verification_request(*, acting_user: User, ip: str | None) -> AuditVerification:
    """Ask for a verification of the whole log, to run in the background; recorded."""
    with transaction.atomic():
        if AuditVerification.objects.filter(_unfinished(timezone.now())).exists():
            raise VerificationAlreadyAsked
        # Two requests at the same instant may both be queued: each is run, no harm.
        audit_event_record(kind=kinds.AUDIT_VERIFICATION_REQUESTED, acting_user=acting_user, ip=ip)
        return AuditVerification.objects.create(requested_by=acting_user)


def _claim(now: datetime) -> AuditVerification | None:
    with transaction.atomic():
        waiting = (
            AuditVerification.objects.select_for_update(skip_locked=True)
            .filter(finished_at__isnull=True)
            .filter(
                Q(started_at__isnull=True) | Q(started_at__lte=now - VERIFICATION_ABANDONED_AFTER)
            )
            .order_by("requested_at", "id")
            .first()
        )
        if waiting is not None:
            waiting.started_at = now
            waiting.save(update_fields=["started_at"])
        return waiting


def audit_verification_run_pending(*, now: datetime | None = None) -> AuditVerification | None:
    """Run the oldest waiting verification, if any; return it finished."""
    claimed = _claim(now or timezone.now())
    if claimed is None:
        return None
    try:
        result = audit_log_verify()
    except Exception as error:
        # Not a finding about the log: the run could not finish. Said on the page, on a
        # connection of its own when the database went away under the run (a restart):
        # the page would otherwise show it running, and refuse a new one, for an hour.
        logger.exception("audit verification %s could not finish", claimed.pk)
        connections[DEFAULT_DB_ALIAS].close_if_unusable_or_obsolete()
        claimed.finished_at = timezone.now()
        claimed.problem = f"The verification could not finish ({type(error).__name__})."
        claimed.save(update_fields=["finished_at", "problem"])
        return claimed
    return _finish(claimed, result)


def audit_verification_record(result: VerifyResult) -> AuditVerification:
    """Keep a verification run outside the page (`manage.py audit_verify`) for the page."""
    now = timezone.now()
    return _finish(AuditVerification(requested_at=now, started_at=now), result)


def audit_checkpoint_refusal_record(refused: CheckpointRefused) -> AuditVerification:
    """Keep a refused checkpoint as the failed verification it is: the chains contradict
    what the last checkpoint signed. Shown on the Integrity page, with its event and
    the alert that event raises.

    The same finding again (the minutely checkpoint refused once more) is kept once:
    until someone deals with it, it is the newest finding on the page.
    """
    since = f"checkpoint {refused.checkpoint}" if refused.checkpoint else "none yet"
    reason = f"{refused.problem.reason} (found signing a checkpoint: none signed; last: {since})"
    problem = replace(refused.problem, reason=reason)
    latest = (
        AuditVerification.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
    )
    text = f"{problem.where()}: {problem.reason}"
    if latest is not None and latest.intact is False and latest.problem == text:
        return latest
    return audit_verification_record(VerifyResult(0, 0, 0, None, 0, problem))


def _finish(verification: AuditVerification, result: VerifyResult) -> AuditVerification:
    verification.finished_at = timezone.now()
    verification.intact = result.problem is None
    verification.events = result.events
    verification.chains = result.chains
    verification.checkpoints = result.checkpoints
    if result.problem is not None:
        verification.problem = f"{result.problem.where()}: {result.problem.reason}"
    # The finding is kept first, on its own: a log too broken to take the event that
    # reports it must still show the finding on the page.
    verification.save()
    if result.problem is None:
        kind = kinds.AUDIT_VERIFIED
        params = {
            "events": result.events,
            "chains": result.chains,
            "checkpoints": result.checkpoints,
        }
    else:
        kind = kinds.AUDIT_VERIFICATION_FAILED
        params = {"where": result.problem.where()}
    try:
        with transaction.atomic():
            audit_event_record(
                kind=kind,
                acting_user=None,
                ip=None,
                params=params,
                data={"verification": verification.pk},
            )
    except Exception:
        logger.exception("could not record the end of audit verification %s", verification.pk)
    return verification


@dataclass(frozen=True)
class IntegrityStatus:
    latest: AuditVerification | None  # the newest finished verification
    waiting: AuditVerification | None  # one asked for and not finished


def audit_integrity_status() -> IntegrityStatus:
    now = timezone.now()
    latest = (
        AuditVerification.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
    )
    waiting = AuditVerification.objects.filter(_unfinished(now)).order_by("requested_at").first()
    return IntegrityStatus(latest, waiting)


@dataclass(frozen=True)
class LastVerified:
    finished_at: datetime
    intact: bool | None  # None: the run could not finish


def audit_integrity_summary() -> LastVerified | None:
    """Return when the log was last verified, and with what result (None: never yet).

    For the compliance dashboard's line on integrity: one query of plain SQL down the
    `finished_at` index, as the dashboard's box of open alerts reads
    (alerts.selectors.alert_open_for): compiling the ORM's query cost more than the
    database's answer (0.24 ms a view), and the dashboard has a stated speed target.
    """
    connection = connections[DEFAULT_DB_ALIAS]  # verifications are written there
    table = connection.ops.quote_name(AuditVerification._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT finished_at, intact FROM {table} WHERE finished_at IS NOT NULL "  # noqa: S608  # nosec B608  (the model's table)
            "ORDER BY finished_at DESC LIMIT 1"
        )
        row = cursor.fetchone()
    if row is None:
        return None
    finished_at, intact = row
    if isinstance(finished_at, str):
        finished_at = datetime.fromisoformat(finished_at)
    if timezone.is_naive(finished_at):  # SQLite keeps UTC without saying so
        finished_at = finished_at.replace(tzinfo=UTC)
    return LastVerified(finished_at, None if intact is None else bool(intact))
