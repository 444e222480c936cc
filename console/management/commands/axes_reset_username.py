"""Django-axes' `axes_reset_username`, refused: see `_refused.py`."""

from console.management.commands._refused import RefusedUnlock


class Command(RefusedUnlock):
    pass
