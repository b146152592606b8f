import sys

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mastery.models import User
from mastery.services import account_create_or_update


class Command(BaseCommand):
    help = "Create a login, or update its role (and password with --password-stdin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=User.Role.values)
        parser.add_argument("--student-id", help="link a student login to this student")
        parser.add_argument(
            "--cohort",
            action="extend",
            nargs="+",
            default=[],
            dest="cohorts",
            metavar="COHORT_ID",
            help="a student joins / a teacher teaches these cohorts (repeatable)",
        )
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input",
        )

    def handle(
        self,
        *args,
        username: str,
        role: str,
        password_stdin: bool,
        student_id: str | None,
        cohorts: list[str],
        **options,
    ) -> None:
        password = None
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            try:
                validate_password(password, User(username=username, role=role))
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
        try:
            user, created = account_create_or_update(
                username=username,
                role=role,
                password=password,
                student_id=student_id,
                cohort_ids=cohorts,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        verb = "created" if created else "updated"
        linked = f", student {user.student.student_id}" if user.student else ""
        self.stdout.write(f"{verb} {user.username} (role {user.role}{linked})")
