"""Logins per role and valid event documents for the events API tests."""

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from mastery.models import User
from tests.factories import CohortFactory, StudentFactory, UserFactory, event_document

_event_ids = count(1)


@pytest.fixture
def make_event():
    """`make_event(**overrides)`: a valid quiz event an hour old, with a fresh event_id."""

    def make(event_type: str = "quiz.submitted", **overrides) -> dict:
        document = event_document(
            event_type,
            student_id="s-http",
            occurred_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            event_id=f"http-{next(_event_ids)}",
        )
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
