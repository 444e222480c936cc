"""Print the public key that verifies audit checkpoints, for outside auditors."""

from django.core.management.base import BaseCommand

from audit.checkpoints import public_key_lines


class Command(BaseCommand):
    help = (
        "Print the audit signing key's public half as `id:base64` (what `audit_verify "
        "--public-key` reads). --all adds the retired keys that signed older checkpoints."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Include retired keys.")

    def handle(self, *args, **options):
        for line in public_key_lines(all_keys=options["all"]):
            self.stdout.write(line)
