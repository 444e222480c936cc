import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from django.db import transaction

from audit.models import AuditEvent
from support_pin import conf, services
from support_pin.services import ValidationOutcome
from tests.concurrency import run_together
from tests.support_pin.helpers import current_pin, wrong_pin


class Inbox(Message):
    def __init__(self):
        super().__init__()
        self.messages = []

    def handle_message(self, message):
        self.messages.append(message)


@pytest.fixture
def smtp_server(settings):
    inbox = Inbox()
    with socket.socket() as probe:  # a free loopback port for this test's server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    yield inbox
    controller.stop()


def lock_out(provider, agent):
    for _ in range(conf.VALIDATION_LOCK_AFTER):
        services.support_pin_validate(
            acting_user=agent, account=provider, pin=wrong_pin(provider), ip=None
        )


def test_lockout_mail_goes_through_a_real_smtp_server_after_commit(
    smtp_server, provider, agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        lock_out(provider, agent)
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message["To"] == provider.email
    assert message["Subject"] == "Support PIN validation locked on your account"
    assert current_pin(provider) not in message.get_payload()


def test_no_mail_when_the_transaction_rolls_back(
    smtp_server, provider, agent, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        lock_out(provider, agent)
        raise RuntimeError("something later in the request failed")
    assert callbacks == []
    assert smtp_server.messages == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_twenty_agents_validating_the_same_pin_at_once_get_exactly_one_success(
    practice, monkeypatch
):
    from accounts.roles import Role
    from tests.factories import make_user

    monkeypatch.setattr(conf, "VALIDATION_LOCK_AFTER", 100)  # this test is about the race only
    owner = make_user(Role.PROVIDER, practice=practice, first_name="dorothy", last_name="Ludwig")
    agents = [make_user(Role.SUPPORT_AGENT) for _ in range(20)]
    pin = current_pin(owner)
    start = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()

    def validate(agent):
        return services.support_pin_validate(
            acting_user=agent, account=owner, pin=pin, ip=None
        ).outcome

    outcomes, errors = run_together(validate, agents)
    assert errors == []
    assert outcomes.count(ValidationOutcome.MATCHED) == 1
    assert outcomes.count(ValidationOutcome.MISMATCHED) == 19
    details = list(AuditEvent.objects.filter(id__gt=start).values_list("details", flat=True))
    assert details.count("Successful validation of Support PIN for user dorothy Ludwig") == 1
    assert details.count("Unsuccessful validation of Support PIN for user dorothy Ludwig") == 19
    assert details.count("Generated New PIN for user dorothy Ludwig") == 1
    assert current_pin(owner) != pin
