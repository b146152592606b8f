import getpass

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.services.erasure import student_erase
from mastery_project.errors import NotFound


class Command(BaseCommand):
    help = "Erase everything about a student (GDPR Art. 17), as the API does. Irreversible."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("student_id")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, student_id: str, yes: bool, **options) -> None:
        if not yes:
            try:
                answer = input(f"Erase student {student_id} and all its data for good? [y/N] ")
            except EOFError:
                raise CommandError("refusing to erase without --yes (no one to ask)") from None
            if answer.strip().lower() not in {"y", "yes"}:
                raise CommandError("not erased")
        try:
            counts = student_erase(
                student_id=student_id,
                actor=None,
                actor_label=f"manage.py gdpr_delete (os user {getpass.getuser()})",
            )
        except NotFound as exc:
            raise CommandError(f"no student {student_id!r}") from exc
        rows = ", ".join(f"{kind} {n}" for kind, n in counts.items())
        self.stdout.write(f"erased {student_id}: {rows}")
