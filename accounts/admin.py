from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.shortcuts import redirect

from accounts.mfa import mfa_reset
from accounts.models import Practice, ProviderProfile, Specialty, StaffProfile, User
from accounts.services import sign_in_unlock


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "first_name", "last_name", "practice", "is_active")
    list_filter = ("practice", "groups", "is_active")
    list_select_related = ("practice",)
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Practice", {"fields": ("practice", "time_zone")}),
    )
    actions = ["unlock_sign_in", "reset_two_factor"]

    def user_change_password(self, request, id, form_url=""):
        """Not here: a password is changed by its owner behind the password prompt (which
        counts wrong guesses and signs out the other sessions), or chosen from a
        set-password link; the admin would do neither."""
        self.message_user(
            request,
            "Passwords are not set in the admin: the owner changes theirs under Change "
            "Password, and new staff choose theirs from the emailed link.",
            level=messages.WARNING,
        )
        return redirect("admin:accounts_user_change", id)

    @admin.action(description="Unlock sign-in (clear failed attempts)")
    def unlock_sign_in(self, request, queryset):
        for account in queryset:
            sign_in_unlock(account=account, acting_user=request.user, ip=request.client_ip)
        self.message_user(request, f"Unlocked sign-in for {queryset.count()} account(s).")

    @admin.action(description="Reset two-factor authentication (lost passkey or phone)")
    def reset_two_factor(self, request, queryset):
        """Remove every second factor of the chosen accounts and sign them out (audited).

        For someone who lost their passkeys and backup codes alike, once their
        identity was checked outside the system; they set a factor up again at
        their next sign-in.
        """
        for account in queryset:
            mfa_reset(account=account, acting_user=request.user, ip=request.client_ip)
        self.message_user(
            request,
            f"Reset two-factor authentication of {queryset.count()} account(s): they set it "
            "up again at their next sign-in.",
        )


@admin.register(Practice)
class PracticeAdmin(admin.ModelAdmin):
    list_display = ("name", "group_id", "country")


@admin.register(ProviderProfile)
class ProviderProfileAdmin(admin.ModelAdmin):
    list_display = ("doctor_id", "user", "job_title")
    list_select_related = ("user",)
    search_fields = ("=doctor_id", "user__username")
    raw_id_fields = ("user",)


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    list_display = ("user",)
    list_select_related = ("user",)
    raw_id_fields = ("user",)


admin.site.register(Specialty)
