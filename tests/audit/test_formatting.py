"""The report's date and time cells and the dashboard's day labels, written without
strftime, say exactly what strftime says."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from audit.charts import day_labels
from audit.formatting import event_date, event_time

ZONES = ["America/New_York", "America/St_Johns", "Asia/Kathmandu", "Australia/Lord_Howe", "UTC"]


def instants():
    # Every hour of two days around each 2026 transition in New York (March 8,
    # November 1), every 7 minutes 13 seconds through a day, and midnight and noon.
    for start in (datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)):
        yield from (start + timedelta(hours=h) for h in range(72))
    day = datetime(2026, 11, 24, tzinfo=UTC)
    yield from (day + timedelta(seconds=433 * n) for n in range(200))
    yield from (datetime(2026, 1, 1, h, 0, 0, 999_999, tzinfo=UTC) for h in (0, 11, 12, 23))


@pytest.mark.parametrize("zone", ZONES)
def test_date_and_time_cells_match_strftime(zone):
    tz = ZoneInfo(zone)
    for instant in instants():
        local = instant.astimezone(tz)
        assert event_date(instant, tz) == local.strftime("%m/%d/%Y")
        assert event_time(instant, tz) == local.strftime("%I:%M:%S %p %Z")


def test_day_labels_match_strftime():
    first = date(2024, 1, 1)
    for n in range(800):
        day = first + timedelta(days=n)
        assert day_labels(day) == (day.strftime("%m/%d"), day.strftime("%m/%d/%Y"))
