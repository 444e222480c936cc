"""Who may do what with PINs. Views ask these."""

from accounts.models import User
from accounts.roles import Role


def can_manage_own_pins(user: User) -> bool:
    """Every signed-in account views and changes its own PINs."""
    return user.is_authenticated and user.is_active and hasattr(user, "pins")


def can_use_support_console(user: User) -> bool:
    """Support agents validate callers' PINs; they never see one."""
    return user.is_authenticated and user.is_active and user.has_role(Role.SUPPORT_AGENT)
