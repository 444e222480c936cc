import itertools

import pytest

from support_pin import services

# PINs that occur nowhere else in the test data: not a Doctor ID, year, phone
# number or port. A test that asserts a PIN is absent from a page or a log
# draws from these, so a coincidence cannot fail it.
UNUSUAL_PINS = (7391, 5826, 3047, 8152, 6703, 9264)


@pytest.fixture
def unusual_pins(monkeypatch):
    """Request it before the users, so their first PINs are drawn from it too."""
    draws = itertools.cycle(UNUSUAL_PINS)
    monkeypatch.setattr(services.secrets, "randbelow", lambda n: next(draws))
