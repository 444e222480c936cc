from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
