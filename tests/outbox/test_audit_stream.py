"""Every audit event reaches a TLS syslog receiver once, in order per chain, in either format."""

import json
import time
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit import kinds
from audit.models import AuditChain, AuditEvent
from audit.services import audit_event_record
from outbox import audit_stream, worker
from outbox.models import AuditCursor, Destination
from outbox.selectors import outbox_status
from tests.concurrency import run_together
from tests.syslog_receiver import SyslogReceiver, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def receiver(pki):
    with SyslogReceiver(pki.server_cert, pki.server_key) as running:
        yield running


def configure(settings, url, ca, fmt="json"):
    settings.AUDIT_SYSLOG_URL = url
    settings.AUDIT_SYSLOG_FORMAT = fmt
    settings.AUDIT_SYSLOG_CA_FILE = str(ca)
    settings.AUDIT_SYSLOG_CERT_FILE = settings.AUDIT_SYSLOG_KEY_FILE = ""


def write_events(provider, other_provider, count=3):
    for _ in range(count):
        for user in (provider, other_provider):
            audit_event_record(kind=kinds.SIGNED_IN, acting_user=user, account=user, ip="192.0.2.5")


def body(message: bytes) -> bytes:
    """The MSG part of an RFC 5424 message (after the header and structured data)."""
    parts = message.split(b" ", 7)
    return parts[7].removeprefix(b"\xef\xbb\xbf")


def test_every_event_arrives_once_in_order_per_chain_as_json(
    receiver, pki, settings, provider, other_provider
):
    configure(settings, receiver.url, pki.ca, "json")
    write_events(provider, other_provider)
    call_command("outbox_worker", "--once")
    total = AuditEvent.objects.count()
    lines = [json.loads(body(m)) for m in receiver.wait_for_messages(total)]
    assert len(lines) == total
    seen = [(line["ehr"]["audit"]["chain_id"], line["event"]["sequence"]) for line in lines]
    assert len(set(seen)) == total  # each once
    for chain in {c for c, _ in seen}:
        positions = [s for c, s in seen if c == chain]
        assert positions == list(range(1, len(positions) + 1))  # in order, no gap
    # Nothing more to send: a second pass sends nothing again.
    call_command("outbox_worker", "--once")
    assert len(receiver.messages) == total
    destination = Destination.objects.get(kind=Destination.Kind.SYSLOG)
    assert destination.delivered == total
    assert {c.chain_id: c.seq for c in AuditCursor.objects.all()} == {
        e["chain_id"]: e["seq"]
        for e in AuditEvent.objects.order_by("seq").values("chain_id", "seq")
    }


def test_atna_messages_are_dicom_audit_xml(receiver, pki, settings, provider, other_provider):
    configure(settings, receiver.url, pki.ca, "atna")
    write_events(provider, other_provider, count=1)
    worker.deliver_pending()
    messages = receiver.wait_for_messages(AuditEvent.objects.count())
    assert messages
    for message in messages:
        assert message.split(b" ", 7)[5] == b"IHE+RFC-3881"  # MSGID
        root = ET.fromstring(body(message))  # noqa: S314  (our own message, in a test)
        assert root.tag == "AuditMessage"
        assert root.find("EventIdentification") is not None
        assert root.find("AuditSourceIdentification") is not None


def test_a_receiver_down_then_up_loses_nothing_and_repeats_nothing(
    pki, settings, provider, other_provider
):
    with SyslogReceiver(pki.server_cert, pki.server_key) as first:
        port = first.port
        configure(settings, first.url, pki.ca, "json")
        write_events(provider, other_provider, count=1)
        worker.deliver_pending()
        delivered_before = len(first.wait_for_messages(AuditEvent.objects.count()))
    # The receiver is gone; events keep being written.
    write_events(provider, other_provider, count=2)
    worker.deliver_pending()
    destination = Destination.objects.get(kind=Destination.Kind.SYSLOG)
    assert destination.failures == 1 and destination.last_error
    [status] = [s for s in outbox_status() if s.name == destination.name]
    assert status.pending == AuditEvent.objects.count() - delivered_before
    assert status.oldest_pending_at is not None
    with SyslogReceiver(pki.server_cert, pki.server_key, port=port) as second:
        worker.deliver_pending(now=timezone.now() + timedelta(minutes=5))
        expected = AuditEvent.objects.count() - delivered_before
        lines = [json.loads(body(m)) for m in second.wait_for_messages(expected)]
    assert len(lines) == expected
    resent = {(line["ehr"]["audit"]["chain_id"], line["event"]["sequence"]) for line in lines}
    assert len(resent) == expected
    destination.refresh_from_db()
    assert destination.failures == 0 and destination.delivered == AuditEvent.objects.count()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_workers_at_once_send_each_event_once_in_order_while_events_are_written(
    receiver, pki, settings, provider, other_provider, monkeypatch
):
    configure(settings, receiver.url, pki.ca, "json")
    write_events(provider, other_provider, count=10)
    frame = audit_stream._frame

    def slow_frame(*args):  # a slower network: passes overlap in time
        time.sleep(0.002)
        return frame(*args)

    monkeypatch.setattr(audit_stream, "_frame", slow_frame)

    def work(role):
        if role == "writer":  # more events arrive while the workers run
            write_events(provider, other_provider, count=10)
            return 0
        total = 0
        for _ in range(20):
            total += worker.deliver_pending()
        return total

    _totals, errors = run_together(work, ["writer", 1, 2, 3, 4])
    assert errors == []
    while worker.deliver_pending():  # whatever the writer added after the last pass
        pass
    total = AuditEvent.objects.count()
    lines = [json.loads(body(m)) for m in receiver.wait_for_messages(total)]
    seen = [(line["ehr"]["audit"]["chain_id"], line["event"]["sequence"]) for line in lines]
    assert len(seen) == len(set(seen)) == total  # each once, never twice
    for chain in {c for c, _ in seen}:
        assert [s for c, s in seen if c == chain] == list(
            range(1, AuditEvent.objects.filter(chain_id=chain).count() + 1)
        )
    assert Destination.objects.get(kind=Destination.Kind.SYSLOG).delivered == total


def test_a_receiver_with_an_untrusted_certificate_gets_nothing(
    receiver, pki, settings, provider, other_provider
):
    configure(settings, receiver.url, pki.other_ca, "json")
    write_events(provider, other_provider, count=1)
    worker.deliver_pending()
    assert receiver.messages == []
    [status] = [s for s in outbox_status() if s.name.startswith("syslog")]
    assert "failed certificate verification" in status.last_error
    assert status.pending == AuditEvent.objects.count()
    assert not AuditCursor.objects.exists()


def test_without_a_syslog_url_nothing_is_streamed(settings, provider, other_provider):
    settings.AUDIT_SYSLOG_URL = ""
    write_events(provider, other_provider, count=1)
    worker.deliver_pending()
    assert audit_stream.configured() is None
    assert not Destination.objects.filter(kind=Destination.Kind.SYSLOG).exists()


def test_skipping_moves_cursors_only_forward_and_says_why_on_the_destination(
    settings, pki, provider, other_provider
):
    configure(settings, "tls://siem.example.org:6514", pki.ca, "atna")
    write_events(provider, other_provider)
    destination = audit_stream.ensure_destination()
    ahead, fresh = AuditChain.objects.order_by("pk").values_list("pk", flat=True)[:2]
    AuditCursor.objects.create(destination=destination, chain_id=ahead, seq=9)  # sent past it
    audit_stream.skip_undelivered(
        [
            audit_stream.Undelivered(destination.name, ahead, 1, 5),
            audit_stream.Undelivered(destination.name, fresh, 1, 3),
        ],
        reason="3 events of 2014-03 archived before they were sent",
    )
    cursors = dict(
        AuditCursor.objects.filter(destination=destination).values_list("chain_id", "seq")
    )
    assert cursors == {ahead: 9, fresh: 3}
    destination.refresh_from_db()
    assert destination.last_error == "3 events of 2014-03 archived before they were sent"
    assert destination.last_error_at is not None


def test_retiring_a_destination_forgets_it_and_records_what_it_never_received(
    settings, pki, provider, other_provider, capsys
):
    configure(settings, "tls://old.example.org:6514", pki.ca, "atna")
    write_events(provider, other_provider)
    old = audit_stream.ensure_destination()
    chain = AuditChain.objects.order_by("pk").first()
    AuditCursor.objects.create(destination=old, chain=chain, seq=chain.seq)
    pending = audit_stream.pending_count(old)
    assert pending > 0
    configure(settings, "tls://new.example.org:6514", pki.ca, "atna")
    call_command("outbox_retire", old.name)
    assert not Destination.objects.filter(pk=old.pk).exists()
    assert not AuditCursor.objects.exists()
    event = AuditEvent.objects.get(kind=kinds.AUDIT_STREAM_RETIRED.code)
    assert event.details == (
        f"Audit log copies to {old.name} retired: {pending} events it had not received will "
        "never be sent"
    )
    assert event.data == {"destination": old.name, "events": pending}
    assert capsys.readouterr().out == (
        f"Retired {old.name}; {pending} events it had not received will never be sent.\n"
    )


def test_the_destination_configured_now_or_a_mail_one_is_not_retired(db, settings, pki):
    configure(settings, "tls://siem.example.org:6514", pki.ca, "atna")
    configured = audit_stream.ensure_destination()
    mail = Destination.objects.create(name="mail", kind=Destination.Kind.MAIL)
    with pytest.raises(CommandError, match="is the syslog destination configured now"):
        call_command("outbox_retire", configured.name)
    with pytest.raises(CommandError, match="No syslog destination is named 'mail'"):
        call_command("outbox_retire", mail.name)
    assert Destination.objects.count() == 2
    assert not AuditEvent.objects.filter(kind=kinds.AUDIT_STREAM_RETIRED.code).exists()


def test_a_destination_left_from_before_fails_the_pass_while_behind_and_not_once_retired(
    settings, pki, provider, other_provider
):
    configure(settings, "tls://old.example.org:6514", pki.ca, "atna")
    write_events(provider, other_provider)
    old = audit_stream.ensure_destination()
    settings.AUDIT_SYSLOG_URL = ""  # the operator moved the copies elsewhere, or off
    with pytest.raises(CommandError, match=f"^{old.name}: no longer configured"):
        call_command("outbox_worker", "--once")
    call_command("outbox_retire", old.name)
    call_command("outbox_worker", "--once")
