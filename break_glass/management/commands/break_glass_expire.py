"""Write the expiry of every lapsed break-glass grant to the audit log (run from cron)."""

from django.core.management.base import BaseCommand
from django.utils import timezone

from break_glass.models import BreakGlassGrant
from break_glass.services import break_glass_record_expiry


class Command(BaseCommand):
    help = "Record the expiry of lapsed break-glass grants in the audit log."

    def handle(self, *args, **options):
        lapsed = BreakGlassGrant.objects.filter(
            expires_at__lte=timezone.now(), expiry_recorded_at__isnull=True
        ).select_related("account")
        count = sum(break_glass_record_expiry(grant=grant) for grant in lapsed)
        self.stdout.write(f"Recorded {count} expired break-glass grant(s).")
