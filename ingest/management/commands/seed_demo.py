import random
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from ingest.models import InboxEvent
from ingest.pipeline import ingest_batch
from ingest.synthetic import synthetic_events
from mastery.models import Cohort, Student, Topic, User
from mastery.services import account_create_or_update

# Development-only logins; the command refuses to run with DEBUG off unless forced.
DEMO_ACCOUNTS = (
    ("demo-admin", User.Role.ADMIN, "demo-admin-password"),
    ("demo-teacher", User.Role.TEACHER, "demo-teacher-password"),
    ("demo-student", User.Role.STUDENT, "demo-student-password"),
    ("demo-service", User.Role.SERVICE, "demo-service-password"),
)
# slug, name, prerequisites
TOPICS = (
    ("python.basics", "Python basics", ()),
    ("python.strings", "Strings", ("python.basics",)),
    ("python.loops", "Loops", ("python.basics",)),
    ("python.functions", "Functions", ("python.loops",)),
    ("python.classes", "Classes", ("python.functions", "python.strings")),
)
COHORTS = (("year10-a", "Year 10 A"), ("year10-b", "Year 10 B"))
STUDENTS_PER_COHORT = 20
DAYS = 21
EVENTS = 6000


class Command(BaseCommand):
    help = "Seed demo accounts, topics, cohorts and three weeks of events (development only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="run even with DEBUG off")

    def handle(self, *args, force: bool, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo creates known passwords: DEBUG is off (use --force).")
        if User.objects.filter(username="demo-admin").exists():
            self.stdout.write("demo data present")
        else:
            self.seed()
        self.stdout.write("demo logins (username / password):")
        for username, role, password in DEMO_ACCOUNTS:
            self.stdout.write(f"  {role:<8} {username} / {password}")

    def seed(self) -> None:
        with transaction.atomic():
            topics = {}
            for slug, name, prerequisites in TOPICS:
                topics[slug] = Topic.objects.update_or_create(slug=slug, defaults={"name": name})[0]
                topics[slug].prerequisites.set([topics[p] for p in prerequisites])
            student_ids = []
            for n, (cohort_id, name) in enumerate(COHORTS):
                cohort = Cohort.objects.update_or_create(
                    cohort_id=cohort_id, defaults={"name": name}
                )[0]
                ids = [
                    f"s-{n * STUDENTS_PER_COHORT + i + 1:03d}" for i in range(STUDENTS_PER_COHORT)
                ]
                cohort.students.add(*(Student.objects.get_or_create(student_id=s)[0] for s in ids))
                student_ids.extend(ids)
            for username, role, password in DEMO_ACCOUNTS:
                account_create_or_update(
                    username=username,
                    role=role,
                    password=password,
                    student_id="s-001" if role == User.Role.STUDENT else None,
                    cohort_ids=["year10-a"]
                    if role != User.Role.ADMIN and role != User.Role.SERVICE
                    else [],
                )
        now = timezone.now()
        events = sorted(
            synthetic_events(
                student_ids=student_ids,
                topics=list(topics),
                start=now - timedelta(days=DAYS),
                end=now - timedelta(minutes=1),
                count=EVENTS,
                rng=random.Random(2026),
            ),
            key=lambda e: e["occurred_at"],
        )
        accepted = 0
        for start in range(0, len(events), 1000):
            accepted += ingest_batch(
                events[start : start + 1000], source=InboxEvent.Source.HTTP
            ).accepted
        self.stdout.write(
            f"demo data created: {len(topics)} topics, {len(COHORTS)} cohorts, "
            f"{len(student_ids)} students, {accepted} events over {DAYS} days"
        )
