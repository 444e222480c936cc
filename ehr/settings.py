"""Project settings, read from the environment (twelve-factor).

Every value an operator may change comes from an environment variable; a `.env`
file beside `manage.py` fills in what the environment leaves unset (`make run`
writes one for development). `docs/configuration.md` lists the variables.
"""

import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from ehr.keys import parse_key_ring, parse_public_key_list

BASE_DIR = Path(__file__).resolve().parent.parent
# The real environment wins over .env; ENV_FILE="" reads no file (the test suite does that).
ENV_FILE = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE:
    load_dotenv(ENV_FILE, override=False)


def env_bool(name: str, default: bool) -> bool:
    """Read a yes/no variable; anything but a clear yes or no is a configuration error."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def check_secret_key(key: str, *, debug: bool) -> None:
    """Refuse to start without a secret key, and in production without a strong one."""
    if not key:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. `make run` writes a development key to .env; "
            "in production set SECRET_KEY in the environment."
        )
    # The same bar as Django's security.W009 deploy check, enforced at start-up.
    weak = len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure")
    if weak and not debug:
        raise ImproperlyConfigured(
            "SECRET_KEY is too weak for production: use at least 50 random characters, "
            'for example `python -c "import secrets; print(secrets.token_urlsafe(64))"`.'
        )


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
check_secret_key(SECRET_KEY, debug=DEBUG)

# Keys of the audit log's hash chain, separate from SECRET_KEY (docs/keys.md).
AUDIT_HMAC_KEYS = parse_key_ring("AUDIT_HMAC_KEYS", os.environ.get("AUDIT_HMAC_KEYS"))
# Ed25519 key that signs audit checkpoints (32-byte seeds, `id:base64`, the first
# signs); retired keys' public halves keep old checkpoints verifiable (docs/keys.md).
AUDIT_SIGNING_KEY = parse_key_ring("AUDIT_SIGNING_KEY", os.environ.get("AUDIT_SIGNING_KEY"))
AUDIT_SIGNING_PUBLIC_KEYS = parse_public_key_list(
    "AUDIT_SIGNING_PUBLIC_KEYS", os.environ.get("AUDIT_SIGNING_PUBLIC_KEYS", "")
)
# Retention of the audit log: `audit_archive` refuses months younger than this
# (ASTM E2147-18 asks for ten years, HIPAA six; docs/audit.md). PostgreSQL keeps
# the events in monthly partitions, created this many months ahead by
# `audit_partitions` (docs/audit.md).
AUDIT_RETENTION_YEARS = env_int("AUDIT_RETENTION_YEARS", 10)
AUDIT_PARTITION_MONTHS_AHEAD = env_int("AUDIT_PARTITION_MONTHS_AHEAD", 3)
if AUDIT_RETENTION_YEARS < 1 or AUDIT_PARTITION_MONTHS_AHEAD < 0:
    raise ImproperlyConfigured(
        "AUDIT_RETENTION_YEARS must be at least 1 and AUDIT_PARTITION_MONTHS_AHEAD at least 0."
    )
# The compliance dashboard keeps the counts of days that are over in each process
# (audit/dashboard.py, docs/audit.md): at most this many days (0: none), a day only
# once this many minutes have passed since its end.
AUDIT_DASHBOARD_CACHED_DAYS = env_int("AUDIT_DASHBOARD_CACHED_DAYS", 2000)
AUDIT_DASHBOARD_SETTLED_MINUTES = env_int("AUDIT_DASHBOARD_SETTLED_MINUTES", 60)
AUDIT_DASHBOARD_SETTLED_AFTER = timedelta(minutes=AUDIT_DASHBOARD_SETTLED_MINUTES)
if AUDIT_DASHBOARD_CACHED_DAYS < 0 or AUDIT_DASHBOARD_SETTLED_MINUTES < 0:
    raise ImproperlyConfigured(
        "AUDIT_DASHBOARD_CACHED_DAYS and AUDIT_DASHBOARD_SETTLED_MINUTES cannot be negative."
    )
# AES-256-GCM keys for PINs at rest (ehr/crypto.py); the first encrypts, all decrypt.
FIELD_ENCRYPTION_KEYS = parse_key_ring(
    "FIELD_ENCRYPTION_KEYS", os.environ.get("FIELD_ENCRYPTION_KEYS"), min_bytes=32
)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # First: its commands stand in for the libraries' own of the same names (console/apps.py).
    "console",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "django_filters",
    "phonenumber_field",
    "ehr",
    "accounts",
    "audit",
    "support_pin",
    "break_glass",
    "outbox",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "ehr.middleware.SecurityHeadersMiddleware",
    "csp.middleware.CSPMiddleware",
    "ehr.middleware.RequestContextMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.SessionGuardMiddleware",
    "accounts.middleware.IdleTimeoutMiddleware",
    "accounts.middleware.MfaRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the lockout page
]

ROOT_URLCONF = "ehr.urls"
WSGI_APPLICATION = "ehr.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "ehr.context_processors.navigation",
                "accounts.context_processors.passkey_policy",
                "accounts.context_processors.passkey_origin",
            ],
        },
    },
]


# Database: SQLite in the project by default, PostgreSQL (psycopg 3) through DATABASE_URL.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Statements sent with bind parameters (only the audit write path's, see
    # `audit.services._write_cursor`; Django's own cursors spell values into the SQL)
    # are prepared once a connection has run them 5 times (psycopg's default), so the
    # server stops parsing and planning them on every audited action. Django leaves
    # this off for connection poolers in transaction mode that cannot carry prepared
    # statements (PgBouncer before 1.21, or without `max_prepared_statements`):
    # behind one of those, set DB_PREPARED_STATEMENTS=false.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        5 if env_bool("DB_PREPARED_STATEMENTS", True) else None
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # Writers take the lock when their transaction starts, so two writers queue
        # instead of one failing with "database is locked" half-way through.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

# A streaming replica (PostgreSQL hot standby) for the Audit Log Report, the dashboard and
# the exports' rows (ehr/db.py, docs/audit.md). The `replica` alias exists only when
# DATABASE_REPLICA_URL is set; everything else, and every write, goes to the primary.
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "").strip()
# Seconds an export waits for the replica to replay its checkpoint before it reads the
# primary instead (and says so in its audit event).
DATABASE_REPLICA_WAIT_SECONDS = env_int("DATABASE_REPLICA_WAIT_SECONDS", 3)
if DATABASE_REPLICA_URL:
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs a PostgreSQL DATABASE_URL.")
    DATABASES["replica"] = dj_database_url.parse(
        DATABASE_REPLICA_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
    if DATABASES["replica"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_REPLICA_URL must be a PostgreSQL URL.")
    replica_options = DATABASES["replica"].setdefault("OPTIONS", {})
    replica_options["prepare_threshold"] = DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    # A replica that does not answer costs a report this long, once, before it reads
    # the primary; `?connect_timeout=N` in the URL overrides it.
    replica_options.setdefault("connect_timeout", 2)
    # Tests: the standby replicates the whole cluster, the test database included, so
    # the alias reads the primary's test database rather than creating its own.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
# Where reporting reads go (ehr.db.read_replica); the test suite sets it to "default"
# for every test that is not about the replica.
REPORTING_DATABASE = "replica" if DATABASE_REPLICA_URL else "default"
DATABASE_ROUTERS = ["ehr.db.PrimaryRouter"]
if DATABASE_REPLICA_WAIT_SECONDS < 0:
    raise ImproperlyConfigured("DATABASE_REPLICA_WAIT_SECONDS must be 0 or more.")

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out usernames before the password
    "accounts.backends.AccountBackend",  # ModelBackend, loading the profile with the user
]

# Two-factor authentication (accounts/mfa.py). Always required for support agents,
# compliance officers, practice admins and platform auditors; for everyone with this on.
MFA_REQUIRED_FOR_ALL = env_bool("MFA_REQUIRED_FOR_ALL", False)
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "EHR")
OTP_TOTP_THROTTLE_FACTOR = 1  # seconds, doubled per consecutive wrong code
OTP_STATIC_THROTTLE_FACTOR = 1

# Passkeys and security keys (WebAuthn; accounts/passkeys.py, django-otp-webauthn). The roles
# in MFA_PHISHING_RESISTANT_ROLES must have one: until they add one they reach only the
# Security tab, except accounts that signed in with an authenticator app only when the
# policy came, which have MFA_PHISHING_RESISTANT_GRACE_DAYS from then (docs/sign-in-security.md).
MFA_PHISHING_RESISTANT_ROLES = env_list(
    "MFA_PHISHING_RESISTANT_ROLES",
    ["support_agent", "compliance_officer", "practice_admin", "platform_auditor"],
)
MFA_PHISHING_RESISTANT_GRACE_DAYS = env_int("MFA_PHISHING_RESISTANT_GRACE_DAYS", 30)
if MFA_PHISHING_RESISTANT_GRACE_DAYS < 0:
    raise ImproperlyConfigured("MFA_PHISHING_RESISTANT_GRACE_DAYS must be 0 or more.")
_unknown_roles = set(MFA_PHISHING_RESISTANT_ROLES) - {
    "provider",
    "nurse",
    "scheduler",
    "billing",
    "practice_admin",
    "compliance_officer",
    "support_agent",
    "platform_auditor",
}  # = accounts.roles.Role (not importable before the apps load)
if _unknown_roles:
    raise ImproperlyConfigured(
        f"MFA_PHISHING_RESISTANT_ROLES names no such role: {', '.join(sorted(_unknown_roles))}."
    )


def webauthn_defaults(*, debug: bool, hosts: list[str]) -> tuple[str, list[str]]:
    """Return the relying party id and origins to use when the environment names none.

    Development: `localhost` (WebAuthn refuses an IP address such as 127.0.0.1) on the
    port `make run` serves. Production: the first name of ALLOWED_HOSTS, over HTTPS.
    """
    if debug:
        return "localhost", [f"http://localhost:{os.environ.get('PORT', '8000')}"]
    names = [h.lstrip(".") for h in hosts if h not in {"*", ""} and not h[:1].isdigit()]
    names = [h for h in names if ":" not in h]
    return (names[0], [f"https://{names[0]}"]) if names else ("", [])


def check_webauthn(rp_id: str, origins: list[str], *, debug: bool, hosts: list[str]) -> None:
    """Refuse to start with a relying party id or origins WebAuthn would never accept.

    The id is a domain name (never an IP address, a scheme or a port); each origin is
    HTTPS (plain HTTP only on localhost) on that domain or one under it. In production
    a site that serves a host must have them.
    """
    if not rp_id:
        if not debug and hosts:
            raise ImproperlyConfigured(
                "WEBAUTHN_RP_ID is not set and ALLOWED_HOSTS names no domain to take it from."
            )
        return
    label = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
    if not re.fullmatch(rf"{label}(\.{label})*", rp_id) or re.fullmatch(r"[0-9.]+", rp_id):
        raise ImproperlyConfigured(
            f"WEBAUTHN_RP_ID must be a domain name such as ehr.example.org, not {rp_id!r}."
        )
    if not origins:
        raise ImproperlyConfigured("WEBAUTHN_ORIGINS is empty: list the site's origins.")
    for origin in origins:
        parts = urlsplit(origin)
        host = parts.hostname or ""
        local = rp_id == "localhost" and parts.scheme == "http"
        if (
            (parts.scheme != "https" and not local)
            or parts.path not in {"", "/"}
            or not (host == rp_id or host.endswith("." + rp_id))
        ):
            raise ImproperlyConfigured(
                f"WEBAUTHN_ORIGINS: {origin!r} is not an https:// origin on {rp_id} "
                "(plain http only for localhost)."
            )


_rp_id, _origins = webauthn_defaults(debug=DEBUG, hosts=ALLOWED_HOSTS)
WEBAUTHN_RP_ID = os.environ.get("WEBAUTHN_RP_ID", "").strip().lower() or _rp_id
WEBAUTHN_ORIGINS = [o.rstrip("/") for o in env_list("WEBAUTHN_ORIGINS", _origins)]
check_webauthn(WEBAUTHN_RP_ID, WEBAUTHN_ORIGINS, debug=DEBUG, hosts=ALLOWED_HOSTS)
# django-otp-webauthn's own names (its start-up checks read them); accounts.passkeys'
# helper reads WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS when a ceremony runs.
OTP_WEBAUTHN_RP_ID = WEBAUTHN_RP_ID
OTP_WEBAUTHN_ALLOWED_ORIGINS = WEBAUTHN_ORIGINS
OTP_WEBAUTHN_RP_NAME = os.environ.get("WEBAUTHN_RP_NAME", "EHR")
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False  # a second factor after the password, never alone
OTP_WEBAUTHN_HELPER_CLASS = "accounts.passkeys.PasskeyHelper"
OTP_WEBAUTHN_THROTTLE_FACTOR = 1  # seconds, doubled per consecutive failed passkey

# Sign-in lockout (django-axes), two locks side by side (accounts/lockout.py): a username
# from one client IP locks after LOGIN_FAILURE_LIMIT failures; a username from every
# address together after LOGIN_FAILURE_LIMIT_USERNAME (0: off). Both 5 by default.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_FAILURE_LIMIT_USERNAME = env_int("LOGIN_FAILURE_LIMIT_USERNAME", 5)
if AXES_FAILURE_LIMIT < 1 or LOGIN_FAILURE_LIMIT_USERNAME < 0:
    raise ImproperlyConfigured(
        "LOGIN_FAILURE_LIMIT must be at least 1 and LOGIN_FAILURE_LIMIT_USERNAME at least 0."
    )
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 30))
AXES_HANDLER = "accounts.lockout.LockoutHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username"]  # = accounts.lockout
AXES_CLIENT_IP_CALLABLE = "ehr.client_ip.client_ip"  # never X-Forwarded-For on its own say-so
AXES_USERNAME_CALLABLE = "accounts.lockout.attempt_username"  # unknown names kept as digests
AXES_LOCKOUT_CALLABLE = "accounts.views.sign_in.locked_out"
AXES_RESET_ON_SUCCESS = True
# Masked in the attempt records axes keeps (it always masks "password"): every field of
# every form whose wrong password counts towards lockout (the prompts inside a session
# post new passwords, PINs, codes and contact details next to the password), and tokens.
# tests/security/test_secrets.py fails when a prompt form gains a field missing here.
AXES_SENSITIVE_PARAMETERS = [
    "new_password1",
    "new_password2",
    "new_app_pin",
    "pin",
    "code",
    "method",
    "email",
    "home_phone",
    "cell_phone",
    "time_zone",
    "username",
    "csrfmiddlewaretoken",
    "otp_token",
]
AXES_ENABLE_ACCESS_FAILURE_LOG = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Self-service password reset (accounts/password_reset.py, docs/sign-in-security.md). A reset
# link works once, for PASSWORD_RESET_MINUTES; a staff invitation's link (its own tokens,
# accounts/tokens.py) for INVITATION_DAYS. Requests are limited per typed address and per
# client (an IPv4 address, or an IPv6 /64) within PASSWORD_RESET_LIMIT_WINDOW seconds.
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_MINUTES", 60) * 60  # seconds
INVITATION_TIMEOUT = env_int("INVITATION_DAYS", 3) * 24 * 3600  # seconds
PASSWORD_RESET_LIMIT_PER_ADDRESS = env_int("PASSWORD_RESET_LIMIT_PER_ADDRESS", 3)
PASSWORD_RESET_LIMIT_PER_CLIENT = env_int("PASSWORD_RESET_LIMIT_PER_CLIENT", 20)
PASSWORD_RESET_LIMIT_WINDOW = 3600  # seconds
if not 0 < PASSWORD_RESET_TIMEOUT <= 3600:
    raise ImproperlyConfigured("PASSWORD_RESET_MINUTES must be between 1 and 60.")

# Argon2id first; older hashes are upgraded on the next successful sign-in.
PASSWORD_HASHERS = [
    "ehr.hashers.Argon2idPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"  # storage is UTC; pages convert to the viewer's own time zone
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Uploaded images are never served from a public URL: a view checks who asks.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024  # whole request bodies, images included

# How many reverse proxies in front of the app append to X-Forwarded-For (0: none, the
# header is ignored). See ehr/client_ip.py.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PHONENUMBER_DEFAULT_REGION = os.environ.get("PHONE_REGION", "US")

# Cookies and transport. Production runs behind TLS; development on plain loopback HTTP.
SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Database sessions in accounts.UserSession, keys stored only as SHA-256 (accounts/session_store.py).
SESSION_ENGINE = "accounts.session_store"
# Signed out after this much inactivity (accounts/middleware.py), warned a minute before.
SESSION_IDLE_TIMEOUT = env_int("SESSION_IDLE_MINUTES", 15) * 60  # seconds
SESSION_IDLE_WARNING = 60  # seconds of warning before the automatic sign-out
# Absolute cap from sign-in, active or not: the session's expiry is fixed when it begins.
SESSION_COOKIE_AGE = env_int("SESSION_MAX_HOURS", 12) * 3600
REAUTH_SECONDS = 5 * 60  # sensitive actions need the password (and code) this recently
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# HTTPS only in production: redirect, and tell browsers never to try plain HTTP.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("BEHIND_TLS_PROXY", False):
    # Only when the proxy strips this header from clients and sets it itself.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# What browsers may load: this site's own files only. No inline scripts or styles
# anywhere (templates use static files), so no 'unsafe-inline'.
# The dashboard's counters have covering indexes (INCLUDE) for PostgreSQL; SQLite builds
# them without the included columns, which is what this warning says (audit/models.py).
SILENCED_SYSTEM_CHECKS = ["models.W040"]

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}
PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"
)

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "security@ehr.invalid")
# Seconds any one exchange with the mail server may take (Django's default waits
# for ever): a hung server must not keep the outbox worker past its lease.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# Mail leaves through the outbox (docs/outbox.md): retried with back-off from
# OUTBOX_RETRY_BASE_SECONDS, doubling up to OUTBOX_RETRY_MAX_SECONDS; a worker's
# claim on a destination lapses after OUTBOX_LEASE_SECONDS if it dies, and it
# starts no new item after half of it (so a slow server never outlasts the claim).
OUTBOX_RETRY_BASE_SECONDS = env_int("OUTBOX_RETRY_BASE_SECONDS", 5)
OUTBOX_RETRY_MAX_SECONDS = env_int("OUTBOX_RETRY_MAX_SECONDS", 3600)
OUTBOX_LEASE_SECONDS = env_int("OUTBOX_LEASE_SECONDS", 120)
# A copy of every audit event for a SIEM or audit record repository (docs/outbox.md):
# `tls://host:6514`; empty sends none. Format `atna` (IHE ATNA) or `json` (ECS).
AUDIT_SYSLOG_URL = os.environ.get("AUDIT_SYSLOG_URL", "")
AUDIT_SYSLOG_FORMAT = os.environ.get("AUDIT_SYSLOG_FORMAT", "atna")
AUDIT_SYSLOG_CA_FILE = os.environ.get("AUDIT_SYSLOG_CA_FILE", "")
AUDIT_SYSLOG_CERT_FILE = os.environ.get("AUDIT_SYSLOG_CERT_FILE", "")
AUDIT_SYSLOG_KEY_FILE = os.environ.get("AUDIT_SYSLOG_KEY_FILE", "")
if AUDIT_SYSLOG_FORMAT not in {"atna", "json"}:
    raise ImproperlyConfigured("AUDIT_SYSLOG_FORMAT must be `atna` or `json`.")
if AUDIT_SYSLOG_URL and not AUDIT_SYSLOG_CA_FILE:
    raise ImproperlyConfigured(
        "AUDIT_SYSLOG_URL needs AUDIT_SYSLOG_CA_FILE: the receiver's certificate is verified."
    )

# Alert rules (docs/audit.md): each threshold, and the site's address for links in alert
# mail (`https://ehr.example.org`; without it the mail gives the page's path).
ALERT_AGENT_FAILED_VALIDATIONS_PER_HOUR = env_int("ALERT_AGENT_FAILED_VALIDATIONS_PER_HOUR", 10)
ALERT_SUPPORT_PIN_VIEWS_PER_DAY = env_int("ALERT_SUPPORT_PIN_VIEWS_PER_DAY", 10)
ALERT_BREAK_GLASS_UNREVIEWED_HOURS = env_int("ALERT_BREAK_GLASS_UNREVIEWED_HOURS", 24)
ALERT_SIGN_IN_LOCKOUTS_PER_PRACTICE = env_int("ALERT_SIGN_IN_LOCKOUTS_PER_PRACTICE", 5)
ALERT_SIGN_IN_LOCKOUT_WINDOW_MINUTES = env_int("ALERT_SIGN_IN_LOCKOUT_WINDOW_MINUTES", 15)
ALERT_STREAM_LAG_SECONDS = env_int("ALERT_STREAM_LAG_SECONDS", 300)
ALERT_CHECKPOINT_LAG_SECONDS = env_int("ALERT_CHECKPOINT_LAG_SECONDS", 300)
for _name in (
    "ALERT_AGENT_FAILED_VALIDATIONS_PER_HOUR",
    "ALERT_SUPPORT_PIN_VIEWS_PER_DAY",
    "ALERT_BREAK_GLASS_UNREVIEWED_HOURS",
    "ALERT_SIGN_IN_LOCKOUTS_PER_PRACTICE",
    "ALERT_SIGN_IN_LOCKOUT_WINDOW_MINUTES",
    "ALERT_STREAM_LAG_SECONDS",
    "ALERT_CHECKPOINT_LAG_SECONDS",
):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be 1 or more.")
# The site's public address (`https://ehr.example.org`): every link in mail (password
# resets, staff invitations, alerts) is built on it, never on the Host a request named.
# Empty in development: links then take the request's own address. ALERT_BASE_URL is
# its former name, still read.
SITE_URL = (os.environ.get("SITE_URL") or os.environ.get("ALERT_BASE_URL", "")).rstrip("/")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
