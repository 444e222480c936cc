"""Sign every audit chain's head: run every minute (cron or a systemd timer, docs/audit.md)."""

from django.core.management.base import BaseCommand, CommandError

from audit.checkpoints import CheckpointRefused, audit_checkpoint_create
from audit.integrity import audit_checkpoint_refusal_record


class Command(BaseCommand):
    help = (
        "Write a signed checkpoint of every audit chain's head (none when nothing moved since "
        "the last one). Run it every minute."
    )

    def handle(self, *args, **options):
        try:
            frozen = audit_checkpoint_create()
        except CheckpointRefused as refused:
            audit_checkpoint_refusal_record(refused)  # the Integrity page, and its alert
            raise CommandError(
                f"Nothing signed: at {refused.problem.where()}, {refused.problem.reason}. "
                "Run `manage.py audit_verify`, and treat the log as tampered with until "
                "it is explained."
            ) from None
        checkpoint = frozen.checkpoint
        events = sum(leaf["seq"] - leaf["start_seq"] + 1 for leaf in frozen.leaves.values())
        if not frozen.new:
            self.stdout.write("No chain moved since the last checkpoint.")
        self.stdout.write(
            f"Checkpoint {checkpoint.number} at {checkpoint.created_at:%Y-%m-%d %H:%M:%S} UTC: "
            f"{checkpoint.chain_count} chains, {events} events, root {checkpoint.merkle_root}, "
            f"hash {checkpoint.checkpoint_hash}, key {checkpoint.key_id}."
        )
