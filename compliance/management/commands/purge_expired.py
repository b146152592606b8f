from django.core.management.base import BaseCommand, CommandParser

from compliance.services.retention import expired_purge, retention_days


class Command(BaseCommand):
    help = "Delete what is past its retention window, per kind (run daily)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args, dry_run: bool, **options) -> None:
        windows = retention_days()
        verb = "would delete" if dry_run else "deleted"
        for kind, count in expired_purge(dry_run=dry_run).items():
            self.stdout.write(f"{kind:<10} {verb} {count} (older than {windows[kind]} days)")
