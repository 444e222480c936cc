import pytest

from accounts.roles import Role
from support_pin.services import support_pin_validate
from tests.factories import make_user
from tests.support_pin.helpers import wrong_pin


@pytest.fixture(autouse=True)
def checkpoints_never_late(settings):
    """These tests move the clock on by hours with no checkpoint timer running: each rule
    is tested on its own, and the checkpoint lag's test sets its limit back."""
    settings.ALERT_CHECKPOINT_LAG_SECONDS = 10**9


@pytest.fixture
def officer(practice):
    return make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="compliance")


@pytest.fixture
def other_officer(other_practice):
    return make_user(Role.COMPLIANCE_OFFICER, practice=other_practice, username="othercompliance")


@pytest.fixture
def auditor(db):
    return make_user(Role.PLATFORM_AUDITOR, username="auditor")


@pytest.fixture
def accounts(practice):
    """Nurses of the practice, for an agent to try: one wrong PIN each stays below any lock."""
    return [make_user(Role.NURSE, practice=practice, username=f"n{i}") for i in range(4)]


def fail(agent, account):
    support_pin_validate(acting_user=agent, account=account, pin=wrong_pin(account), ip=None)
