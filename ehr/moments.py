"""Times as a person reads them: in their own time zone, written as every screen writes them.

Pages show times in the viewer's zone (accounts.middleware.TimeZoneMiddleware activates
it); a mail is written outside any request, for people who may each keep another zone
(Account > Security), so it says in whose zone it writes.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from django.utils.dateformat import format as date_format

SHOWN = "m/d/Y h:i A T"  # 11/25/2026 04:59 AM EST: the screens' `|date` format
SHOWN_TIME = "h:i A T"  # 04:59 AM EST, when the day is said already


def shown_at(value: datetime, time_zone: ZoneInfo, *, time_only: bool = False) -> str:
    """Return `value` in `time_zone`, as the screens write a moment (or a time of day)."""
    return date_format(value.astimezone(time_zone), SHOWN_TIME if time_only else SHOWN)
