"""A library's command that would change sign-in unrecorded, answered with the audited way."""

from django.core.management.base import BaseCommand, CommandError


class RefusedCommand(BaseCommand):
    """Refuses whatever it is given, changing nothing, and says what to use instead."""

    instead = ""

    def add_arguments(self, parser):
        parser.add_argument("args", nargs="*", help="Ignored: this command changes nothing.")

    def handle(self, *args, **options):
        raise CommandError(
            f"Not run: it would change sign-in with nothing in the audit log. {self.instead}"
        )


class RefusedUnlock(RefusedCommand):
    """One of django-axes' `axes_reset*` commands, which clear sign-in locks."""

    help = "Refused (django-axes' command would unlock sign-in unrecorded)."
    instead = (
        'Unlock an account in the Django admin (Accounts, action "Unlock sign-in") or, for a '
        "practice member, on the Practice Staff page of its practice admin: both record it."
    )
