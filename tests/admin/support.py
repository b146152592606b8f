"""A small school for the admin tests, with its mastery state seeded through the pipeline.

Cohort A (s-a1 weak in loops so at risk, s-a2 strong) is taught by `teacher`; cohort B
(s-b1) by `other_teacher`. Events run over the last days, so the history has points.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from mastery.models import Cohort, Student, Topic, User
from tests.factories import CohortFactory, TopicFactory, UserFactory, event_document, ingest_all

LOOPS = "python.loops"
BASICS = "python.basics"


def learning_event(
    student_id: str, topic: str, event_type: str, payload: dict, *, days_ago: float = 0
) -> dict:
    """One valid event document, `days_ago` days (and a minute) before now."""
    return event_document(
        event_type,
        student_id=student_id,
        topic=topic,
        occurred_at=timezone.now() - timedelta(days=days_ago, minutes=1),
        event_id=f"admin-{uuid.uuid4().hex}",
        payload=payload,
    )


def progress_events(
    student_id: str, topic: str, *, exercises: int, quiz: float, quality: float, days: int = 5
) -> list[dict]:
    """A student's work on a topic spread over the last `days` days: `exercises` distinct
    exercises, quizzes scoring `quiz`, reviews scoring `quality`, one session a day."""
    events = []
    for day in range(days):
        days_ago = days - 1 - day
        events.append(
            learning_event(
                student_id, topic, "session.completed", {"duration_minutes": 20}, days_ago=days_ago
            )
        )
        events.append(
            learning_event(
                student_id,
                topic,
                "quiz.submitted",
                {"quiz_id": f"q{day}", "score": round(quiz * 10, 2), "max_score": 10},
                days_ago=days_ago,
            )
        )
        events.append(
            learning_event(
                student_id,
                topic,
                "code.reviewed",
                {"submission_id": f"r{day}", "quality_score": quality},
                days_ago=days_ago,
            )
        )
    for n in range(exercises):
        events.append(
            learning_event(
                student_id,
                topic,
                "exercise.completed",
                {"exercise_id": f"ex{n}"},
                days_ago=(n % days),
            )
        )
    return events


def seed(events: list[dict]) -> None:
    """Apply events through the real ingestion pipeline; every one must be accepted."""
    ingest_all(events)


def seed_strong(student_id: str, topic: str = LOOPS) -> None:
    seed(progress_events(student_id, topic, exercises=10, quiz=1.0, quality=0.95))


def seed_weak(student_id: str, topic: str = LOOPS) -> None:
    seed(progress_events(student_id, topic, exercises=1, quiz=0.2, quality=0.3))


@dataclass
class School:
    students: dict[str, Student]
    cohorts: dict[str, Cohort]
    users: dict[str, User]
    topics: dict[str, Topic]


def build_school() -> School:
    TopicFactory(slug=BASICS, name="Python basics", exercises_total=10)
    TopicFactory(slug=LOOPS, name="Loops", exercises_total=10)
    seed_weak("s-a1", LOOPS)
    seed_strong("s-a1", BASICS)
    seed_strong("s-a2", LOOPS)
    seed_strong("s-a2", BASICS)
    seed_strong("s-b1", LOOPS)
    students = {s.student_id: s for s in Student.objects.all()}
    users = {
        "teacher": UserFactory(username="teacher-a", role=User.Role.TEACHER),
        "other_teacher": UserFactory(username="teacher-b", role=User.Role.TEACHER),
        "admin": UserFactory(username="admin", role=User.Role.ADMIN),
        "service": UserFactory(username="lms", role=User.Role.SERVICE),
        "student": UserFactory(
            username="student-a1", role=User.Role.STUDENT, student=students["s-a1"]
        ),
    }
    cohorts = {
        "cohort-a": CohortFactory(
            cohort_id="cohort-a",
            name="Year 10 A",
            students=[students["s-a1"], students["s-a2"]],
            teachers=[users["teacher"]],
        ),
        "cohort-b": CohortFactory(
            cohort_id="cohort-b",
            name="Year 10 B",
            students=[students["s-b1"]],
            teachers=[users["other_teacher"]],
        ),
    }
    topics = {t.slug: t for t in Topic.objects.all()}
    return School(students=students, cohorts=cohorts, users=users, topics=topics)
