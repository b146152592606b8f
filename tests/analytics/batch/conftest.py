"""Fixtures of the batch job tests: a small school whose students have mastery records,
built through the real ingestion pipeline, and one login per role."""

import pytest

from mastery.models import User
from tests.analytics.batch.support import School, learning_events
from tests.factories import CohortFactory, StudentFactory, TopicFactory, UserFactory, ingest_all


@pytest.fixture
def school(db) -> School:
    """Cohort A (s-a1, s-a2, taught by `teacher`), cohort B (s-b1, by `other_teacher`);
    the `student` login is s-a1. Every student has records in python.loops, s-a1 also in
    python.lists; s-none exists without any record."""
    students = {sid: StudentFactory(student_id=sid) for sid in ("s-a1", "s-a2", "s-b1", "s-none")}
    TopicFactory(slug="python.loops")
    TopicFactory(slug="python.lists")
    users = {
        "student": UserFactory(username="a1", role=User.Role.STUDENT, student=students["s-a1"]),
        "teacher": UserFactory(username="teacher-a", role=User.Role.TEACHER),
        "other_teacher": UserFactory(username="teacher-b", role=User.Role.TEACHER),
        "admin": UserFactory(username="admin", role=User.Role.ADMIN),
        "service": UserFactory(username="lms", role=User.Role.SERVICE),
    }
    CohortFactory(
        cohort_id="cohort-a",
        students=[students["s-a1"], students["s-a2"], students["s-none"]],
        teachers=[users["teacher"]],
    )
    CohortFactory(
        cohort_id="cohort-b", students=[students["s-b1"]], teachers=[users["other_teacher"]]
    )
    ingest_all(
        [
            *learning_events("s-a1", "python.loops", score=8),
            *learning_events("s-a1", "python.lists", score=4),
            *learning_events("s-a2", "python.loops", score=6),
            *learning_events("s-b1", "python.loops", score=9),
        ]
    )
    return School(students=students, users=users)
