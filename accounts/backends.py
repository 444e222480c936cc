"""The authentication backend: Django's ModelBackend, loading the user with the profile.

Every page asks which profile the signed-in user has (the navigation, the audit
label that names a provider by Doctor ID), and the account pages the practice's
country (how phone numbers are written). Loading those rows with the user makes
that one query per request instead of four.
"""

from django.contrib.auth.backends import ModelBackend

from accounts.models import User


class AccountBackend(ModelBackend):
    def get_user(self, user_id):
        try:
            user = User._default_manager.select_related(
                "provider_profile", "staff_profile", "practice"
            ).get(pk=user_id)
        except User.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
