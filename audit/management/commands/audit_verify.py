"""Verify the audit log (every chain and checkpoint), or an evidence file with a public key."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit import offline
from audit.integrity import audit_verification_record
from audit.verification import audit_log_verify


class Command(BaseCommand):
    help = (
        "Verify every audit chain and signed checkpoint; exits non-zero naming the first bad "
        "event or checkpoint. With --file, verify an evidence file with only the public key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", help="An evidence file downloaded from the Audit Log Report.")
        parser.add_argument(
            "--public-key",
            action="append",
            default=[],
            help="`id:base64` public key, or a file of them (see audit_public_key); repeatable.",
        )
        parser.add_argument(
            "--kind",
            choices=offline.KINDS,
            help="With --file: refuse it unless it is this kind (an export or an archive).",
        )
        parser.add_argument(
            "--previous",
            help="With --file, an archive: the archive of the month before, to join it to.",
        )
        parser.add_argument(
            "--since",
            help="With --file, an evidence file: an earlier one you kept; checks that this one "
            "goes on from every chain head the earlier one signed.",
        )

    def handle(self, *args, **options):
        if options["file"]:
            previous = Path(options["previous"]) if options["previous"] else None
            since = Path(options["since"]) if options["since"] else None
            if since and (previous or options["kind"] == "archive"):
                raise CommandError(
                    "--since compares evidence files; archives join with --previous."
                )
            self._verify_file(
                Path(options["file"]), options["public_key"], options["kind"], previous, since
            )
            return
        if options["public_key"] or options["kind"] or options["previous"] or options["since"]:
            raise CommandError("--public-key, --kind, --previous and --since go with --file.")
        result = audit_log_verify()
        audit_verification_record(result)  # shown on the Integrity page
        if result.problem is not None:
            raise CommandError(
                f"Audit log broken at {result.problem.where()}: {result.problem.reason}. "
                f"{result.events} events checked before it."
            )
        latest = result.latest_checkpoint
        self.stdout.write(
            f"Audit log intact: {result.events} events in {result.chains} chains, "
            f"{result.checkpoints} checkpoints verified."
        )
        if latest is None:
            self.stdout.write("No checkpoint yet: run `manage.py audit_checkpoint`.")
        else:
            self.stdout.write(
                f"Latest checkpoint {latest.number} at {latest.created_at:%Y-%m-%d %H:%M:%S} UTC, "
                f"hash {latest.checkpoint_hash}; {result.uncovered} events written since."
            )

    def _verify_file(
        self,
        path: Path,
        key_args: list[str],
        kind: str | None,
        previous: Path | None,
        since: Path | None,
    ) -> None:
        if not key_args:
            raise CommandError(
                "--file needs --public-key: the key you trust, not one from the file."
            )
        try:
            keys = offline.load_public_keys(key_args)
        except (OSError, ValueError) as error:
            raise CommandError(f"Public key: {error}") from None
        try:
            report = offline.verify_file(path, keys, kind=kind, previous=previous, since=since)
        except OSError as error:
            raise CommandError(f"Cannot read {error.filename}: {error}") from None
        if report.problem is not None:
            raise CommandError(f"Evidence file not verified: {report.problem}")
        for line in report.lines():
            self.stdout.write(line)
