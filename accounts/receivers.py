"""The adapter from Django's sign-in and sign-out signals to accounts/auth_events.py.

Django's login() and logout() (ours, the admin's, the test client's) send these;
nothing else listens for them in this project. django-axes' failure count
reaches auth_events through its handler (accounts/lockout.py).
"""

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from accounts import auth_events


@receiver(user_logged_in, dispatch_uid="accounts_signed_in")
def on_signed_in(sender, request, user, **kwargs) -> None:
    auth_events.sign_in_succeeded(request=request, user=user)


@receiver(user_logged_out, dispatch_uid="accounts_signed_out")
def on_signed_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        auth_events.sign_out_record(request=request, user=user)
