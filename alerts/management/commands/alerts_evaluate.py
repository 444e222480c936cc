"""Run every alert rule once (from a systemd timer or cron, every minute)."""

from django.core.management.base import BaseCommand, CommandError

from alerts.services import alerts_evaluation_run


class Command(BaseCommand):
    help = (
        "Evaluate every alert rule once; raise, record and mail what they find. Exits 1 when "
        "a rule could not be evaluated (the error is logged; the other rules still ran)."
    )

    def handle(self, *args, **options):
        evaluation = alerts_evaluation_run()
        for alert in evaluation.raised:
            self.stdout.write(f"Raised alert #{alert.pk}: {alert.get_rule_display()}")
        self.stdout.write(f"Raised {len(evaluation.raised)} alert(s).")
        if evaluation.failed:
            raise CommandError(f"Rules not evaluated: {', '.join(evaluation.failed)}.")
