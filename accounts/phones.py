"""Phone numbers as the people of a practice write them.

Numbers are stored in E.164 (`+12025550143`); a person in the practice's country
reads and types them in its national format (`(202) 555-0143`), and a number of
another country in international format (`+44 20 7946 0958`).
"""

from django.forms import TextInput
from phonenumber_field.phonenumber import PhoneNumber, to_python
from phonenumbers import region_codes_for_country_code

from accounts.models import User, default_country


def practice_country(user: User) -> str:
    """Return the country whose format the user's phone numbers are written in."""
    practice = user.practice if user.practice_id else None
    return practice.country if practice is not None else default_country()


def phone_display(number: PhoneNumber | str | None, *, country: str) -> str:
    """Return `number` in `country`'s national format if it is of that country, else
    in international format; an unparseable value as it was given."""
    if not number:
        return ""
    parsed = number if isinstance(number, PhoneNumber) else to_python(number, region=country)
    if not isinstance(parsed, PhoneNumber) or not parsed.is_valid():
        return str(number)
    if country in region_codes_for_country_code(parsed.country_code):
        return parsed.as_national
    return parsed.as_international


class PhoneInput(TextInput):
    """A text box that shows a stored number as `phone_display` writes it."""

    input_type = "tel"

    def __init__(self, *, country: str, attrs: dict | None = None):
        super().__init__(attrs={"autocomplete": "tel", "inputmode": "tel", **(attrs or {})})
        self.country = country

    def format_value(self, value):
        if isinstance(value, PhoneNumber):
            return phone_display(value, country=self.country)
        return super().format_value(value)
