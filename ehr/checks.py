"""System checks for project-wide configuration."""

import hashlib
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.checks import Warning as CheckWarning

from ehr.keys import KeyRing


@register()
def check_key_rings(app_configs, **kwargs):
    """Encryption and audit keys must be present and of the right size."""
    errors = []
    rings = {
        "FIELD_ENCRYPTION_KEYS": (getattr(settings, "FIELD_ENCRYPTION_KEYS", None), 32),
        "AUDIT_HMAC_KEYS": (getattr(settings, "AUDIT_HMAC_KEYS", None), None),
        "AUDIT_SIGNING_KEY": (getattr(settings, "AUDIT_SIGNING_KEY", None), 32),
    }
    for number, (name, (ring, exact)) in enumerate(rings.items(), start=1):
        if not isinstance(ring, KeyRing) or not ring.keys:
            errors.append(
                Error(f"{name} is missing.", hint="See docs/keys.md.", id=f"ehr.E00{number}")
            )
            continue
        for key_id, key in ring.keys.items():
            if exact is not None and len(key) != exact:
                errors.append(
                    Error(
                        f"{name}: key {key_id!r} is {len(key)} bytes; it must be exactly {exact}.",
                        hint="Generate keys as docs/keys.md shows.",
                        id=f"ehr.E00{number}",
                    )
                )
    # One key in two rings undoes what separate keys are for: the holder of the HMAC
    # key could sign checkpoints, the one who decrypts fields could forge the log.
    owners = {}
    for name, (ring, _exact) in rings.items():
        for key_id, key in ring.keys.items() if isinstance(ring, KeyRing) else ():
            other = owners.setdefault(_as_hmac_key(key), (name, key_id))
            if other[0] != name:
                errors.append(
                    Error(
                        f"{name}: key {key_id!r} is also key {other[1]!r} of {other[0]}; "
                        "each of these settings needs keys of its own.",
                        hint="Generate a separate key for each, as docs/keys.md shows.",
                        id="ehr.E006",
                    )
                )
    return errors


def _as_hmac_key(key: bytes) -> bytes:
    """A key as HMAC-SHA-256 uses it (RFC 2104): hashed when longer than a block, then
    padded with zeros, so `k` and `k + b"\0"` are one key."""
    return (hashlib.sha256(key).digest() if len(key) > 64 else key).rstrip(b"\0")


@register()
def check_outbox_lease(app_configs, **kwargs):
    """A worker's lease must outlast the slowest mail, or a second worker sends it too."""
    from outbox.worker import MAIL_EXCHANGES

    longest = MAIL_EXCHANGES * settings.EMAIL_TIMEOUT
    if longest >= settings.OUTBOX_LEASE_SECONDS:
        return [
            Error(
                f"OUTBOX_LEASE_SECONDS ({settings.OUTBOX_LEASE_SECONDS}) must be longer than "
                f"the {longest} seconds one mail can take ({MAIL_EXCHANGES} exchanges of "
                f"EMAIL_TIMEOUT, {settings.EMAIL_TIMEOUT} s).",
                hint="Raise OUTBOX_LEASE_SECONDS or lower EMAIL_TIMEOUT (docs/outbox.md).",
                id="ehr.E004",
            )
        ]
    return []


@register()
def check_site_url(app_configs, **kwargs):
    """SITE_URL, when set, is a bare http(s) address: links in mail are built on it."""
    url = settings.SITE_URL
    if not url:
        return []
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        return [
            Error(
                f"SITE_URL {url!r} is not an address such as https://ehr.example.org.",
                hint="The scheme and host (and port) only, no path.",
                id="ehr.E005",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_site_url_set(app_configs, **kwargs):
    """In production, links in mail must not be built on the Host each request names."""
    if settings.SITE_URL:
        return []
    return [
        CheckWarning(
            "SITE_URL is not set: password reset and invitation links would be built on the "
            "Host header of the request that asked for them, which the client chooses within "
            "ALLOWED_HOSTS (any port).",
            hint="Set SITE_URL to the site's public address, e.g. https://ehr.example.org.",
            id="ehr.W001",
        )
    ]
