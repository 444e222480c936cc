"""Create a platform administrator, audited (in place of Django's `createsuperuser`)."""

import getpass
import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import PLATFORM_ROLES, Role
from accounts.services import platform_administrator_create

PASSWORD_VARIABLE = "DJANGO_SUPERUSER_PASSWORD"  # noqa: S105  (a variable's name: Django's own, for --noinput)


class Command(BaseCommand):
    help = (
        "Create a platform administrator: an account with a platform role that may open the "
        "Django admin once it has a second factor. Recorded in the audit log. The password is "
        f"asked twice, or read from {PASSWORD_VARIABLE} with --noinput."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", required=True)
        parser.add_argument("--first-name", required=True)
        parser.add_argument("--last-name", required=True)
        parser.add_argument(
            "--role",
            choices=sorted(role.value for role in PLATFORM_ROLES),
            default=Role.PLATFORM_AUDITOR.value,
            help="The account's role in the application (default platform_auditor).",
        )
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help=f"Read the password from {PASSWORD_VARIABLE} instead of asking.",
        )

    def handle(self, *args, **options):
        password = self._password(options["interactive"])
        try:
            user = platform_administrator_create(
                username=options["username"],
                email=options["email"],
                password=password,
                first_name=options["first_name"],
                last_name=options["last_name"],
                role=Role(options["role"]),
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(
            f"Created platform administrator {user.username}. At the first sign-in they set up "
            "a second factor; the admin opens after it."
        )

    def _password(self, interactive: bool) -> str:
        if not interactive:
            password = os.environ.get(PASSWORD_VARIABLE, "")
            if not password:
                raise CommandError(f"Set {PASSWORD_VARIABLE}, or run without --noinput.")
            return password
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("The two passwords differ; nothing was created.")
        return password
