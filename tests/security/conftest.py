import pytest

from accounts.roles import Role
from tests.factories import make_practice, make_user

PRACTICE_MEMBERS = [
    Role.PROVIDER,
    Role.NURSE,
    Role.SCHEDULER,
    Role.BILLING,
    Role.PRACTICE_ADMIN,
    Role.COMPLIANCE_OFFICER,
]


@pytest.fixture
def people(db):
    """One account of every role, in one practice where the role belongs to one."""
    practice = make_practice("Ludwig Family Medicine")
    users = {}
    for role in Role:
        users[role.value] = make_user(
            role,
            practice=practice if role in PRACTICE_MEMBERS else None,
            username=f"m_{role.value}",
        )
    return users
