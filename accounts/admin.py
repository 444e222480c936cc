from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import Practice, ProviderProfile, Specialty, StaffProfile, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "first_name", "last_name", "practice", "is_active")
    list_filter = ("practice", "groups", "is_active")
    list_select_related = ("practice",)
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Practice", {"fields": ("practice", "time_zone")}),
    )


@admin.register(Practice)
class PracticeAdmin(admin.ModelAdmin):
    list_display = ("name", "group_id")


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
