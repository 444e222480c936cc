from django.apps import AppConfig


class SupportPinConfig(AppConfig):
    name = "support_pin"
    verbose_name = "Support PIN"
