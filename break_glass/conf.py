"""Settings the break_glass app reads, with their defaults in one place."""

from django.conf import settings

MAX_MINUTES = getattr(settings, "BREAK_GLASS_MAX_MINUTES", 60)  # longest access a grant gives
MIN_JUSTIFICATION = getattr(settings, "BREAK_GLASS_MIN_JUSTIFICATION", 30)  # characters
MIN_REVIEW_NOTE = getattr(
    settings, "BREAK_GLASS_MIN_REVIEW_NOTE", 10
)  # characters of a review's note
