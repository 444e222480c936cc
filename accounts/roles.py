"""The roles of the product, one Django group each (created by a data migration)."""

from django.db import models


class Role(models.TextChoices):
    PROVIDER = "provider", "Provider"
    NURSE = "nurse", "Nurse"
    SCHEDULER = "scheduler", "Scheduler"
    BILLING = "billing", "Billing"
    PRACTICE_ADMIN = "practice_admin", "Practice admin"
    COMPLIANCE_OFFICER = "compliance_officer", "Compliance officer"
    SUPPORT_AGENT = "support_agent", "Support agent"
    PLATFORM_AUDITOR = "platform_auditor", "Platform auditor"


# Roles that belong to one practice; the others are the platform's own people.
PRACTICE_ROLES = frozenset(
    {
        Role.PROVIDER,
        Role.NURSE,
        Role.SCHEDULER,
        Role.BILLING,
        Role.PRACTICE_ADMIN,
        Role.COMPLIANCE_OFFICER,
    }
)
PLATFORM_ROLES = frozenset({Role.SUPPORT_AGENT, Role.PLATFORM_AUDITOR})
