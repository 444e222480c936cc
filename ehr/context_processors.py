"""Template context shared by every page: the navigation the user may use."""

from django.conf import settings
from django.http import HttpRequest

from ehr import policies
from ehr.policies import AuditScope, audit_scope, can_use_support_console


def navigation(request: HttpRequest) -> dict:
    """Return the menu entries this user may use and, when signed in, the idle sign-out timing."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav": {}}
    return {
        "idle": {
            "timeout": settings.SESSION_IDLE_TIMEOUT,
            "warning": settings.SESSION_IDLE_WARNING,
        },
        "nav": {
            "account_settings": policies.can_use_account_settings(user),
            "staff_account": policies.can_use_staff_account(user),
            "practice_staff": policies.can_manage_practice_staff(user),
            "audit_log": audit_scope(user) is not None,
            "break_glass_review": audit_scope(user) in (AuditScope.ALL, AuditScope.PRACTICE),
            "support_console": can_use_support_console(user),
            "outbox": policies.can_view_outbox(user),
            "integrity": policies.can_verify_audit_log(user),
            "dashboard": policies.can_view_audit_dashboard(user),
            "alerts": policies.can_view_alerts(user),
            "audit_history": policies.can_review_audit_subjects(user),
        },
    }
