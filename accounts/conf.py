"""Settings the accounts app reads, with their defaults in one place."""

from django.conf import settings

# Upload limits for profile pictures and business logos.
IMAGE_MAX_BYTES = getattr(settings, "ACCOUNTS_IMAGE_MAX_BYTES", 2 * 1024 * 1024)  # 2 MiB
IMAGE_MAX_PIXELS = getattr(settings, "ACCOUNTS_IMAGE_MAX_PIXELS", 4096 * 4096)  # per image
IMAGE_MAX_ASPECT = getattr(settings, "ACCOUNTS_IMAGE_MAX_ASPECT", 10)  # longer side / shorter side
