"""Sign-in lockout: two locks counted side by side on django-axes' attempt records.

- A username from one client IP locks after LOGIN_FAILURE_LIMIT failures
  (AXES_FAILURE_LIMIT): one attacker stops quickly, and only that address is shut.
- A username from every address together locks after LOGIN_FAILURE_LIMIT_USERNAME
  failures (0 turns this lock off): guessing spread over many addresses stops too.

Both default to 5. Raising the second above the first means one attacker cannot
lock the owner out everywhere with a handful of tries, while distributed guessing
is still bounded. Failures are counted within the cool-off period
(AXES_COOLOFF_TIME); wrong passwords at every prompt inside a session count as
sign-in failures (accounts/auth_events.py, `identity_confirm`).

The handler is also axes' adapter to accounts/auth_events.py: after counting a
sign-in failure it reports it, with whether sign-in was already locked (axes'
backend refused before the password was checked) and whether this failure
locked it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from ehr import crypto


@contextmanager
def guesses_in_turn(username: str | None) -> Iterator[None]:
    """Check one password of `username` at a time, from its lock check to its count.

    Axes looks at the lock before the password is checked and counts a failure
    after it, with the slow hash in between: requests sent together all passed the
    look before any of them was counted (12 passwords checked against a limit of
    5, and the right one signed in after them). The sign-in form and every
    password prompt hold the account's row, locked, for the whole turn, so they
    take turns and each one sees the failures of those before it: at most the
    limit's number of passwords are checked, however the requests are timed.
    What the turn records commits with it.

    The row is locked FOR NO KEY UPDATE: writers of events about the account
    (whose foreign keys take a key-share lock on it) do not wait for the hash,
    which with FOR UPDATE deadlocked against the audit chain's lock. A name no
    account has takes no turn and opens no transaction: no password signs in to
    it. On SQLite, whose one lock is the database's, a known account's turn
    holds the write lock for its hash (transaction_mode IMMEDIATE): at most the
    lock's limit of hashes per account and cool-off, as on PostgreSQL.
    """
    if not username or not User.objects.filter(username=username).exists():
        yield
        return
    with transaction.atomic():
        # Django skips FOR NO KEY UPDATE on SQLite (see above).
        list(User.objects.select_for_update(no_key=True).filter(username=username).values("pk"))
        yield


def limits() -> list[int]:
    """Return the limit of each entry of AXES_LOCKOUT_PARAMETERS, in order (0: lock off).

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

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        """Count the failure, then report a sign-in's to auth_events in the same transaction.

        A prompt's failure (its credentials carry the prompt's purpose) is
        reported by the prompt itself, which also explains the lock on its own
        page: axes' middleware is not asked to replace that page.
        """
        from accounts import auth_events

        prompt = bool(credentials.get(auth_events.PROMPT))
        # Already locked before this attempt: axes' backend refused it unchecked.
        refused = request is not None and not prompt and self.is_locked(request, credentials)
        with transaction.atomic():
            super().user_login_failed(sender, credentials, request, **kwargs)
            if request is None:
                return
            if prompt:
                request.axes_locked_out = False
                return
            auth_events.sign_in_failed(
                request=request,
                username=credentials.get("username") or "",
                refused=refused,
                locked=not refused and bool(request.axes_locked_out),
            )

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


UNKNOWN_PREFIX = "unknown:"


def attempt_username(request, credentials: dict | None) -> str | None:
    """Return the name axes records an attempt under (AXES_USERNAME_CALLABLE).

    The username of an account as typed; for a name no account has (often a
    password typed into the wrong box) a keyed digest of it instead, so the
    attempt records never keep it in clear while a lock on it still works.
    """
    if credentials:
        typed = credentials.get(settings.AXES_USERNAME_FORM_FIELD)
    else:
        typed = request.POST.get(settings.AXES_USERNAME_FORM_FIELD) if request else None
    if not typed or User.objects.filter(username=typed).exists():
        return typed
    return UNKNOWN_PREFIX + crypto.keyed_digests(typed, purpose="axes.username")[0]


def sign_in_locked_until(*, username: str, ip: str | None) -> datetime | None:
    """Return when the sign-in lock on `username` from `ip` lifts, or None if it is not locked.

    One query; the same two locks as the handler counts (the pair, and the
    username from every address). A lock lifts AXES_COOLOFF_TIME after the last
    failure that counts towards it.
    """
    pair_limit, username_limit = limits()
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    rows = list(
        AccessAttempt.objects.filter(username=username, attempt_time__gte=since).values_list(
            "ip_address", "failures_since_start", "attempt_time"
        )
    )
    pair = [(n, at) for address, n, at in rows if address == ip]
    ends = []
    if sum(n for n, _ in pair) >= pair_limit:
        ends.append(max(at for _, at in pair))
    if username_limit > 0 and sum(n for _, n, _ in rows) >= username_limit:
        ends.append(max(at for _, _, at in rows))
    return max(ends) + settings.AXES_COOLOFF_TIME if ends else None


def lock_remedy(account: User | None) -> str:
    """Say who can lift a sign-in lock on `account` sooner (policies.can_unlock_sign_in).

    Without an account (the signed-out lock page) nothing about it is named:
    that page must not tell a guesser whether the username exists or where.
    """
    if account is None:
        return (
            "A practice administrator of your practice can unlock it sooner under "
            "Account > Practice Staff (a platform administrator, for accounts without a practice)."
        )
    if account.practice_id is None:
        return "A platform administrator can unlock it sooner."
    # A practice admin cannot unlock themselves: another one of the practice can.
    who = "Another" if account.has_role(Role.PRACTICE_ADMIN) else "A"
    return (
        f"{who} practice administrator of {account.practice.name} can unlock it sooner "
        "under Account > Practice Staff."
    )


def lock_message(*, account: User | None, until: datetime | None) -> str:
    """The one wording of a sign-in lock: what is locked, until when, and who can lift it.

    The sign-in page, every password prompt and the PIN dialogs say it alike.
    """
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    if until is not None and account is not None:
        local = timezone.localtime(until, account.zone)
        when = f"until {local:%I:%M %p %Z} ({minutes} minutes after the last wrong password)"
    else:
        when = f"for {minutes} minutes after the last wrong password"
    return (
        f"Too many wrong passwords: signing in and every password prompt of this account "
        f"are locked {when}. {lock_remedy(account)}"
    )


def prompt_lock_message(request) -> str | None:
    """Return the lock wording for the signed-in user's prompts if they are locked now."""
    user = request.user
    until = sign_in_locked_until(username=user.get_username(), ip=request.client_ip)
    return None if until is None else lock_message(account=user, until=until)
