"""Delete sessions past their expiry (Django's command of the same name, for this store)."""

from django.core.management.base import BaseCommand

from accounts.session_store import SessionStore


class Command(BaseCommand):
    help = "Delete expired sessions; run daily from cron."

    def handle(self, *args, **options):
        SessionStore.clear_expired()
