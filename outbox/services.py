"""Put things in the outbox, inside the caller's transaction."""

import json

from django.conf import settings
from django.db import transaction

from ehr import crypto
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


def mail_enqueue(*, subject: str, body: str, recipients: list[str]) -> OutboxItem | None:
    """Queue a mail; it is sent after the caller's transaction commits, by the outbox worker.

    If the caller's transaction rolls back, so does the mail. If the item cannot be
    written, the caller's transaction fails (nothing is sent for an action that
    did not happen, and no action happens whose notice would be lost).
    """
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
