"""Deliver the outbox: as a service (a loop), or once for cron and tests."""

import logging
import signal
import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import Error as DatabaseFailure
from django.db import connections

from audit.integrity import audit_verification_run_pending
from ehr.arguments import number_between
from outbox.worker import ERROR_LENGTH, deliver_pass, deliver_pending

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Deliver what waits in the outbox (mail, audit events to syslog), in order, retrying "
        "with back-off, and run the audit log verifications asked for on the Integrity page. "
        "Runs until stopped; --once does what is due and exits, with status 1 if a "
        "destination failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")
        parser.add_argument(
            "--interval",
            type=number_between(0.1, 3600, whole=False),
            default=1.0,
            help="Seconds between passes when nothing was due (default 1; at least 0.1).",
        )

    def handle(self, *args, **options):
        if options["once"]:
            total, outcomes, set_aside = 0, {}, []
            while True:
                done = deliver_pass()
                total += done.delivered
                outcomes.update(done.outcomes)  # a destination's last try in this run
                set_aside += done.set_aside
                if not done.delivered:
                    break
            self.stdout.write(f"Delivered {total} items.")
            while verification := audit_verification_run_pending():
                self.stdout.write(f"Ran audit log verification {verification.pk}.")
            # Cron mails a job's errors and monitors read its status: an item set aside in
            # this run, or a destination whose last try in it failed, fails the run. One
            # still waiting out an earlier failure's back-off is not tried, and not
            # reported: `outbox_status --max-age` watches how long items wait.
            failed = set_aside + [(name, error) for name, error in outcomes.items() if error]
            if failed:
                raise CommandError(
                    "\n".join(f"{name}: {error[:ERROR_LENGTH]}" for name, error in failed)
                    + "\nSee Reports > Outbox (docs/outbox.md)."
                )
            return
        stopping = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stopping.append(True))
        while not stopping:
            try:
                delivered = deliver_pending()
                # A verification asked for on the Integrity page: one per pass, after the
                # mail, so a large log delays the next mail by one walk at most.
                if audit_verification_run_pending() is not None:
                    delivered += 1
            except DatabaseFailure:  # DatabaseError, and InterfaceError of a closed connection
                # The database restarted or went away: drop the connection, try again.
                logger.exception("outbox worker: database error; retrying")
                connections.close_all()
                delivered = 0
            if not delivered:
                time.sleep(options["interval"])
