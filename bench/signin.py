"""Signed-in sessions for the benchmark's accounts, as after password and code.

The benchmark's support agent, compliance officer and auditor need two-factor
authentication like any others; instead of typing codes (a TOTP code works once
per 30 seconds), the benchmark enrols each an authenticator and builds the
session a full sign-in would leave: user, device, and the confirmation stamp.
"""

import time

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.idle import LAST_ACTIVITY
from accounts.models import AuthenticatorDevice, User
from accounts.reauth import REAUTH_AT


def device_for(user: User) -> AuthenticatorDevice:
    device = AuthenticatorDevice.objects.filter(user=user, confirmed=True).first()
    return device or AuthenticatorDevice.objects.create(
        user=user, name="Authenticator app", confirmed=True
    )


def session_key_for(user: User) -> str:
    """Create a stored session of `user` that passed password and code; return its key."""
    from importlib import import_module

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store[DEVICE_ID_SESSION_KEY] = device_for(user).persistent_id
    store[REAUTH_AT] = store[LAST_ACTIVITY] = time.time()
    store.save()
    return store.session_key


def signed_in_client(user: User):
    from django.test import Client

    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key_for(user)
    return client
