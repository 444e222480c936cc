"""Django's `changepassword`, refused: see `_refused.py`."""

from console.management.commands._refused import RefusedCommand


class Command(RefusedCommand):
    help = "Refused (Django's command would set a password unrecorded, leaving sessions open)."
    instead = (
        "A password is changed by its owner (Change Password, which signs out the other "
        "sessions) or reset from the emailed link of Forgot password; both record it."
    )
