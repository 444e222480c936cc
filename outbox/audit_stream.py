"""Copies of the audit trail for a SIEM or audit record repository, over TLS syslog.

Configured by AUDIT_SYSLOG_URL (`tls://host:6514`), AUDIT_SYSLOG_FORMAT (`atna`:
IHE ATNA / DICOM audit XML; `json`: Elastic Common Schema lines),
AUDIT_SYSLOG_CA_FILE, and AUDIT_SYSLOG_CERT_FILE/AUDIT_SYSLOG_KEY_FILE for
mutual TLS. Each chain's events are sent in order after the destination's
cursor, each carrying its chain and position, so the receiver can tell a gap.
"""

import socket
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.atna import EVENT_KEYS
from audit.models import AuditChain, AuditEvent
from audit.syslog import (
    SyslogSendError,
    SyslogTlsSender,
    atna_syslog_message,
    ecs_syslog_message,
    octet_frame,
)
from outbox.models import AuditCursor, Destination

BATCH = 200
FORMATS = ("atna", "json")


@dataclass(frozen=True)
class SyslogConfig:
    url: str
    format: str
    ca_file: str
    cert_file: str | None
    key_file: str | None

    @property
    def name(self) -> str:
        return f"syslog {self.format} {self.url}"


def configured() -> SyslogConfig | None:
    url = getattr(settings, "AUDIT_SYSLOG_URL", "")
    if not url:
        return None
    return SyslogConfig(
        url=url,
        format=settings.AUDIT_SYSLOG_FORMAT,
        ca_file=settings.AUDIT_SYSLOG_CA_FILE,
        cert_file=settings.AUDIT_SYSLOG_CERT_FILE or None,
        key_file=settings.AUDIT_SYSLOG_KEY_FILE or None,
    )


def ensure_destination() -> Destination | None:
    config = configured()
    if config is None:
        return None
    return Destination.objects.get_or_create(
        name=config.name, defaults={"kind": Destination.Kind.SYSLOG}
    )[0]


def chains_behind(destination: Destination):
    """Chains with events the destination has not received: (chain id, last sent, head)."""
    sent = AuditCursor.objects.filter(destination=destination, chain=OuterRef("pk")).values("seq")
    return (
        AuditChain.objects.annotate(sent=Coalesce(Subquery(sent), F("start_seq") - Value(1)))
        .filter(seq__gt=F("sent"))
        .order_by("pk")
        .values_list("pk", "sent", "seq")
    )


@dataclass(frozen=True)
class Undelivered:
    """Events of one chain, `first` to `last`, that a syslog destination has not received."""

    destination: str
    chain_id: int
    first: int
    last: int

    @property
    def events(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        return f"chain {self.chain_id} seq {self.first}-{self.last}"


def streamed_names() -> list[str]:
    """Return the names of every syslog destination the audit trail is owed to.

    Each syslog row in the database (the worker creates its destination's row on
    every pass, and keeps its cursors there), whether or not this process's
    environment names it, and the one AUDIT_SYSLOG_URL names here even before
    the worker has created its row.
    """
    names = set(
        Destination.objects.filter(kind=Destination.Kind.SYSLOG).values_list("name", flat=True)
    )
    config = configured()
    if config is not None:
        names.add(config.name)
    return sorted(names)


def undelivered(segments: dict[int, tuple[int, int]]) -> list[Undelivered]:
    """Return what each syslog destination has not received of `segments`.

    `segments` maps a chain to the first and last seq of a stretch of its events
    (a month `audit_archive` is about to drop). A destination has received a
    chain up to its cursor; without one, nothing since the chain's start, which
    for the oldest month held is the stretch's first event less one. Every
    destination in the database counts, not only the one this process's
    AUDIT_SYSLOG_URL names: an archive run from a shell without the worker's
    environment must not drop what the worker has still to send. A destination
    no longer used stops counting once retired (`manage.py outbox_retire`).
    """
    names = streamed_names()
    cursors = {
        (name, chain_id): seq
        for name, chain_id, seq in AuditCursor.objects.filter(
            destination__name__in=names, chain_id__in=segments
        ).values_list("destination__name", "chain_id", "seq")
    }
    missing = []
    for name in names:
        for chain_id, (first, last) in sorted(segments.items()):
            sent = cursors.get((name, chain_id), first - 1)
            if sent < last:
                missing.append(Undelivered(name, chain_id, max(sent + 1, first), last))
    return missing


def skip_undelivered(missing: list[Undelivered], *, reason: str) -> None:
    """Move one destination's cursors past events it will never receive, and say so on it.

    `missing` is one destination's, as `undelivered` names it. Only forward: a
    cursor the worker moved further meanwhile stays. The reason stays on the
    destination as its last error (the Outbox page, `outbox_status`) until
    another error replaces it. A destination that has no row yet (configured
    here, never taken up by the worker) gets none: no row is ever created here,
    so a name this process's environment spells differently from the worker's
    leaves no phantom destination behind, and a destination created later
    starts at the chains' new starts anyway. In the caller's transaction.
    """
    if not missing:
        return
    (name,) = {item.destination for item in missing}
    destination = Destination.objects.filter(name=name, kind=Destination.Kind.SYSLOG).first()
    if destination is None:
        return
    for item in missing:
        moved = AuditCursor.objects.filter(
            destination=destination, chain_id=item.chain_id, seq__lt=item.last
        ).update(seq=item.last)
        if not moved:
            AuditCursor.objects.get_or_create(
                destination=destination, chain_id=item.chain_id, defaults={"seq": item.last}
            )
    Destination.objects.filter(pk=destination.pk).update(
        last_error=reason[:500], last_error_at=timezone.now()
    )


def pending_count(destination: Destination) -> int:
    return sum(head - sent for _, sent, head in chains_behind(destination))


_senders: dict[str, SyslogTlsSender] = {}


def _sender(config: SyslogConfig) -> SyslogTlsSender:
    """One connection per destination and process, kept open between passes."""
    sender = _senders.get(config.name)
    if sender is None:
        sender = _senders[config.name] = SyslogTlsSender(
            config.url, config.ca_file, cert_file=config.cert_file, key_file=config.key_file
        )
    return sender


def _frame(event: dict, config: SyslogConfig, hostname: str) -> bytes:
    if config.format == "atna":
        return octet_frame(atna_syslog_message(event, hostname=hostname))
    return octet_frame(ecs_syslog_message(event, hostname=hostname))


@dataclass
class Streamed:
    delivered: int
    error: str | None = None


def send_behind(destination: Destination, deadline: float) -> Streamed:
    """Send one batch of each chain that is behind; move the cursors of what went.

    No chain's batch starts after `deadline` (`time.monotonic()`): see outbox.worker.
    """
    config = configured()
    if config is None or config.name != destination.name:
        return Streamed(0, "no longer configured")
    hostname = socket.gethostname()
    delivered = 0
    for chain_id, sent, head in list(chains_behind(destination)[:50]):
        if delivered and time.monotonic() >= deadline:
            break
        events = list(
            AuditEvent.objects.filter(chain_id=chain_id, seq__gt=sent, seq__lte=head)
            .order_by("seq")
            .values(*EVENT_KEYS)[:BATCH]
        )
        if not events:
            continue
        try:
            _sender(config).send([_frame(event, config, hostname) for event in events])
        except (SyslogSendError, OSError, ValueError) as error:
            return Streamed(delivered, f"{type(error).__name__}: {error}")  # cut when kept
        AuditCursor.objects.update_or_create(
            destination=destination, chain_id=chain_id, defaults={"seq": events[-1]["seq"]}
        )
        delivered += len(events)
    return Streamed(delivered)
