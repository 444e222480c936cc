from django.contrib import admin

from support_pin.models import AccountPins
from support_pin.services import support_pin_validation_unblock


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
    # All of it: lifting a lock is audited, so it is an action through the service.
    readonly_fields = fields
    search_fields = ("user__username",)
    actions = ["unblock_validation"]

    @admin.action(description="Let support validate the Support PIN again (after repeated locks)")
    def unblock_validation(self, request, queryset):
        for pins in queryset.select_related("user"):
            support_pin_validation_unblock(
                acting_user=request.user, account=pins.user, ip=request.client_ip
            )
        self.message_user(request, f"Unblocked PIN validation of {queryset.count()} account(s).")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Shown only: saving the form, read-only as it is, would write the whole row back
        # as it was read, over a PIN rotated or a lock taken meanwhile.
        return False

    def has_delete_permission(self, request, obj=None):
        return False
