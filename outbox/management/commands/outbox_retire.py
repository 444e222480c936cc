"""Retire a syslog destination no longer used, so that audit_archive stops waiting for it."""

from django.core.management.base import BaseCommand, CommandError

from outbox.models import Destination
from outbox.services import DestinationInUse, syslog_destination_retire


class Command(BaseCommand):
    help = (
        "Forget the syslog destination NAME (as the Outbox page and outbox_status show it), "
        "one no longer configured: its cursors go, audit_archive stops waiting for it, and the "
        "audit log records it (audit.stream_retired) with the events it never received."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The destination's name, e.g. 'syslog atna tls://...'.")

    def handle(self, *args, **options):
        try:
            pending = syslog_destination_retire(name=options["name"], acting_user=None)
        except (DestinationInUse, Destination.DoesNotExist) as refused:
            raise CommandError(str(refused)) from None
        self.stdout.write(
            f"Retired {options['name']}; {pending} events it had not received will never be sent."
        )
