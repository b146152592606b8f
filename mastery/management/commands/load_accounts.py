"""The logins of the load test (`make load`): one per student, teachers of two cohorts each,
and a service account for the LMS, written to a JSON file the locustfile reads.

Students get no password: each gets a refresh token minted here (what a signed-in app
holds), because hashing a password per student at ramp-up (PBKDF2, about 0.2 s of CPU
each) would measure the hasher, not the API. Teachers and the service log in with the one
password written to the file.
"""

import json
import math
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework_simplejwt.tokens import RefreshToken

from mastery.models import Topic, User
from mastery.services import account_create_or_update

SERVICE_USERNAME = "load-lms"


def load_student_ids(count: int) -> list[str]:
    """The ids `produce_events --students COUNT` writes events for: s-001 … s-COUNT."""
    width = max(3, len(str(count)))
    return [f"s-{n:0{width}d}" for n in range(1, count + 1)]


def cohort_ids(count: int) -> list[str]:
    width = max(2, len(str(count)))
    return [f"load-{n:0{width}d}" for n in range(1, count + 1)]


class Command(BaseCommand):
    help = "Create the load test's logins and write them, with tokens, to a file (development)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--students", type=int, required=True, help="student logins")
        parser.add_argument("--teachers", type=int, required=True, help="teacher logins")
        parser.add_argument("--cohort-size", type=int, default=25, help="students a cohort")
        parser.add_argument("--output", type=Path, required=True, help="the JSON file to write")
        parser.add_argument("--force", action="store_true", help="run even with DEBUG off")

    def handle(
        self, *args, students: int, teachers: int, cohort_size: int, output: Path, force: bool,
        **options,
    ) -> None:  # fmt: skip
        if not settings.DEBUG and not force:
            raise CommandError("load_accounts writes live tokens: DEBUG is off (use --force).")
        if students < 2 or teachers < 1 or cohort_size < 1:
            raise CommandError("--students at least 2, --teachers and --cohort-size at least 1")
        password = secrets.token_urlsafe(18)
        with transaction.atomic():
            document = {
                "password": password,
                "service": self.service(password),
                "topics": list(Topic.objects.values_list("slug", flat=True)),
                **self.school(students, teachers, cohort_size, password),
            }
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(document, file)
        self.stdout.write(
            f"load accounts: {students} students, {teachers} teachers,"
            f" {len(document['cohorts'])} cohorts, 1 service → {output}"
        )

    def school(self, students: int, teachers: int, cohort_size: int, password: str) -> dict:
        """Students in consecutive cohorts of at most `cohort_size` (at least two cohorts, so
        that a teacher can compare), teacher k teaching cohorts k and k + 1 (wrapping round).
        A student that has a login already (`seed_demo`'s s-001) keeps it, password and all."""
        ids = load_student_ids(students)
        cohorts = cohort_ids(max(2, math.ceil(students / cohort_size)))
        size = math.ceil(students / len(cohorts))
        members = {c: ids[n * size : (n + 1) * size] for n, c in enumerate(cohorts)}
        logins = dict(
            User.objects.filter(student__student_id__in=ids).values_list(
                "student__student_id", "username"
            )
        )
        student_rows = []
        for cohort, student_ids in members.items():
            for student_id in student_ids:
                user, _ = account_create_or_update(
                    username=logins.get(student_id, f"load-{student_id}"),
                    role=User.Role.STUDENT,
                    student_id=student_id,
                    cohort_ids=[cohort],
                )
                student_rows.append(
                    {
                        "username": user.username,
                        "student_id": student_id,
                        "cohort": cohort,
                        "refresh": str(RefreshToken.for_user(user)),
                    }
                )
        teacher_rows = []
        for k in range(teachers):
            own = sorted({cohorts[k % len(cohorts)], cohorts[(k + 1) % len(cohorts)]})
            user, _ = account_create_or_update(
                username=f"load-teacher-{k + 1:03d}", role=User.Role.TEACHER, cohort_ids=own
            )
            teacher_rows.append(
                {
                    "username": user.username,
                    "cohorts": own,
                    "students": [s for c in own for s in members[c]],
                }
            )
        self.set_password([t["username"] for t in teacher_rows], password)
        return {"cohorts": cohorts, "students": student_rows, "teachers": teacher_rows}

    def service(self, password: str) -> str:
        account_create_or_update(username=SERVICE_USERNAME, role=User.Role.SERVICE)
        self.set_password([SERVICE_USERNAME], password)
        return SERVICE_USERNAME

    def set_password(self, usernames: list[str], password: str) -> None:
        """One hash for all of them: these logins are throwaway, and each hash costs ~0.2 s."""
        User.objects.filter(username__in=usernames).update(password=make_password(password))
