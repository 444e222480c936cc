"""Mail leaves through the outbox: committed with the action, delivered by the worker, never lost."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from ehr.checks import check_outbox_lease
from outbox import worker
from outbox.models import Destination, OutboxItem
from outbox.services import MAIL, mail_enqueue, seal
from support_pin import conf, services
from tests.concurrency import run_together
from tests.conftest import Inbox, SmtpServer, free_port
from tests.support_pin.helpers import wrong_pin


def lock_out(provider, agent):
    for _ in range(conf.VALIDATION_LOCK_AFTER):
        services.support_pin_validate(
            acting_user=agent, account=provider, pin=wrong_pin(provider), ip=None
        )


def test_a_mail_is_sealed_at_rest_and_sent_once(db):
    with transaction.atomic():
        item = mail_enqueue(subject="Hello", body="secret link", recipients=["a@example.org"])
    stored = OutboxItem.objects.get(pk=item.pk)
    assert "secret link" not in stored.payload and "a@example.org" not in stored.payload
    assert worker.deliver_pending() == 1
    assert [(m.subject, m.body, m.to) for m in mail.outbox] == [
        ("Hello", "secret link", ["a@example.org"])
    ]
    assert not OutboxItem.objects.exists()  # delivered items leave the table
    assert worker.deliver_pending() == 0
    assert len(mail.outbox) == 1
    assert Destination.objects.get(name=MAIL).delivered == 1


def test_a_payload_moved_to_another_row_does_not_open(db):
    first = mail_enqueue(subject="One", body="one", recipients=["a@example.org"])
    second = mail_enqueue(subject="Two", body="two", recipients=["b@example.org"])
    OutboxItem.objects.filter(pk=second.pk).update(payload=first.payload)
    third = mail_enqueue(subject="Three", body="three", recipients=["c@example.org"])
    # The one that does not open is set aside; the others still go.
    while worker.deliver_pending():
        pass
    assert [m.subject for m in mail.outbox] == ["One", "Three"]
    assert OutboxItem.objects.get(pk=second.pk).dead_at is not None
    assert not OutboxItem.objects.filter(pk=third.pk).exists()
    assert "does not open" in Destination.objects.get(name=MAIL).last_error


def test_a_pass_from_cron_that_set_a_mail_aside_fails_after_sending_the_rest(db):
    first = mail_enqueue(subject="One", body="one", recipients=["a@example.org"])
    second = mail_enqueue(subject="Two", body="two", recipients=["b@example.org"])
    OutboxItem.objects.filter(pk=second.pk).update(payload=first.payload)
    mail_enqueue(subject="Three", body="three", recipients=["c@example.org"])
    with pytest.raises(CommandError, match=f"^mail: item {second.pk} does not open"):
        call_command("outbox_worker", "--once")
    assert [m.subject for m in mail.outbox] == ["One", "Three"]
    # The next pass has nothing to report: what was set aside stays on the Outbox page.
    call_command("outbox_worker", "--once")


def test_a_pass_from_cron_reports_its_own_failures_only(db, monkeypatch):
    """Another process (a second worker, audit_archive --skip-undelivered) may record an
    error on a destination while this pass runs: this pass failed nothing."""
    from outbox.management.commands import outbox_worker

    mail_enqueue(subject="One", body="one", recipients=["a@example.org"])
    other = Destination.objects.create(name="mail-b", kind=Destination.Kind.MAIL)
    real = outbox_worker.deliver_pass

    def beside_another_writer():
        Destination.objects.filter(pk=other.pk).update(
            last_error="140 events of 2026-10 archived before they were sent",
            last_error_at=timezone.now(),
        )
        return real()

    monkeypatch.setattr(outbox_worker, "deliver_pass", beside_another_writer)
    call_command("outbox_worker", "--once")
    assert [m.subject for m in mail.outbox] == ["One"]


def test_a_failure_that_a_later_try_of_the_same_run_got_past_does_not_fail_it(
    db, settings, monkeypatch
):
    settings.OUTBOX_RETRY_BASE_SECONDS = 0  # stands for a run longer than the back-off
    for n in range(3):
        mail_enqueue(subject=f"M{n}", body="x", recipients=["a@example.org"])
    real = worker.SENDERS[Destination.Kind.MAIL]
    tries = []

    def hiccup_once(items, lease):
        tries.append(1)
        if len(tries) == 1:  # one goes, then the server drops the connection
            return worker.Sent(real(items[:1], lease).delivered, "SMTPServerDisconnected: 421")
        return real(items, lease)

    monkeypatch.setitem(worker.SENDERS, Destination.Kind.MAIL, hiccup_once)
    call_command("outbox_worker", "--once")
    assert len(mail.outbox) == 3 and not OutboxItem.objects.exists()
    assert len(tries) == 2


def test_an_idle_worker_takes_no_destination_and_writes_nothing(db):
    from django.test.utils import CaptureQueriesContext

    Destination.objects.create(name=MAIL, kind=Destination.Kind.MAIL)  # nothing waits
    Destination.objects.create(name="old siem", kind=Destination.Kind.SYSLOG)  # nothing behind
    with CaptureQueriesContext(connection) as queries:
        assert worker.deliver_pass().outcomes == {}
    written = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert written == []
    call_command("outbox_worker", "--once")


def test_a_mail_that_cannot_be_built_is_set_aside_and_the_rest_still_go(db):
    """A subject with a line break stopped every mail behind it: it is set aside now."""
    first = mail_enqueue(subject="One", body="one", recipients=["a@example.org"])
    second = mail_enqueue(subject="Two", body="two", recipients=["b@example.org"])
    # As a release that queued subjects as given could have left it.
    # A long name with line breaks: the error must neither overflow the row nor quote it.
    subject = "Two " + "Ana Lopez\r\n" * 80 + "Bcc: x@example.org"
    broken = {"subject": subject, "body": "two", "to": ["b@example.org"]}
    OutboxItem.objects.filter(pk=second.pk).update(
        payload=seal(second.token, {**broken, "from": settings.DEFAULT_FROM_EMAIL})
    )
    mail_enqueue(subject="Three", body="three", recipients=["c@example.org"])
    while worker.deliver_pending():
        pass
    assert [m.subject for m in mail.outbox] == ["One", "Three"]
    assert OutboxItem.objects.get(pk=second.pk).dead_at is not None
    last_error = Destination.objects.get(name=MAIL).last_error
    assert "cannot be sent" in last_error and "Ana Lopez" not in last_error
    assert not OutboxItem.objects.filter(pk=first.pk).exists()


def test_a_subject_is_queued_on_one_line(db):
    mail_enqueue(
        subject="Break-glass access #5 opened on Eve Doe\r\nBcc: x@example.org",
        body="x",
        recipients=["a@example.org"],
    )
    worker.deliver_pending()
    assert [m.subject for m in mail.outbox] == [
        "Break-glass access #5 opened on Eve Doe Bcc: x@example.org"
    ]


def test_the_action_fails_when_its_mail_cannot_be_queued(provider, agent, monkeypatch):
    """Fail closed: no lock without its notice."""

    def broken(*args, **kwargs):
        raise DatabaseError("outbox unavailable")

    monkeypatch.setattr("outbox.services.seal", broken)
    with pytest.raises(DatabaseError), transaction.atomic():
        lock_out(provider, agent)
    provider.pins.refresh_from_db()
    assert provider.pins.validation_locked_until is None
    assert not OutboxItem.objects.exists()


def test_mail_server_down_then_up_nothing_lost_nothing_twice(
    smtp_server, provider, agent, client, settings
):
    client.force_login(agent)
    agent_client = client
    smtp_server.stop()
    # The page that causes the mail answers normally while the server is down.
    for _ in range(conf.VALIDATION_LOCK_AFTER):
        response = agent_client.post(
            "/support/validate/pin/",
            {"account": provider.pk, "pin": wrong_pin(provider)},
        )
        assert response.status_code in {200, 302}, response.status_code
    assert OutboxItem.objects.count() == 1
    # Run from cron, the pass fails, naming the destination and why.
    with pytest.raises(CommandError) as failed:
        call_command("outbox_worker", "--once")
    destination = Destination.objects.get(name=MAIL)
    assert str(failed.value).startswith(f"{MAIL}: {destination.last_error}")
    assert destination.failures == 1 and destination.last_error
    assert destination.next_attempt_at > timezone.now()
    assert OutboxItem.objects.get().attempts == 1
    # Before the back-off ends, nothing is tried.
    call_command("outbox_worker", "--once")
    assert Destination.objects.get(name=MAIL).failures == 1
    # Still down at the next try: the wait doubles.
    later = destination.next_attempt_at + timedelta(seconds=1)
    worker.deliver_pending(now=later)
    destination.refresh_from_db()
    assert destination.failures == 2
    assert destination.next_attempt_at - destination.last_error_at == timedelta(
        seconds=2 * settings.OUTBOX_RETRY_BASE_SECONDS
    )
    smtp_server.start()
    worker.deliver_pending(now=destination.next_attempt_at + timedelta(seconds=1))
    assert len(smtp_server.messages) == 1
    assert smtp_server.messages[0]["Subject"] == "Support PIN validation locked on your account"
    destination.refresh_from_db()
    assert (destination.failures, destination.next_attempt_at, destination.delivered) == (
        0,
        None,
        1,
    )
    call_command("outbox_worker", "--once")
    assert len(smtp_server.messages) == 1


def test_a_worker_that_died_holding_a_destination_is_replaced_after_its_lease(db, settings):
    mail_enqueue(subject="Hello", body="x", recipients=["a@example.org"])
    destination = Destination.objects.get(name=MAIL)
    now = timezone.now()
    # A worker took it and was killed before sending anything.
    Destination.objects.filter(pk=destination.pk).update(
        leased_until=now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    )
    assert worker.deliver_pending(now=now) == 0
    assert mail.outbox == []
    later = now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS + 1)
    assert worker.deliver_pending(now=later) == 1
    assert len(mail.outbox) == 1


def test_a_slow_mail_server_never_keeps_a_worker_past_half_its_lease(db, settings, monkeypatch):
    """Each mail takes a third of the lease: two go, the third waits for the next pass.

    Were the worker to go on, its lease would lapse while it still sends, and a
    second worker could take the destination and send the same mails at once.
    """
    for n in range(5):
        mail_enqueue(subject=f"#{n}", body="x", recipients=["a@example.org"])
    clock = [1000.0]
    monkeypatch.setattr(worker.time, "monotonic", lambda: clock[0])
    send = mail.backends.locmem.EmailBackend.send_messages

    def slow(backend, messages):
        clock[0] += settings.OUTBOX_LEASE_SECONDS / 3
        return send(backend, messages)

    monkeypatch.setattr(mail.backends.locmem.EmailBackend, "send_messages", slow)
    assert worker.deliver_pending() == 2
    destination = Destination.objects.get(name=MAIL)
    assert destination.failures == 0 and destination.leased_until is None  # not an error
    assert worker.deliver_pending() == 2
    assert worker.deliver_pending() == 1
    assert [m.subject for m in mail.outbox] == [f"#{n}" for n in range(5)]


def test_no_exchange_with_the_mail_server_waits_for_ever(settings):
    from django.core.mail.backends.smtp import EmailBackend

    assert 0 < EmailBackend().timeout * worker.MAIL_EXCHANGES < settings.OUTBOX_LEASE_SECONDS
    assert check_outbox_lease(None) == []
    settings.EMAIL_TIMEOUT = 30  # a mail could take 300 s, past the 120 s lease: refused
    [error] = check_outbox_lease(None)
    assert error.id == "ehr.E004" and "must be longer than the 300 seconds" in error.msg


def test_a_worker_whose_lease_passed_to_another_stops_and_leaves_it_alone(db, monkeypatch):
    """A mail server slow past the lease: another worker took the destination meanwhile.

    The first worker sends no further mail and does not end the other's lease.
    """
    for n in range(3):
        mail_enqueue(subject=f"#{n}", body="x", recipients=["a@example.org"])
    theirs = timezone.now() + timedelta(hours=1)
    send = mail.backends.locmem.EmailBackend.send_messages

    def slow(backend, messages):
        Destination.objects.filter(name=MAIL).update(leased_until=theirs)  # taken over
        return send(backend, messages)

    monkeypatch.setattr(mail.backends.locmem.EmailBackend, "send_messages", slow)
    assert worker.deliver_pending() == 1
    destination = Destination.objects.get(name=MAIL)
    assert destination.leased_until == theirs and destination.delivered == 1
    assert [m.subject for m in mail.outbox] == ["#0"]
    assert OutboxItem.objects.count() == 2  # the other worker's to send


class RefusingInbox(Inbox):
    """A mail server that refuses one recipient, for good (550) or for now (450)."""

    def __init__(self, refused: str, code: int):
        super().__init__()
        self.refused, self.code = refused, code

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == self.refused:
            return f"{self.code} 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def refusing(settings):
    def start(code: int) -> SmtpServer:
        server = SmtpServer(free_port(), RefusingInbox("gone@example.org", code))
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        server.start()
        started.append(server)
        return server

    started = []
    yield start
    for server in started:
        server.stop()


def test_a_recipient_refused_for_good_is_set_aside_and_the_rest_still_go(db, refusing):
    server = refusing(550)
    mail_enqueue(subject="#0", body="x", recipients=["a@example.org"])
    gone = mail_enqueue(subject="#1", body="x", recipients=["gone@example.org"])
    for n in (2, 3):
        mail_enqueue(subject=f"#{n}", body="x", recipients=["a@example.org"])
    while worker.deliver_pending():
        pass
    assert [m["Subject"] for m in server.messages] == ["#0", "#2", "#3"]
    assert OutboxItem.objects.get().pk == gone.pk
    assert OutboxItem.objects.get().dead_at is not None
    destination = Destination.objects.get(name=MAIL)
    assert destination.failures == 0 and destination.next_attempt_at is None
    assert "refused its recipients (550)" in destination.last_error
    assert "gone@example.org" not in destination.last_error  # recipients are sealed at rest


def test_a_recipient_refused_for_now_is_tried_again(db, refusing):
    server = refusing(450)
    mail_enqueue(subject="#0", body="x", recipients=["gone@example.org"])
    mail_enqueue(subject="#1", body="x", recipients=["a@example.org"])
    assert worker.deliver_pending() == 0
    destination = Destination.objects.get(name=MAIL)
    assert destination.failures == 1 and destination.next_attempt_at is not None
    assert destination.last_error == "SMTPRecipientsRefused: 450"
    assert not OutboxItem.objects.filter(dead_at__isnull=False).exists()
    assert server.messages == []  # in order: the second waits behind the first


def test_mails_go_in_the_order_they_were_queued(db):
    for n in range(5):
        mail_enqueue(subject=f"#{n}", body="x", recipients=["a@example.org"])
    worker.deliver_pending()
    assert [m.subject for m in mail.outbox] == [f"#{n}" for n in range(5)]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_never_send_an_item_twice(smtp_server):
    for n in range(40):
        mail_enqueue(subject=f"#{n}", body="x", recipients=["a@example.org"])

    def work(_):
        total = 0
        while delivered := worker.deliver_pending():
            total += delivered
        return total

    totals, errors = run_together(work, [1, 2, 3, 4])
    assert errors == []
    assert sum(totals) == 40
    subjects = [m["Subject"] for m in smtp_server.messages]
    assert sorted(subjects) == sorted(f"#{n}" for n in range(40))
    assert subjects == [
        f"#{n}" for n in range(40)
    ]  # one destination: one worker at a time, in order
    assert not OutboxItem.objects.exists()


class HeldInbox(Inbox):
    """An SMTP server's inbox that holds the `hold_at`th message (1-based) until released."""

    def __init__(self, hold_at: int):
        super().__init__()
        self.hold_at, self.holding, self.release = hold_at, threading.Event(), threading.Event()

    async def handle_DATA(self, server, session, envelope):
        if len(self.messages) + 1 == self.hold_at and not self.release.is_set():
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


WORKER = """
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", {port}, 10
call_command("outbox_worker", "--interval", "0.1")
"""


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_leaves_its_batch_to_the_next(settings):
    """A real worker process, killed while the mail server holds its third mail.

    Its lease keeps other workers off until it runs out; then the next worker
    sends the whole batch again, in order (at least once: the first mails and the
    one in flight arrive twice, nothing is lost).
    """
    subjects = [f"#{n}" for n in range(6)]
    for subject in subjects:
        mail_enqueue(subject=subject, body="x", recipients=["a@example.org"])
    inbox = HeldInbox(hold_at=3)
    server = SmtpServer(free_port(), inbox)
    server.start()
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ehr.settings_test",
        "DATABASE_URL": (
            f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST']}:"
            f"{database['PORT']}/{database['NAME']}"
        ),
    }
    process = subprocess.Popen(  # noqa: S603  (this interpreter, a fixed script)
        [sys.executable, "-c", WORKER.format(port=server.port)],
        cwd=settings.BASE_DIR,
        env=env,
    )
    try:
        assert inbox.holding.wait(timeout=60), "the worker never reached the third mail"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        inbox.release.set()
    assert [m["Subject"] for m in inbox.messages[:2]] == subjects[:2]
    assert OutboxItem.objects.count() == len(subjects)  # nothing was marked sent
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    try:
        assert worker.deliver_pending() == 0  # the dead worker's lease still holds
        lease_over = timezone.now() + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS + 1)
        assert worker.deliver_pending(now=lease_over) == len(subjects)
    finally:
        server.stop()
    received = [m["Subject"] for m in inbox.messages]
    assert received[-len(subjects) :] == subjects  # the whole batch again, in order
    assert set(received) == set(subjects)
    assert not OutboxItem.objects.exists()
    assert Destination.objects.get(name=MAIL).delivered == len(subjects)


def test_outbox_status_shows_the_lag_and_fails_when_it_is_too_old(db, capsys, smtp_server):
    call_command("outbox_status")
    assert "Nothing has gone through" in capsys.readouterr().out
    smtp_server.stop()
    mail_enqueue(subject="Hello", body="x", recipients=["a@example.org"])
    with pytest.raises(CommandError, match=r"^mail: ConnectionRefusedError"):
        call_command("outbox_worker", "--once")
    call_command("outbox_status", "--max-age", "3600")
    out = capsys.readouterr().out
    assert "mail: 1 pending" in out and "1 failed attempts in a row" in out
    assert "last error" in out
    OutboxItem.objects.update(created_at=timezone.now() - timedelta(hours=2))
    with pytest.raises(CommandError, match="Outbox behind or blocked: mail"):
        call_command("outbox_status", "--max-age", "3600")


def test_a_platform_auditor_sees_the_lag_and_the_last_error(client, db, smtp_server):
    from accounts.roles import Role
    from tests.factories import make_user

    smtp_server.stop()
    mail_enqueue(subject="Hello", body="x", recipients=["a@example.org"])
    with pytest.raises(CommandError, match=r"^mail: ConnectionRefusedError"):
        call_command("outbox_worker", "--once")
    client.force_login(make_user(Role.PLATFORM_AUDITOR, username="auditor"))
    page = client.get("/audit/outbox/").content.decode()
    assert "<td>mail</td>" in page and "<td>1</td>" in page
    assert "ConnectionRefusedError" in page
    assert 'href="/audit/outbox/"' in page  # in the menu


def test_the_worker_keeps_going_after_the_database_goes_away(db, monkeypatch):
    """A restarted database: the pass fails, the connection is dropped, the next pass delivers."""
    from django.db import OperationalError

    from outbox.management.commands import outbox_worker

    mail_enqueue(subject="Hello", body="x", recipients=["a@example.org"])
    passes, closed = [], []
    real = worker.deliver_pending

    def flaky():
        passes.append(1)
        if len(passes) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real()

    class Stop(Exception):
        pass

    def sleep(seconds):
        if len(passes) >= 3:
            raise Stop

    monkeypatch.setattr(outbox_worker, "deliver_pending", flaky)
    monkeypatch.setattr(outbox_worker.time, "sleep", sleep)
    monkeypatch.setattr(outbox_worker.connections, "close_all", lambda: closed.append(1))
    with pytest.raises(Stop):
        call_command("outbox_worker")
    assert closed == [1]
    assert [m.subject for m in mail.outbox] == ["Hello"]


@pytest.mark.parametrize("interval", ["-1", "0", "nan", "soon"])
def test_a_worker_refuses_a_pause_it_could_not_keep(db, interval):
    """Negative: it would stop at its first idle pass; zero: it would spin on the database."""
    with pytest.raises(CommandError, match="--interval"):
        call_command("outbox_worker", "--interval", interval)
