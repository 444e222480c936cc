"""Validators shared by models and forms of the accounts app."""

import zoneinfo
from functools import cache

from django.core.exceptions import ValidationError
from phonenumbers import SUPPORTED_REGIONS


@cache
def time_zone_names() -> tuple[str, ...]:
    """Return the IANA time zone names, sorted (from the tzdata package, not the OS)."""
    return tuple(sorted(zoneinfo.available_timezones() - {"localtime", "Factory"}))


def _words(text: str) -> str:
    return " ".join(text.replace("_", " ").split()).casefold()


@cache
def _zones_by_words() -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """Each zone under its whole name, and under its place, as words in any case."""
    whole = {_words(name): name for name in time_zone_names()}
    places: dict[str, list[str]] = {}
    for name in time_zone_names():
        places.setdefault(_words(name.rsplit("/", 1)[-1]), []).append(name)
    return whole, {place: tuple(names) for place, names in places.items()}


def time_zone_named(text: str) -> str | None:
    """Return the zone `text` names: its whole name in any case ("america/new_york"), or a
    place that only one zone is named after ("Chicago", "new york"); else None."""
    whole, places = _zones_by_words()
    words = _words(text)
    if words in whole:
        return whole[words]
    names = places.get(words, ())
    return names[0] if len(names) == 1 else None


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError("Choose a time zone from the list.", code="invalid_time_zone")


def validate_country(value: str) -> None:
    if value not in SUPPORTED_REGIONS:
        raise ValidationError(
            "Enter a two-letter country code such as US, CA or GB.", code="invalid_country"
        )
