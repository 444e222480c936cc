"""Settings the alerts app reads, with their defaults in one place.

Read when used (not at import), so `override_settings` reaches them in tests.
ehr/settings.py reads each from the environment; docs/audit.md explains them.
"""

from datetime import timedelta

from django.conf import settings

DEFAULTS = {
    # failed Support PIN validations by one agent, across accounts, within an hour
    "ALERT_AGENT_FAILED_VALIDATIONS_PER_HOUR": 10,
    # times one account's Support PIN is viewed within 24 hours
    "ALERT_SUPPORT_PIN_VIEWS_PER_DAY": 10,
    # hours after it was opened that a break-glass access without a review raises an alert
    "ALERT_BREAK_GLASS_UNREVIEWED_HOURS": 24,
    # sign-in lockouts of one practice's accounts within the window below
    "ALERT_SIGN_IN_LOCKOUTS_PER_PRACTICE": 5,
    "ALERT_SIGN_IN_LOCKOUT_WINDOW_MINUTES": 15,
    # seconds the oldest audit event not yet streamed to the SIEM may wait
    "ALERT_STREAM_LAG_SECONDS": 300,
    # seconds the oldest audit event no signed checkpoint covers may wait
    "ALERT_CHECKPOINT_LAG_SECONDS": 300,
}

EVENT_IDS_KEPT = 50  # ids of the events behind an alert stored with it; the report has the rest


def setting(name: str) -> int:
    return getattr(settings, name, DEFAULTS[name])


def agent_failures_threshold() -> int:
    return setting("ALERT_AGENT_FAILED_VALIDATIONS_PER_HOUR")


def pin_views_threshold() -> int:
    return setting("ALERT_SUPPORT_PIN_VIEWS_PER_DAY")


def break_glass_unreviewed_after() -> timedelta:
    return timedelta(hours=setting("ALERT_BREAK_GLASS_UNREVIEWED_HOURS"))


def lockouts_threshold() -> int:
    return setting("ALERT_SIGN_IN_LOCKOUTS_PER_PRACTICE")


def lockout_window() -> timedelta:
    return timedelta(minutes=setting("ALERT_SIGN_IN_LOCKOUT_WINDOW_MINUTES"))


def stream_lag_limit() -> timedelta:
    return timedelta(seconds=setting("ALERT_STREAM_LAG_SECONDS"))


def checkpoint_lag_limit() -> timedelta:
    return timedelta(seconds=setting("ALERT_CHECKPOINT_LAG_SECONDS"))


def rules_in_words() -> list[str]:
    """Each alert rule as the alerts page states it, with the thresholds in force."""
    lockouts, window = lockouts_threshold(), int(lockout_window().total_seconds() // 60)
    hours = int(break_glass_unreviewed_after().total_seconds() // 3600)
    return [
        f"A support agent gives {agent_failures_threshold()} or more wrong Support PINs, "
        "across accounts, within an hour. When those accounts belong to more than one "
        "practice, the alert goes to the platform's auditors only.",
        f"One account's Support PIN is viewed {pin_views_threshold()} or more times within "
        "24 hours.",
        f"A break-glass access has not been reviewed {hours} hours after it was opened.",
        f"{lockouts} or more sign-in lockouts of one practice's accounts within {window} minutes.",
        "Verifying the audit log (its chains and signed checkpoints) finds a fault.",
        f"Audit events wait more than {int(stream_lag_limit().total_seconds())} seconds to be "
        "sent to the audit record repository (when one is configured).",
        f"Audit events wait more than {int(checkpoint_lag_limit().total_seconds())} seconds "
        "for a signed checkpoint: the minutely checkpoint stopped, or refuses to sign.",
        "A practice admin makes someone a compliance officer (a new account, or a change of "
        "role): that officer would then review the admin's own alerts and break-glass access, "
        "so the platform's auditors are told.",
    ]
