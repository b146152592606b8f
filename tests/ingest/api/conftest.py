"""Logins per role and valid event documents for the events API tests."""

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from mastery.models import User
from tests.factories import CohortFactory, StudentFactory, UserFactory

_event_ids = count(1)

DEFAULT_PAYLOADS = {
    "exercise.completed": {"exercise_id": "ex-1"},
    "quiz.submitted": {"quiz_id": "q-1", "score": 8, "max_score": 10},
    "code.reviewed": {"submission_id": "sub-1", "quality_score": 0.75},
    "session.completed": {"duration_minutes": 30},
}


@pytest.fixture
def make_event():
    """`make_event(**overrides)`: a valid quiz event an hour old, with a fresh event_id."""

    def make(event_type: str = "quiz.submitted", **overrides) -> dict:
        document = {
            "event_id": f"http-{next(_event_ids)}",
            "event_type": event_type,
            "student_id": "s-http",
            "topic": "python.loops",
            "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "payload": dict(DEFAULT_PAYLOADS.get(event_type, {})),
        }
        document.update(overrides)
        return document

    return make


@pytest.fixture
def users(db) -> dict[str, User]:
    """One login per role; the student and the teacher share cohort-a."""
    student = StudentFactory(student_id="s-a1")
    users = {
        "student": UserFactory(username="student-a1", role=User.Role.STUDENT, student=student),
        "teacher": UserFactory(username="teacher-a", role=User.Role.TEACHER),
        "admin": UserFactory(username="admin", role=User.Role.ADMIN),
        "service": UserFactory(username="lms", role=User.Role.SERVICE),
    }
    CohortFactory(cohort_id="cohort-a", students=[student], teachers=[users["teacher"]])
    return users


@pytest.fixture
def service_client(users, client_for):
    return client_for(users["service"])
