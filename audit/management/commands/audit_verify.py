"""Walk the audit hash chain and report the first event that does not check out."""

from django.core.management.base import BaseCommand, CommandError

from audit.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; exits non-zero naming the first bad event."

    def handle(self, *args, **options):
        result = audit_chain_verify()
        if result.problem is not None:
            where = f"seq {result.problem.seq}" if result.problem.seq is not None else "the chain"
            if result.problem.row_id is not None:
                where += f" (row id {result.problem.row_id})"
            raise CommandError(
                f"Audit chain broken at {where}: {result.problem.reason}. "
                f"{result.checked} events checked before it."
            )
        self.stdout.write(
            f"Audit chain intact: {result.checked} events verified; "
            f"head seq {result.head_seq}, hash {result.head_hash}."
        )
