"""Forgot password: Django's password reset views in the project's layout.

One view serves every emailed link that sets a password: a password reset
(Django's tokens, PASSWORD_RESET_TIMEOUT) and a new account's invitation (its
own tokens, INVITATION_TIMEOUT; accounts/tokens.py). What the pages change goes
through accounts/password_reset.py and accounts/services.py.
"""

import math

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN
from django.http import HttpResponseRedirect
from django.urls import reverse_lazy

from accounts import password_reset, services
from accounts.forms import ResetRequestForm
from accounts.password_reset import Link
from accounts.tokens import invitation_token_generator
from ehr.links import mail_link_options


class PasswordResetView(auth_views.PasswordResetView):
    """Ask for a link by email address; the same answer whether an account uses it or not."""

    form_class = ResetRequestForm
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form):
        options = {
            **mail_link_options(self.request),
            "token_generator": self.token_generator,
            "email_template_name": self.email_template_name,
            "subject_template_name": self.subject_template_name,
            "request": self.request,
            "extra_email_context": {"minutes": settings.PASSWORD_RESET_TIMEOUT // 60},
        }
        result = password_reset.password_reset_request(
            email=form.cleaned_data["email"],
            ip=self.request.client_ip,
            send_links=lambda: form.save(**options),
        )
        if result.accepted:
            return HttpResponseRedirect(self.get_success_url())
        minutes = math.ceil(result.retry_after / 60)
        form.add_error(
            None,
            f"Too many password reset requests. Try again in {minutes} "
            f"minute{'' if minutes == 1 else 's'}.",
        )
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(result.retry_after)
        return response


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_done.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "minutes": _reset_minutes()}


class SetPasswordLinkView(auth_views.PasswordResetConfirmView):
    """An emailed link: choose a new password (Django's view: one use, expires, never signs in).

    Django moves the token from the address into the session before showing the
    form, so it never leaks through the Referer header. A link that does not
    open is recorded; the page says the same whatever was wrong with it.
    """

    link = Link.RESET
    template_name = "registration/password_reset_confirm.html"

    def get_user(self, uidb64):
        user = super().get_user(uidb64)
        return user if user is not None and user.is_active else None

    def dispatch(self, *args, **kwargs):
        response = super().dispatch(*args, **kwargs)
        if not self.validlink and not isinstance(response, HttpResponseRedirect):
            password_reset.password_link_refused(
                link=self.link, account=self.user, ip=self.request.client_ip
            )
        return response

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "minutes": _reset_minutes()}

    def form_valid(self, form):
        self.password_set(form.user, form.cleaned_data["new_password1"])
        del self.request.session[INTERNAL_RESET_SESSION_TOKEN]
        return HttpResponseRedirect(self.get_success_url())

    def password_set(self, account, new_password: str) -> None:
        password_reset.password_reset_complete(
            account=account, new_password=new_password, ip=self.request.client_ip
        )


class InvitationView(SetPasswordLinkView):
    """A new staff member's link from the practice admin: their first password."""

    link = Link.INVITATION
    token_generator = invitation_token_generator
    template_name = "registration/set_password.html"
    success_url = reverse_lazy("login")

    def password_set(self, account, new_password: str) -> None:
        services.user_password_change(
            account=account,
            acting_user=account,
            new_password=new_password,
            ip=self.request.client_ip,
        )
        messages.success(self.request, "Your password is set. Sign in with it.")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"

    def get_context_data(self, **kwargs):
        cooloff = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
        return {**super().get_context_data(**kwargs), "lock_minutes": cooloff}


def _reset_minutes() -> int:
    return settings.PASSWORD_RESET_TIMEOUT // 60
