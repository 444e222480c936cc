"""Who may read which part of the audit log."""

from enum import Enum

from accounts.models import User
from accounts.roles import Role


class AuditScope(Enum):
    ALL = "all"  # platform auditors
    PRACTICE = "practice"  # compliance officers: their practice
    OWN_ACCOUNT = "own"  # providers and staff: events about their own account


def audit_scope(user: User) -> AuditScope | None:
    """Return how much of the log `user` may read, or None for nothing."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.has_role(Role.PLATFORM_AUDITOR):
        return AuditScope.ALL
    if user.has_role(Role.COMPLIANCE_OFFICER) and user.practice_id is not None:
        return AuditScope.PRACTICE
    if user.has_role(Role.SUPPORT_AGENT):
        return None  # agents work across practices and must not read their logs
    if user.practice_id is not None:
        return AuditScope.OWN_ACCOUNT
    return None


def can_export_audit_log(user: User) -> bool:
    return audit_scope(user) is not None
