"""Django-axes' `axes_reset`, which clears sign-in locks, refused: see `_refused.py`."""

from console.management.commands._refused import RefusedCommand


class Command(RefusedCommand):
    help = "Refused (django-axes' command would unlock sign-in unrecorded)."
    instead = (
        'Unlock an account in the Django admin (Accounts, action "Unlock sign-in") or, for a '
        "practice member, on the Practice Staff page of its practice admin: both record it."
    )
