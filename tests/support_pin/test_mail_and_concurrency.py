import pytest
from django.core.management import call_command
from django.db import transaction

from audit.models import AuditEvent
from outbox.models import OutboxItem
from support_pin import conf, services
from support_pin.services import ValidationOutcome
from tests.concurrency import run_together
from tests.support_pin.helpers import current_pin, wrong_pin


def lock_out(provider, agent):
    for _ in range(conf.VALIDATION_LOCK_AFTER):
        services.support_pin_validate(
            acting_user=agent, account=provider, pin=wrong_pin(provider), ip=None
        )


def test_lockout_mail_goes_through_a_real_smtp_server_after_commit(smtp_server, provider, agent):
    lock_out(provider, agent)
    assert smtp_server.messages == []  # it waits in the outbox for the worker
    call_command("outbox_worker", "--once")
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message["To"] == provider.email
    assert message["Subject"] == "Support PIN validation locked on your account"
    assert current_pin(provider) not in message.get_payload()


def test_no_mail_when_the_transaction_rolls_back(smtp_server, provider, agent):
    with pytest.raises(RuntimeError), transaction.atomic():
        lock_out(provider, agent)
        assert OutboxItem.objects.count() == 1
        raise RuntimeError("something later in the request failed")
    assert not OutboxItem.objects.exists()
    call_command("outbox_worker", "--once")
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
