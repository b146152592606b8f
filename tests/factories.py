import uuid
from datetime import UTC, datetime, timedelta

import factory
from django.utils import timezone

from ingest.pipeline import ingest_batch
from mastery.models import Cohort, Student, Topic, User

PASSWORD = "correct-horse-battery-staple"

# A fixed instant for tests that hand `now=` to the pipeline or a service: their days and
# hours are the same on every run, whatever the hour or the date of the run.
PINNED_NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)

# A valid payload of each event type.
DEFAULT_PAYLOADS = {
    "exercise.completed": {"exercise_id": "ex-1"},
    "quiz.submitted": {"quiz_id": "q-1", "score": 8, "max_score": 10},
    "code.reviewed": {"submission_id": "sub-1", "quality_score": 0.75},
    "session.completed": {"duration_minutes": 30},
}


def iso(moment: datetime) -> str:
    """`moment` as an ISO 8601 UTC string ending in "Z"."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_document(
    event_type: str = "quiz.submitted",
    *,
    student_id: str = "s-1",
    topic: str = "python.loops",
    occurred_at: datetime | str | None = None,
    event_id: str | None = None,
    payload=None,
    **payload_changes,
) -> dict:
    """One event document. `occurred_at` defaults to an hour before `timezone.now()` (so it
    follows a pinned clock; a string is kept as it is, a datetime goes through `iso`);
    `payload` defaults to a copy of the type's DEFAULT_PAYLOADS entry (empty for an unknown
    type); `payload_changes` are merged into it."""
    when = timezone.now() - timedelta(hours=1) if occurred_at is None else occurred_at
    body = dict(DEFAULT_PAYLOADS.get(event_type, {})) if payload is None else payload
    if payload_changes:
        body = {**body, **payload_changes}
    return {
        "event_id": event_id or f"event-{uuid.uuid4().hex}",
        "event_type": event_type,
        "student_id": student_id,
        "topic": topic,
        "occurred_at": when if isinstance(when, str) else iso(when),
        "payload": body,
    }


def ingest_all(events, *, allow_duplicates: bool = False, now: datetime | None = None):
    """Apply events through the real ingestion pipeline (source "http"), judged at `now`
    (default: the clock). None may be rejected; unless `allow_duplicates`, every one must
    be accepted."""
    if not isinstance(events, list):
        events = list(events)
    result = ingest_batch(events, source="http", now=now)
    if allow_duplicates:
        assert result.rejected == [], result.rejected
    else:
        assert result.accepted == len(events), result.outcomes
    return result


class StudentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Student
        django_get_or_create = ("student_id",)

    student_id = factory.Sequence(lambda n: f"s-{n:05d}")


class TopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Topic
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"topic.{n}")
    name = factory.LazyAttribute(lambda t: t.slug.title())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    role = User.Role.STUDENT
    password = factory.django.Password(PASSWORD)
    is_staff = factory.LazyAttribute(lambda u: u.role in (User.Role.TEACHER, User.Role.ADMIN))
    is_superuser = factory.LazyAttribute(lambda u: u.role == User.Role.ADMIN)


class CohortFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cohort
        django_get_or_create = ("cohort_id",)
        skip_postgeneration_save = True

    cohort_id = factory.Sequence(lambda n: f"cohort-{n}")
    name = factory.LazyAttribute(lambda c: c.cohort_id.title())

    @factory.post_generation
    def students(self, create, extracted, **kwargs):
        if create and extracted:
            self.students.add(*extracted)

    @factory.post_generation
    def teachers(self, create, extracted, **kwargs):
        if create and extracted:
            self.teachers.add(*extracted)


def two_cohort_school(students: dict) -> tuple[dict, dict]:
    """The logins and cohorts of the role-by-endpoint tests: cohort A (s-a1, s-a2) taught by
    `teacher`, cohort B (s-b1) by `other_teacher`; the `student` login is s-a1's; an admin
    and a service. Returns (users, cohorts) by role and by cohort id."""
    teacher = UserFactory(username="teacher-a", role=User.Role.TEACHER)
    other_teacher = UserFactory(username="teacher-b", role=User.Role.TEACHER)
    users = {
        "student": UserFactory(
            username="student-a1", role=User.Role.STUDENT, student=students["s-a1"]
        ),
        "teacher": teacher,
        "admin": UserFactory(username="admin", role=User.Role.ADMIN),
        "service": UserFactory(username="lms", role=User.Role.SERVICE),
        "other_teacher": other_teacher,
    }
    cohorts = {
        "cohort-a": CohortFactory(
            cohort_id="cohort-a", students=[students["s-a1"], students["s-a2"]], teachers=[teacher]
        ),
        "cohort-b": CohortFactory(
            cohort_id="cohort-b", students=[students["s-b1"]], teachers=[other_teacher]
        ),
    }
    return users, cohorts
