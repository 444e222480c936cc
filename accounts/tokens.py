"""The tokens of emailed set-password links: password reset, and a new account's invitation.

Both links open the same view (Django's PasswordResetConfirmView, accounts/views/
password_reset.py); they differ in how long they work and in whose token they accept:

- A password reset link carries Django's own token (`default_token_generator`),
  which expires after PASSWORD_RESET_TIMEOUT (one hour here).
- An invitation may wait days before its owner opens it, so its token is made
  here with its own lifetime (INVITATION_TIMEOUT) and its own salt: a reset
  token never opens an invitation link (where it would live for days), and an
  invitation token never opens a reset link.

Both stop working once a password is set (the password hash is part of what
they sign), after a sign-in, and when the account's email address changes.
"""

import hashlib

from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare

from accounts.models import User


class InvitationTokenGenerator:
    """Make and check invitation tokens; the interface of Django's token generators.

    A token is the account's state digest signed with a timestamp by
    `django.core.signing` (HMAC under SECRET_KEY, with SECRET_KEY_FALLBACKS
    honoured while keys rotate). The digest covers the account's id, password
    hash, last sign-in and email address, so the token dies when any of them
    changes; it reveals none of them.
    """

    salt = "accounts.tokens.InvitationTokenGenerator"

    def _state(self, user: User) -> str:
        # As Django's generator: whole seconds, so the database's precision does not matter.
        signed_in = user.last_login.replace(microsecond=0, tzinfo=None) if user.last_login else ""
        value = f"{user.pk}|{user.password}|{signed_in}|{user.email or ''}"
        return hashlib.sha256(value.encode()).hexdigest()[:32]

    def make_token(self, user: User) -> str:
        return signing.TimestampSigner(salt=self.salt).sign(self._state(user))

    def check_token(self, user: User | None, token: str | None) -> bool:
        if not (user and token):
            return False
        max_age = getattr(settings, "INVITATION_TIMEOUT", 3 * 24 * 3600)
        try:
            state = signing.TimestampSigner(salt=self.salt).unsign(token, max_age=max_age)
        except signing.BadSignature:  # also SignatureExpired
            return False
        return constant_time_compare(state, self._state(user))


invitation_token_generator = InvitationTokenGenerator()
