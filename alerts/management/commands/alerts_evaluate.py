"""Run every alert rule once (from a systemd timer or cron, every minute)."""

from django.core.management.base import BaseCommand

from alerts.services import alerts_evaluate


class Command(BaseCommand):
    help = "Evaluate every alert rule once; raise, record and mail what they find."

    def handle(self, *args, **options):
        raised = alerts_evaluate()
        for alert in raised:
            self.stdout.write(f"Raised alert #{alert.pk}: {alert.get_rule_display()}")
        self.stdout.write(f"Raised {len(raised)} alert(s).")
