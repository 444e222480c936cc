import re

from support_pin.models import AccountPins
from support_pin.services import _open

ARABIC_INDIC = "\u0661\u0662\u0663\u0664"  # 1234 in Arabic-Indic digits
FULL_WIDTH = "\uff11\uff12\uff13\uff14"  # 1234 in full-width digits


def current_pin(user, field: str = "support_pin") -> str:
    """Decrypt a PIN the way only the services do (tests need to know it)."""
    return _open(AccountPins.objects.get(user=user), field)


def wrong_pin(user) -> str:
    pin = current_pin(user)
    return f"{(int(pin) + 1) % 10_000:04d}"


def mentions(text: str, pin: str) -> bool:
    """The PIN as a number of its own (not the middle of a timestamp or an id)."""
    return re.search(rf"(?<!\d){re.escape(pin)}(?!\d)", text) is not None
