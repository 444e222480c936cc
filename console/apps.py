from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The operator's commands that stand in for the libraries' own of the same name.

    Listed first among the installed apps: Django runs the first app's command of a
    name. The libraries' `createsuperuser`, `changepassword`, `axes_reset*` and
    `addstatictoken` change who signs in, and how, with nothing recorded; here the
    first goes through an audited service and the others point to the audited way.
    """

    name = "console"
    verbose_name = "Operator commands"
