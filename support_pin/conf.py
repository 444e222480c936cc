"""Settings the support_pin app reads, with their defaults in one place."""

from datetime import timedelta

from django.conf import settings

VALIDATION_LOCK_AFTER = getattr(settings, "SUPPORT_PIN_VALIDATION_LOCK_AFTER", 5)  # failures
VALIDATION_LOCK_FOR = getattr(settings, "SUPPORT_PIN_VALIDATION_LOCK_FOR", timedelta(minutes=30))
# Locks in a row (no successful validation between them) after which validation stays
# refused until the owner generates a new PIN: at most LOCK_AFTER x this many guesses per
# PIN the owner chose to have.
VALIDATION_BLOCK_AFTER_LOCKS = getattr(settings, "SUPPORT_PIN_VALIDATION_BLOCK_AFTER_LOCKS", 2)
# An agent whose failed validations over all accounts reach this many within the window is
# refused further validations until the window has passed.
AGENT_FAILURE_LIMIT = getattr(settings, "SUPPORT_PIN_AGENT_FAILURE_LIMIT", 20)
AGENT_FAILURE_WINDOW = getattr(settings, "SUPPORT_PIN_AGENT_FAILURE_WINDOW", timedelta(hours=1))
CONSOLE_RESULTS = 20  # accounts listed per search in the support console
