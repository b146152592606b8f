"""A small school for the recommendation tests: the demo's prerequisite graph, two
cohorts, one login per role, and mastery state seeded through the real pipeline."""

from dataclasses import dataclass
from datetime import timedelta
from itertools import count

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from mastery.models import Cohort, Student, Topic, User
from tests.factories import CohortFactory, TopicFactory, UserFactory, event_document, ingest_all

BASICS, STRINGS, LOOPS, FUNCTIONS = (
    "python.basics",
    "python.strings",
    "python.loops",
    "python.functions",
)
# slug -> prerequisites, as in seed_demo (without classes)
GRAPH = {BASICS: (), STRINGS: (BASICS,), LOOPS: (BASICS,), FUNCTIONS: (LOOPS,)}
ROLES = ("student", "teacher", "admin", "service")
# Who may see whom (SPEC §3): the student itself, the teacher its cohort, admin and service all.
VISIBLE = {
    "student": {"s-a1"},
    "teacher": {"s-a1", "s-a2"},
    "admin": {"s-a1", "s-a2", "s-b1"},
    "service": {"s-a1", "s-a2", "s-b1"},
}

_ids = count(1)


def event(student_id: str, topic: str, event_type: str, days_ago: int = 0, **payload) -> dict:
    """One valid event, `days_ago` days and an hour before now."""
    return event_document(
        event_type,
        student_id=student_id,
        topic=topic,
        occurred_at=timezone.now() - timedelta(days=days_ago, hours=1),
        event_id=f"rec-test-{next(_ids)}",
        payload=payload or None,
    )


def work(
    student_id: str,
    topic: str,
    *,
    exercises: int = 0,
    quizzes: tuple[float, ...] = (),
    reviews: tuple[float, ...] = (),
    days: int = 1,
) -> list[dict]:
    """`exercises` distinct exercises, quizzes and reviews at the given ratios, spread over
    the last `days` days (one event of some kind on each)."""
    events = [
        event(student_id, topic, "exercise.completed", n % days, exercise_id=f"ex{n}")
        for n in range(exercises)
    ]
    events += [
        event(student_id, topic, "quiz.submitted", n % days, quiz_id=f"q{n}", score=r, max_score=1)
        for n, r in enumerate(quizzes)
    ]
    events += [
        event(student_id, topic, "code.reviewed", n % days, submission_id=f"r{n}", quality_score=r)
        for n, r in enumerate(reviews)
    ]
    events += [
        event(student_id, topic, "session.completed", day, duration_minutes=20)
        for day in range(days)
    ]
    return events


def seed(events: list[dict]) -> None:
    ingest_all(events)


def mastered(student_id: str, topic: str) -> list[dict]:
    return work(student_id, topic, exercises=10, quizzes=(1.0,) * 5, reviews=(1.0,) * 5, days=12)


@dataclass
class School:
    students: dict[str, Student]
    cohorts: dict[str, Cohort]
    users: dict[str, User]
    topics: dict[str, Topic]

    def client(self, role: str, client_for) -> APIClient:
        return client_for(self.users[role])


@pytest.fixture
def school(db, pinned_clock) -> School:
    """s-a1 has mastered basics and is weak in loops (4 of 10 exercises, quizzes at 0.5,
    reviews at 0.4, two active days); s-a2 and s-b1 have done a little basics. Cohort A
    (s-a1, s-a2) is taught by `teacher`, cohort B (s-b1) by `other_teacher`."""
    topics = {}
    for slug, prerequisites in GRAPH.items():
        topics[slug] = TopicFactory(slug=slug, name=slug.split(".")[1].title(), exercises_total=10)
        topics[slug].prerequisites.set([topics[p] for p in prerequisites])
    seed(
        mastered("s-a1", BASICS)
        + work("s-a1", LOOPS, exercises=4, quizzes=(0.5,) * 5, reviews=(0.4,) * 5, days=2)
        + work("s-a2", BASICS, exercises=2, quizzes=(0.6,), days=1)
        + work("s-b1", BASICS, exercises=3, days=1)
    )
    students = {s.student_id: s for s in Student.objects.all()}
    teacher = UserFactory(username="teacher-a", role=User.Role.TEACHER)
    other_teacher = UserFactory(username="teacher-b", role=User.Role.TEACHER)
    users = {
        "student": UserFactory(
            username="student-a1", role=User.Role.STUDENT, student=students["s-a1"]
        ),
        "student_b": UserFactory(
            username="student-b1", role=User.Role.STUDENT, student=students["s-b1"]
        ),
        "teacher": teacher,
        "other_teacher": other_teacher,
        "admin": UserFactory(username="admin", role=User.Role.ADMIN),
        "service": UserFactory(username="lms", role=User.Role.SERVICE),
    }
    cohorts = {
        "cohort-a": CohortFactory(
            cohort_id="cohort-a", students=[students["s-a1"], students["s-a2"]], teachers=[teacher]
        ),
        "cohort-b": CohortFactory(
            cohort_id="cohort-b", students=[students["s-b1"]], teachers=[other_teacher]
        ),
    }
    return School(students=students, cohorts=cohorts, users=users, topics=topics)
