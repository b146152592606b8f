from django.core.management.base import BaseCommand

from compliance.services import erasures_reapply


class Command(BaseCommand):
    help = "After a database restore: reload the erasure ledger file and erase again."

    def handle(self, *args, **options) -> None:
        entries, again = erasures_reapply()
        self.stdout.write(f"{entries} ledger entries loaded; {len(again)} students erased again")
