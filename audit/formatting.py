"""How the report and the export write dates, times and cells."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(cell: str) -> str:
    """Make a cell safe to open in a spreadsheet (OWASP CSV injection).

    A cell that begins with a character a spreadsheet reads as the start of a
    formula gets a leading apostrophe, which shows the text as typed.
    """
    if cell and cell.startswith(FORMULA_TRIGGERS):
        return "'" + cell
    return cell


# Written from the fields rather than by strftime, which takes about 4 us a call:
# a report page writes a hundred of these. The same text as "%m/%d/%Y" and
# "%I:%M:%S %p %Z" (tests/audit/test_formatting.py).


def event_date(value: datetime, tz: ZoneInfo) -> str:
    local = value.astimezone(tz)
    return f"{local.month:02d}/{local.day:02d}/{local.year}"


def event_time(value: datetime, tz: ZoneInfo) -> str:
    """`05:06:19 PM EDT`: 12-hour clock and the zone's abbreviation at that instant."""
    local = value.astimezone(tz)
    hour = local.hour
    return (
        f"{hour % 12 or 12:02d}:{local.minute:02d}:{local.second:02d} "
        f"{'AM' if hour < 12 else 'PM'} {local.tzname() or ''}"
    )


def ip_text(value: str | None) -> str:
    return value or "None"  # the seed writes None for events without a client


class LocalClock:
    """Fast date and time cells for many rows (the export): the same text as above.

    UTC offsets change only at transitions, which fall on quarter-hour
    boundaries in every IANA zone; the offset and abbreviation are therefore
    cached per UTC quarter-hour, and date and time-of-day strings per value.
    """

    def __init__(self, tz: ZoneInfo):
        self.tz = tz
        self._offsets: dict[int, tuple[int, str]] = {}
        self._dates: dict[int, str] = {}
        self._times: dict[int, str] = {}

    def cells(self, epoch_seconds: int) -> tuple[str, str]:
        quarter = epoch_seconds // 900
        offset = self._offsets.get(quarter)
        if offset is None:
            local = datetime.fromtimestamp(quarter * 900, tz=UTC).astimezone(self.tz)
            delta = local.utcoffset() or timedelta(0)
            offset = (int(delta.total_seconds()), local.tzname() or "")
            self._offsets[quarter] = offset
        local_seconds = epoch_seconds + offset[0]
        day, second = divmod(local_seconds, 86400)
        date_text = self._dates.get(day)
        if date_text is None:
            date_text = (datetime(1970, 1, 1) + timedelta(days=day)).strftime("%m/%d/%Y")
            self._dates[day] = date_text
        time_text = self._times.get(second)
        if time_text is None:
            hour, rest = divmod(second, 3600)
            minute, sec = divmod(rest, 60)
            time_text = (
                f"{(hour % 12) or 12:02d}:{minute:02d}:{sec:02d} {'AM' if hour < 12 else 'PM'}"
            )
            self._times[second] = time_text
        return date_text, f"{time_text} {offset[1]}"
