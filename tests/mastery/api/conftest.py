"""A small school for the mastery API tests: two cohorts, one login per role."""

import pytest

from tests.factories import (
    StudentFactory,
    TopicFactory,
    two_cohort_school,
)
from tests.mastery.api.support import World


@pytest.fixture
def world(db) -> World:
    """Cohort A (s-a1, s-a2, taught by `teacher`), cohort B (s-b1, taught by someone else).

    The `student` login is s-a1.
    """
    students = {sid: StudentFactory(student_id=sid) for sid in ("s-a1", "s-a2", "s-b1")}
    users, cohorts = two_cohort_school(students)
    topic = TopicFactory(slug="python.loops")
    return World(students=students, cohorts=cohorts, users=users, topic=topic)
