"""Sign-in lockout: two locks counted side by side on django-axes' attempt records.

- A username from one client IP locks after LOGIN_FAILURE_LIMIT failures
  (AXES_FAILURE_LIMIT): one attacker stops quickly, and only that address is shut.
- A username from every address together locks after LOGIN_FAILURE_LIMIT_USERNAME
  failures (0 turns this lock off): guessing spread over many addresses stops too.

Both default to 5. Raising the second above the first means one attacker cannot
lock the owner out everywhere with a handful of tries, while distributed guessing
is still bounded. Failures are counted within the cool-off period
(AXES_COOLOFF_TIME); wrong passwords at the PIN and confirmation prompts count
as sign-in failures (accounts/reauth.py, support_pin/views.py).
"""

from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone


def limits() -> list[int]:
    """The limit of each entry of AXES_LOCKOUT_PARAMETERS, in its order (0: lock off).

    Axes filters its attempt records once per entry: [username, ip_address], then username.
    """
    return [settings.AXES_FAILURE_LIMIT, settings.LOGIN_FAILURE_LIMIT_USERNAME]


class LockoutHandler(AxesDatabaseHandler):
    """Axes' database handler, with a limit of its own for each lock.

    Axes compares one failure count with one limit (AXES_FAILURE_LIMIT). This
    answers with the count of the lock nearest to its own limit, scaled to
    AXES_FAILURE_LIMIT, so axes locks exactly when some lock reached its limit:
    count * base // limit >= base holds exactly when count >= limit.
    """

    def is_locked(self, request, credentials=None) -> bool:
        """Also mark the request: its failure is then a refusal, not a new lockout."""
        locked = super().is_locked(request, credentials)
        if locked and request is not None:
            request.sign_in_was_locked = True
        return locked

    def get_failures(self, request, credentials=None) -> int:
        base = settings.AXES_FAILURE_LIMIT
        scaled = 0
        for attempts, limit in zip(
            self.get_user_attempts(request, credentials), limits(), strict=True
        ):
            if limit <= 0:
                continue
            count = attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            scaled = max(scaled, count * base // limit)
        return scaled


def locked_usernames(usernames: list[str]) -> set[str]:
    """Which of these usernames are locked now, by either lock (for the staff page)."""
    pair_limit, username_limit = limits()
    recent = AccessAttempt.objects.filter(
        username__in=usernames, attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME
    )
    locked = set(
        recent.values("username", "ip_address")
        .annotate(n=Sum("failures_since_start"))
        .filter(n__gte=pair_limit)
        .values_list("username", flat=True)
    )
    if username_limit > 0:
        locked |= set(
            recent.values("username")
            .annotate(n=Sum("failures_since_start"))
            .filter(n__gte=username_limit)
            .values_list("username", flat=True)
        )
    return locked
