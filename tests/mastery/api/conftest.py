"""A small school for the mastery API tests: two cohorts, one login per role."""

import pytest

from mastery.models import User
from tests.factories import CohortFactory, StudentFactory, TopicFactory, UserFactory
from tests.mastery.api.support import World


@pytest.fixture
def world(db) -> World:
    """Cohort A (s-a1, s-a2, taught by `teacher`), cohort B (s-b1, taught by someone else).

    The `student` login is s-a1.
    """
    students = {sid: StudentFactory(student_id=sid) for sid in ("s-a1", "s-a2", "s-b1")}
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
            cohort_id="cohort-a",
            students=[students["s-a1"], students["s-a2"]],
            teachers=[teacher],
        ),
        "cohort-b": CohortFactory(
            cohort_id="cohort-b", students=[students["s-b1"]], teachers=[other_teacher]
        ),
    }
    topic = TopicFactory(slug="python.loops")
    return World(students=students, cohorts=cohorts, users=users, topic=topic)
