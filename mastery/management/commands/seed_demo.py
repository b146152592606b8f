from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mastery.models import User
from mastery.services import account_create_or_update

# Development-only logins; the command refuses to run with DEBUG off unless forced.
DEMO_ACCOUNTS = (
    ("demo-admin", User.Role.ADMIN, "demo-admin-password"),
    ("demo-teacher", User.Role.TEACHER, "demo-teacher-password"),
    ("demo-student", User.Role.STUDENT, "demo-student-password"),
    ("demo-service", User.Role.SERVICE, "demo-service-password"),
)


class Command(BaseCommand):
    help = "Seed demo accounts and data once (development only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="run even with DEBUG off")

    def handle(self, *args, force: bool, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo creates known passwords: DEBUG is off (use --force).")
        if User.objects.filter(username="demo-admin").exists():
            self.stdout.write("demo data present")
        else:
            for username, role, password in DEMO_ACCOUNTS:
                account_create_or_update(username=username, role=role, password=password)
            self.stdout.write("demo data created")
        self.stdout.write("demo logins (username / password):")
        for username, role, password in DEMO_ACCOUNTS:
            self.stdout.write(f"  {role:<8} {username} / {password}")
