"""Validators shared by models and forms of the accounts app."""

import zoneinfo
from functools import cache

from django.core.exceptions import ValidationError
from phonenumbers import SUPPORTED_REGIONS


@cache
def time_zone_names() -> tuple[str, ...]:
    """Return the IANA time zone names, sorted (from the tzdata package, not the OS)."""
    return tuple(sorted(zoneinfo.available_timezones() - {"localtime", "Factory"}))


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError("Choose a time zone from the list.", code="invalid_time_zone")


def validate_country(value: str) -> None:
    if value not in SUPPORTED_REGIONS:
        raise ValidationError(
            "Enter a two-letter country code such as US, CA or GB.", code="invalid_country"
        )
