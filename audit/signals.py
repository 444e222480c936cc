"""Record Django's sign-in, sign-out and failed sign-in signals in the audit log."""

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit import kinds
from audit.services import audit_event_record
from ehr.client_ip import client_ip

# credentials["purpose"] of failures sent by password prompts inside a session (PIN view,
# re-authentication): they count towards the sign-in lockout and record their own event.
IN_SESSION_PROMPT = "in_session_prompt"


def _ip(request) -> str | None:
    if request is None:
        return None
    return getattr(request, "client_ip", None) or client_ip(request)


@receiver(user_logged_in, dispatch_uid="audit_signed_in")
def record_signed_in(sender, request, user, **kwargs):
    audit_event_record(kind=kinds.SIGNED_IN, acting_user=user, account=user, ip=_ip(request))


@receiver(user_logged_out, dispatch_uid="audit_signed_out")
def record_signed_out(sender, request, user, **kwargs):
    if user is None:
        return
    if getattr(request, "automatic_sign_out", False):
        audit_event_record(
            kind=kinds.SIGNED_OUT_AUTOMATICALLY, acting_user=None, account=user, ip=_ip(request)
        )
    else:
        audit_event_record(kind=kinds.SIGNED_OUT, acting_user=user, account=user, ip=_ip(request))


@receiver(user_login_failed, dispatch_uid="audit_sign_in_failed")
def record_sign_in_failed(sender, credentials, request=None, **kwargs):
    if credentials.get("purpose") == IN_SESSION_PROMPT:
        return
    username = credentials.get("username") or ""
    user = get_user_model().objects.filter(username=username).first() if username else None
    if _was_locked(request):  # refused before the password was looked at
        known, unknown = kinds.SIGN_IN_REFUSED_LOCKED, kinds.SIGN_IN_REFUSED_LOCKED_UNKNOWN
    else:
        known, unknown = kinds.SIGN_IN_FAILED, kinds.SIGN_IN_FAILED_UNKNOWN
    if user is None:
        # The typed text is not recorded: it may be a password typed in the wrong field.
        audit_event_record(kind=unknown, acting_user=None, ip=_ip(request))
    else:
        audit_event_record(kind=known, acting_user=None, account=user, ip=_ip(request))


def _was_locked(request) -> bool:
    """Set by accounts.lockout when sign-in was already locked before this attempt."""
    return bool(getattr(request, "sign_in_was_locked", False))


@receiver(user_locked_out, dispatch_uid="audit_sign_in_locked")
def record_sign_in_locked(sender, request=None, username=None, ip_address=None, **kwargs):
    if _was_locked(request):
        return  # the lock is already recorded; the refusal is (record_sign_in_failed)
    user = get_user_model().objects.filter(username=username).first() if username else None
    if user is None:
        audit_event_record(kind=kinds.SIGN_IN_LOCKED_UNKNOWN, acting_user=None, ip=_ip(request))
    else:
        audit_event_record(
            kind=kinds.SIGN_IN_LOCKED, acting_user=None, account=user, ip=_ip(request)
        )
