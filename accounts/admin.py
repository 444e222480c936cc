"""The Django admin, for platform administrators: a form over the models, whose every
change goes through the service that audits it (accounts, practices, specialties). What
has no audited way in is read-only here (passwords, superuser status, profiles);
accounts are created where their role and profile come with them (`user_create`), never
added bare here; nothing that the log names is deleted here."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.core.exceptions import ValidationError
from django.shortcuts import redirect

from accounts.mfa import mfa_reset
from accounts.models import Practice, ProviderProfile, Specialty, StaffProfile, User
from accounts.services import (
    ADMIN_EDITABLE,
    PRACTICE_EDITABLE,
    practice_create,
    practice_update,
    roles_validate,
    sign_in_unlock,
    specialty_add,
    specialty_rename,
    user_admin_update,
)
from ehr.admin import ConfirmedFormAdmin, ReadOnlyAdmin
from ehr.model_choices import ModelMultipleChoiceField


class AccountChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        # What the admin edits (`UserAdmin.fieldsets`); the practice is typed (raw id).
        fields = ("username", "password", "first_name", "last_name", "email", "is_active", "groups")
        field_classes = {**UserChangeForm.Meta.field_classes, "groups": ModelMultipleChoiceField}

    def clean(self):
        data = super().clean()
        if "groups" in data and "practice" in data:
            try:
                roles_validate(
                    roles=[group.name for group in data["groups"]],
                    practice=data["practice"],
                    was_provider=self.instance.is_provider,
                )
            except ValidationError as error:
                self.add_error("groups", error)
        return data


@admin.register(User)
class UserAdmin(ConfirmedFormAdmin, DjangoUserAdmin):
    form = AccountChangeForm
    list_display = ("username", "first_name", "last_name", "practice", "is_active")
    list_filter = ("practice", "groups", "is_active")
    list_select_related = ("practice",)
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Practice", {"fields": ("practice", "time_zone")}),
        ("Access", {"fields": ("is_active", "groups", "is_staff", "is_superuser")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("is_staff", "is_superuser", "last_login", "date_joined")
    raw_id_fields = ("practice",)  # a platform has too many practices for a menu
    actions = ["unlock_sign_in", "reset_two_factor"]

    def has_add_permission(self, request):
        return False  # an account comes with its role and profile (`user_create`)

    def has_delete_permission(self, request, obj=None):
        return False  # accounts are deactivated, never deleted: the log names them

    def save_model(self, request, obj, form, change):
        """Through `user_admin_update`, which audits each change; roles go with it."""
        data = form.cleaned_data
        user_admin_update(
            account=User.objects.get(pk=obj.pk),  # as stored: the form has changed `obj`
            changes={name: data[name] for name in ADMIN_EDITABLE if name in data},
            active=data["is_active"],
            roles=[group.name for group in data["groups"]],
            acting_user=request.user,
            ip=request.client_ip,
        )

    def save_related(self, request, form, formsets, change):
        """Nothing more: the roles were saved, and audited, with the account (`save_model`)."""

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
class PracticeAdmin(ConfirmedFormAdmin):
    """Practices added and changed through `practice_create` and `practice_update`, which
    audit them; never deleted: its members, its chain and its log name it."""

    list_display = ("name", "group_id", "country")
    search_fields = ("name", "=group_id")
    fields = ("name", "group_id", "country")

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            practice_update(
                practice=Practice.objects.get(pk=obj.pk),  # as stored: the form changed `obj`
                changes={name: data[name] for name in PRACTICE_EDITABLE if name in data},
                acting_user=request.user,
                ip=request.client_ip,
            )
        else:
            obj.pk = practice_create(
                name=data["name"],
                group_id=data["group_id"],
                country=data["country"],
                acting_user=request.user,
                ip=request.client_ip,
            ).pk


@admin.register(ProviderProfile)
class ProviderProfileAdmin(ReadOnlyAdmin):
    list_display = ("doctor_id", "user", "job_title")
    list_select_related = ("user",)
    search_fields = ("=doctor_id", "user__username")


@admin.register(StaffProfile)
class StaffProfileAdmin(ReadOnlyAdmin):
    list_display = ("user",)
    list_select_related = ("user",)


@admin.register(Specialty)
class SpecialtyAdmin(ConfirmedFormAdmin):
    """The specialties providers choose from, added and renamed through audited services;
    never deleted (`specialty_rename`)."""

    search_fields = ("name",)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        name = form.cleaned_data["name"]
        if change:
            specialty = Specialty.objects.get(pk=obj.pk)
            specialty_rename(
                specialty=specialty, name=name, acting_user=request.user, ip=request.client_ip
            )
        else:
            obj.pk = specialty_add(name=name, acting_user=request.user, ip=request.client_ip).pk
