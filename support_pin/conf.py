"""Settings the support_pin app reads, with their defaults in one place."""

from datetime import timedelta

from django.conf import settings

VALIDATION_LOCK_AFTER = getattr(settings, "SUPPORT_PIN_VALIDATION_LOCK_AFTER", 5)  # failures
VALIDATION_LOCK_FOR = getattr(settings, "SUPPORT_PIN_VALIDATION_LOCK_FOR", timedelta(minutes=30))
CONSOLE_RESULTS = 20  # accounts listed per search in the support console
