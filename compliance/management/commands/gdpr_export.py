import getpass
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.services.export import student_export_stream
from mastery.models import Student


class Command(BaseCommand):
    help = "Write everything held about a student as JSON (GDPR Art. 15/20), as the API does."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("student_id")
        parser.add_argument("--output", help="file to write (default: standard output)")

    def handle(self, *args, student_id: str, output: str | None, **options) -> None:
        student = Student.objects.filter(student_id=student_id).first()
        if student is None:
            raise CommandError(f"no student {student_id!r}")
        chunks = student_export_stream(
            student=student,
            actor=None,
            actor_label=f"manage.py gdpr_export (os user {getpass.getuser()})",
        )
        if output is None:
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.write(b"\n")
            return
        try:
            with open(output, "wb") as target:
                for chunk in chunks:
                    target.write(chunk)
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror}") from exc
        self.stderr.write(f"export of {student_id} written to {output}")
