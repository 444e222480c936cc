"""The adapter from Django's sign-in and sign-out signals to accounts/auth_events.py.

Django's login() and logout() (ours, the admin's, the test client's) send these;
nothing else listens to the sign-in in this project (Django's and axes' own receivers
are disconnected below). django-axes' failure count
reaches auth_events through its handler (accounts/lockout.py).
"""

from axes.signals import handle_user_logged_in
from django.contrib.auth.models import update_last_login
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import receiver

from accounts import auth_events

# Django's and django-axes' own receivers of the sign-in signal each wrote and committed
# on their own, before the sign-in's event: the last sign-in time, and axes' access log
# and the clearing of the user's failed attempts (from every address). With the event
# refused the sign-in failed, but those stayed done. They run in the event's transaction
# instead (`auth_events.sign_in_succeeded`).
for _library_receiver, _uid in (
    (update_last_login, "update_last_login"),
    (handle_user_logged_in, None),
):
    if not user_logged_in.disconnect(_library_receiver, dispatch_uid=_uid):
        raise ImproperlyConfigured(f"{_library_receiver.__qualname__} no longer receives sign-ins")


@receiver(user_logged_in, dispatch_uid="accounts_signed_in")
def on_signed_in(sender, request, user, **kwargs) -> None:
    auth_events.sign_in_succeeded(request=request, user=user)


@receiver(user_logged_out, dispatch_uid="accounts_signed_out")
def on_signed_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        auth_events.sign_out_record(request=request, user=user)
