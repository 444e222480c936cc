"""django-otp's `addstatictoken`, refused: see `_refused.py`."""

from console.management.commands._refused import RefusedCommand


class Command(RefusedCommand):
    help = "Refused (django-otp's command would add a backup code unrecorded, in clear)."
    instead = (
        "Backup codes are made by their owner on the Security tab (stored as digests); a "
        'platform administrator resets a lost second factor in the Django admin (action "Reset '
        'two-factor authentication"). Both record it.'
    )
