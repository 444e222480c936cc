from django.contrib import admin

from audit.models import AuditEvent
from ehr.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the log is changed by nobody, the admin included."""

    list_display = (
        "occurred_at",
        "actor_label",
        "account_label",
        "type",
        "action",
        "details",
        "ip",
    )
    list_filter = ("type", "action")
    date_hierarchy = "occurred_at"
    show_full_result_count = False  # no COUNT(*) over millions of rows per page
    ordering = ("-occurred_at", "-id")
    readonly_fields = [field.name for field in AuditEvent._meta.fields]
