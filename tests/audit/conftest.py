"""The report's story: events of two practices over two weeks, the seed's among them."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from accounts.roles import Role
from audit import kinds
from tests.audit.helpers import NOW, chart_viewed, record_at
from tests.factories import make_user


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def compliance(practice):
    return make_user(
        Role.COMPLIANCE_OFFICER,
        practice=practice,
        username="compliance",
        first_name="Carol",
        last_name="Okafor",
    )


@pytest.fixture
def auditor(db):
    return make_user(Role.PLATFORM_AUDITOR, username="auditor")


@pytest.fixture
def log(provider, nurse, other_provider, compliance, auditor, agent, clock):
    """Events of both practices over two weeks, the seed's story among them.

    The accounts are created first, at the real date (their creation events
    fall outside every range used here); then the clock stops at NOW.
    """
    seed_time = datetime(2024, 3, 18, 21, 6, 19, tzinfo=UTC)  # 05:06:19 PM EDT
    record_at(
        seed_time,
        kind=kinds.SIGNED_IN,
        acting_user=provider,
        account=provider,
        ip="2605:a601:ac72:c200:d5e7:5fe4:ad72:8204",
    )
    record_at(
        NOW - timedelta(days=2),
        kind=kinds.PROFILE_UPDATED,
        acting_user=nurse,
        account=nurse,
        ip="192.0.2.4",
    )
    record_at(
        NOW - timedelta(days=10),
        kind=kinds.SIGNED_OUT,
        acting_user=provider,
        account=provider,
        ip=None,
    )
    record_at(
        NOW - timedelta(hours=1),
        kind=kinds.SIGNED_IN,
        acting_user=other_provider,
        account=other_provider,
        ip="198.51.100.1",
    )
    chart_viewed(provider, "P-100", '=HYPERLINK("http://evil","x")', NOW - timedelta(hours=3))
    chart_viewed(provider, "P-200", "Ada Lovelace", NOW - timedelta(hours=4))
    chart_viewed(other_provider, "P-900", "Other Practice Patient", NOW - timedelta(hours=5))
