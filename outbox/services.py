"""Put things in the outbox, inside the caller's transaction."""

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction

from accounts.models import User
from audit import kinds
from audit.services import audit_event_record
from ehr import crypto
from outbox import audit_stream
from outbox.models import Destination, OutboxItem

MAIL = "mail"


def destination_id(name: str, kind: str) -> int:
    """The destination's id, created on first use."""
    return Destination.objects.get_or_create(name=name, defaults={"kind": kind})[0].pk


def seal(item_token, data: dict) -> str:
    return crypto.encrypt(json.dumps(data), aad=_aad(item_token))


def unseal(item: OutboxItem) -> dict:
    return json.loads(crypto.decrypt(item.payload, aad=_aad(item.token)))


def _aad(token) -> bytes:
    return f"outbox.OutboxItem.payload|{token}".encode()


def mail_enqueue_each_zone(
    *, people: Iterable[User], subject: str, body: Callable[[ZoneInfo], str]
) -> None:
    """Queue a mail to `people` with its times in their own zones: one mail per zone among
    them (one for most practices), its text written by `body` for that zone. An address
    two of them share (an officer's and an auditor's) gets one mail, in the first one's
    zone."""
    zones: dict[str, ZoneInfo] = {}
    for person in people:
        if person.email and person.email not in zones:
            zones[person.email] = person.zone
    by_zone: dict[str, list[str]] = defaultdict(list)
    for address, zone in zones.items():
        by_zone[zone.key].append(address)
    for key, addresses in sorted(by_zone.items()):
        mail_enqueue(subject=subject, body=body(ZoneInfo(key)), recipients=sorted(addresses))


def mail_enqueue(*, subject: str, body: str, recipients: list[str]) -> OutboxItem | None:
    """Queue a mail; it is sent after the caller's transaction commits, by the outbox worker.

    If the caller's transaction rolls back, so does the mail. If the item cannot be
    written, the caller's transaction fails (nothing is sent for an action that
    did not happen, and no action happens whose notice would be lost).

    The subject is put on one line: it is a mail header, and subjects carry
    people's names, which a line break would turn into a header of their own
    (Django refuses to send such a mail at all).
    """
    subject = " ".join(subject.split())
    recipients = [address for address in recipients if address]
    if not recipients:
        return None
    with transaction.atomic():
        item = OutboxItem(destination_id=destination_id(MAIL, Destination.Kind.MAIL))
        item.payload = seal(
            item.token,
            {
                "subject": subject,
                "body": body,
                "to": recipients,
                "from": settings.DEFAULT_FROM_EMAIL,
            },
        )
        item.save()
    return item


class DestinationInUse(Exception):
    """The destination is the one configured now."""


def syslog_destination_retire(*, name: str, acting_user: User | None) -> int:
    """Forget a syslog destination no longer used, so the archive stops waiting for it.

    Refused for the destination AUDIT_SYSLOG_URL names in this process (the
    worker would take it up again at once). The row and its cursors go; what it
    had not received is counted in the audit event, in the same transaction.
    Should the worker still be configured with it, it creates the row again on
    its next pass, with no cursors, and the archive waits for it once more.
    Return how many events it had not received.
    """
    config = audit_stream.configured()
    if config is not None and config.name == name:
        raise DestinationInUse(
            f"{name!r} is the syslog destination configured now (AUDIT_SYSLOG_URL, "
            "AUDIT_SYSLOG_FORMAT): change the configuration, and the worker's, first."
        )
    with transaction.atomic():
        destination = (
            Destination.objects.select_for_update()
            .filter(name=name, kind=Destination.Kind.SYSLOG)
            .first()
        )
        if destination is None:
            raise Destination.DoesNotExist(f"No syslog destination is named {name!r}.")
        pending = audit_stream.pending_count(destination)
        audit_event_record(
            kind=kinds.AUDIT_STREAM_RETIRED,
            acting_user=acting_user,
            ip=None,
            params={"destination": name, "events": pending},
            data={"destination": name, "events": pending},
        )
        destination.delete()
    return pending
