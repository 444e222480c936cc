"""Re-encrypt every PIN under the primary FIELD_ENCRYPTION_KEYS key, in batches."""

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.mfa import authenticator_keys_rotate
from ehr.arguments import number_between
from support_pin.services import field_keys_rotate_batch


class Command(BaseCommand):
    help = (
        "Re-encrypt stored PINs and authenticator secrets under the first key of "
        "FIELD_ENCRYPTION_KEYS. "
        "Safe to stop and run again; runs while the site serves."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=number_between(1, 100_000),
            default=500,
            help="Rows re-encrypted per transaction (default 500).",
        )

    def handle(self, *args, batch_size: int, **options):
        key_id = settings.FIELD_ENCRYPTION_KEYS.current_id
        total = 0
        while True:
            progress = field_keys_rotate_batch(batch_size=batch_size)
            total += progress.done
            self.stdout.write(
                f"re-encrypted {total} accounts under key {key_id}; {progress.remaining} to go"
            )
            if progress.done == 0:
                break
        devices = authenticator_keys_rotate(batch_size=batch_size)
        self.stdout.write(f"re-encrypted {devices} authenticator secrets under key {key_id}")
        total += devices
        if progress.remaining:
            self.stdout.write(
                f"{progress.remaining} accounts were locked by other requests; run again."
            )
        self.stdout.write(self.style.SUCCESS(f"Done: {total} accounts re-encrypted."))
