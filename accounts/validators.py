"""Validators shared by models and forms of the accounts app."""

import unicodedata
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


def validate_username_not_only_digits(value: str) -> None:
    """Refuse a username of digits alone: the audit log names a provider by Doctor ID.

    A user is labelled `496094 (dorothy Ludwig)` by Doctor ID if a provider, by
    username otherwise; an account named 496094 with the same name would read
    as that provider in every event it wrote.
    """
    if value.isdigit():
        raise ValidationError(
            "A username cannot be digits alone (those name providers by Doctor ID); add a letter.",
            code="only_digits",
        )


# Controls (CR, LF, tab, NUL ...) and the line and paragraph separators U+2028, U+2029.
_BREAKING = frozenset({"Cc", "Zl", "Zp"})
# Bidirectional embeddings, overrides and isolates: they reorder what a name shows.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def validate_plain_name(value: str) -> None:
    """Refuse control characters (line breaks, tabs, NUL) and bidirectional overrides in a name.

    Names go into mail subjects, audit details and exported cells: a line break
    there is a header injection or a forged line, an override makes the text
    read differently from what it holds. Joiners, which some scripts need, stay.
    """
    if any(unicodedata.category(ch) in _BREAKING or ch in _BIDI_CONTROLS for ch in value):
        raise ValidationError(
            "Use letters, spaces and punctuation only: no line breaks, tabs or other "
            "control characters.",
            code="control_characters",
        )
