from django.core.management.base import BaseCommand, CommandParser

from mastery.policy import current_policy
from mastery.services import mastery_records_rescore, snapshots_rescore


class Command(BaseCommand):
    help = (
        "After a scoring-policy change (MASTERY_WEIGHTS): bring every mastery record, and the "
        "daily history, to the current policy from stored facts, without re-reading events."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="rescore every record, not only stale ones"
        )

    def handle(self, *args, all: bool, **options) -> None:
        rewritten = mastery_records_rescore(only_stale=not all)
        policy = current_policy().policy_hash
        self.stdout.write(f"{rewritten} records rescored to policy {policy}")
        if rewritten or all:
            history = snapshots_rescore()
            self.stdout.write(f"{history} snapshots rescored")
