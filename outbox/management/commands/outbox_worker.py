"""Deliver the outbox: as a service (a loop), or once for cron and tests."""

import logging
import signal
import threading
import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, connections

from outbox.worker import deliver_pending

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Deliver what waits in the outbox (mail), in order, retrying with back-off. Runs until "
        "stopped; --once delivers what is due and exits."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="Seconds between passes (default 1)."
        )

    def handle(self, *args, **options):
        if options["once"]:
            total = 0
            while delivered := deliver_pending():
                total += delivered
            self.stdout.write(f"Delivered {total} items.")
            return
        stopping = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stopping.append(True))
        while not stopping:
            try:
                delivered = deliver_pending()
            except DatabaseError:
                # The database restarted or went away: drop the connection, try again.
                logger.exception("outbox worker: database error; retrying")
                connections.close_all()
                delivered = 0
            if not delivered:
                time.sleep(options["interval"])
