"""Settings for the test suite: the real settings, a throwaway key, a fast hasher."""

import os
import secrets

os.environ.setdefault("ENV_FILE", "")  # a developer's .env never leaks into tests
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("AUDIT_HMAC_KEYS", f"t1:{secrets.token_urlsafe(32)}")
os.environ.setdefault("AUDIT_SIGNING_KEY", f"s1:{secrets.token_urlsafe(32)}")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", f"f1:{secrets.token_urlsafe(32)}")
os.environ.setdefault("SECURE_COOKIES", "false")  # live_server speaks plain HTTP
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("WEBAUTHN_RP_ID", "localhost")  # the live server's name in browser tests
os.environ.setdefault("WEBAUTHN_ORIGINS", "http://localhost")  # tests set the live server's port

from ehr.settings import *  # noqa: F403
from ehr.settings import PASSWORD_HASHERS as REAL_PASSWORD_HASHERS

# Tests that are not about hashing use a fast hasher; hashing tests opt back in.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *REAL_PASSWORD_HASHERS]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MEDIA_ROOT = Path(os.environ.get("TEST_MEDIA_ROOT", BASE_DIR / "test-artifacts" / "media"))  # noqa: F405
STATIC_ROOT = None  # served from the app folders by the finders; no collectstatic in tests
WHITENOISE_USE_FINDERS = True
