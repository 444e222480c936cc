from django.contrib import admin

from support_pin.models import AccountPins


@admin.register(AccountPins)
class AccountPinsAdmin(admin.ModelAdmin):
    """Lock state only: the PIN columns (even encrypted) are never shown or editable."""

    list_display = (
        "user",
        "support_pin_changed_at",
        "failed_validations",
        "validation_locked_until",
    )
    list_select_related = ("user",)
    fields = (
        "user",
        "support_pin_changed_at",
        "failed_validations",
        "validation_locked_until",
    )
    readonly_fields = ("user", "support_pin_changed_at", "failed_validations")
    search_fields = ("user__username",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
