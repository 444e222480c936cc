from django.apps import AppConfig


class EhrConfig(AppConfig):
    name = "ehr"
    verbose_name = "EHR infrastructure"

    def ready(self) -> None:
        from ehr import checks  # noqa: F401  (registers the system checks)
