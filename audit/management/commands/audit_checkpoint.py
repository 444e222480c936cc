"""Sign every audit chain's head: run every minute (cron or a systemd timer, docs/audit.md)."""

from django.core.management.base import BaseCommand

from audit.checkpoints import audit_checkpoint_create


class Command(BaseCommand):
    help = (
        "Write a signed checkpoint of every audit chain's head (none when nothing moved since "
        "the last one). Run it every minute."
    )

    def handle(self, *args, **options):
        frozen = audit_checkpoint_create()
        checkpoint = frozen.checkpoint
        events = sum(leaf["seq"] - leaf["start_seq"] + 1 for leaf in frozen.leaves.values())
        if not frozen.new:
            self.stdout.write("No chain moved since the last checkpoint.")
        self.stdout.write(
            f"Checkpoint {checkpoint.number} at {checkpoint.created_at:%Y-%m-%d %H:%M:%S} UTC: "
            f"{checkpoint.chain_count} chains, {events} events, root {checkpoint.merkle_root}, "
            f"hash {checkpoint.checkpoint_hash}, key {checkpoint.key_id}."
        )
