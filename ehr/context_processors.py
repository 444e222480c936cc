"""Template context shared by every page: the navigation the user may use, and its URLs."""

from functools import cache

from django.conf import settings
from django.http import HttpRequest
from django.urls import get_script_prefix, get_urlconf, reverse

from ehr import policies
from ehr.policies import AuditScope, audit_scope, can_use_support_console

# The URLs the base layout links to. They take no arguments, so they are reversed
# once per URLconf and script prefix instead of a dozen times on every page.
LAYOUT_URLS = (
    "home",
    "login",
    "logout",
    "support_console",
    "audit_report",
    "break_glass_list",
    "account_settings",
    "staff_account",
    "security",
    "practice_staff",
    "session_status",
    "session_keepalive",
)


@cache
def _layout_urls(urlconf: str, prefix: str) -> dict[str, str]:
    return {name: reverse(name, urlconf=urlconf) for name in LAYOUT_URLS}


def layout_urls() -> dict[str, str]:
    return _layout_urls(get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())


def navigation(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav": {}, "urls": layout_urls()}
    return {
        "urls": layout_urls(),
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
        },
    }
