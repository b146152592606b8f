from django.core.management.base import BaseCommand, CommandError

from compliance.services.erasure import erasures_reapply


class Command(BaseCommand):
    help = "After a database restore: reload the erasure ledger file and erase again."

    def handle(self, *args, **options) -> None:
        try:
            entries, again = erasures_reapply()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{entries} ledger entries loaded; {len(again)} students erased again")
