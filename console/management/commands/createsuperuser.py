"""Create a platform administrator, audited (in place of Django's `createsuperuser`)."""

import getpass
import os
import socket

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.roles import PLATFORM_ROLES, Role
from accounts.services import platform_administrator_create

# Django's own variables for --noinput, so scripts written for its command keep working.
VARIABLE = "DJANGO_SUPERUSER_{}"
FIELDS = {  # option: what the prompt asks
    "username": "Username",
    "email": "Email address",
    "first_name": "First name",
    "last_name": "Last name",
}


class Command(BaseCommand):
    help = (
        "Create a platform administrator: an account with a platform role that may open the "
        "Django admin once it has a second factor. Recorded in the audit log, with the "
        "server login that ran it. Asks for what the options leave out, and the password "
        "twice; with --noinput reads them from DJANGO_SUPERUSER_USERNAME, _EMAIL, "
        "_FIRST_NAME, _LAST_NAME and _PASSWORD."
    )

    def add_arguments(self, parser):
        for name in FIELDS:
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name)
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
            help="Ask nothing: read what the options leave out from the environment.",
        )

    def handle(self, *args, **options):
        interactive = options["interactive"]
        values = {name: self._value(name, options[name], interactive) for name in FIELDS}
        if User.objects.filter(username__iexact=values["username"]).exists():
            raise CommandError(
                f"The username {values['username']!r} is taken; nothing was created."
            )
        password = self._password(interactive)
        try:
            user = platform_administrator_create(
                **values,
                password=password,
                role=Role(options["role"]),
                operator=f"{getpass.getuser()}@{socket.gethostname()}",
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(
            f"Created platform administrator {user.username}. At the first sign-in they set up "
            "a second factor; the admin opens after it."
        )

    def _value(self, name: str, given: str | None, interactive: bool) -> str:
        value = (given or "").strip()
        if not value and not interactive:
            value = os.environ.get(VARIABLE.format(name.upper()), "").strip()
        while not value and interactive:
            value = input(f"{FIELDS[name]}: ").strip()
        if not value:
            raise CommandError(
                f"Give --{name.replace('_', '-')}, or set {VARIABLE.format(name.upper())}."
            )
        return value

    def _password(self, interactive: bool) -> str:
        if not interactive:
            password = os.environ.get(VARIABLE.format("PASSWORD"), "")
            if not password:
                raise CommandError(f"Set {VARIABLE.format('PASSWORD')}, or run without --noinput.")
            return password
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("The two passwords differ; nothing was created.")
        return password
