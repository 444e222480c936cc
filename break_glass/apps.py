from django.apps import AppConfig


class BreakGlassConfig(AppConfig):
    name = "break_glass"
    verbose_name = "Break-glass access"
