"""Settings for `make bench`: the real settings, pointed at a separate benchmark database.

BENCH_DATABASE_URL names the benchmark database (bench/run.py sets it); the
keys come from bench/data/bench.env, written once, so a generated log keeps
verifying across runs.
"""

import os
from datetime import timedelta
from pathlib import Path

from dotenv import dotenv_values

_DATA = Path(__file__).resolve().parent / "data"
for name, value in dotenv_values(_DATA / "bench.env").items():
    os.environ.setdefault(name, value or "")
os.environ["ENV_FILE"] = ""
os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECURE_COOKIES", "false")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")  # gunicorn on plain loopback HTTP
# Passkeys are not measured; the relying party must still be one WebAuthn accepts.
os.environ.setdefault("WEBAUTHN_RP_ID", "localhost")
os.environ.setdefault("WEBAUTHN_ORIGINS", "http://localhost")
# The benchmark's officer, auditor and agent sign in with the authenticator app, as
# every account did before passkeys; with the policy on they would reach only the
# Security tab. (A passkey session costs the same queries: the policy reads the device.)
os.environ.setdefault("MFA_PHISHING_RESISTANT_ROLES", "")

from ehr.settings import *  # noqa: E402, F403

ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
# Only the accounts the generator creates sign in here; their hash cost is not measured.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
STATIC_ROOT = None  # pages are measured without collectstatic
if os.environ.get("BENCH_NO_LOCKOUT"):
    # The PIN throughput run sends wrong PINs on purpose; every one must be compared, by
    # the one benchmark agent, far past the per-account and per-agent limits.
    SUPPORT_PIN_VALIDATION_LOCK_AFTER = 10**9
    SUPPORT_PIN_AGENT_FAILURE_LIMIT = 10**9
    # ... while the count each validation reads stays the size it has below the limit.
    SUPPORT_PIN_AGENT_FAILURE_WINDOW = timedelta(seconds=1)
