"""Fixtures of the batch job tests: a small school whose students have mastery records,
built through the real ingestion pipeline, and one login per role."""

import pytest

from tests.analytics.batch.support import School, learning_events
from tests.factories import StudentFactory, TopicFactory, ingest_all, two_cohort_school


@pytest.fixture
def school(db) -> School:
    """Cohort A (s-a1, s-a2, taught by `teacher`), cohort B (s-b1, by `other_teacher`);
    the `student` login is s-a1. Every student has records in python.loops, s-a1 also in
    python.lists; s-none exists without any record."""
    students = {sid: StudentFactory(student_id=sid) for sid in ("s-a1", "s-a2", "s-b1", "s-none")}
    TopicFactory(slug="python.loops")
    TopicFactory(slug="python.lists")
    users, cohorts = two_cohort_school(students)
    cohorts["cohort-a"].students.add(students["s-none"])
    ingest_all(
        [
            *learning_events("s-a1", "python.loops", score=8),
            *learning_events("s-a1", "python.lists", score=4),
            *learning_events("s-a2", "python.loops", score=6),
            *learning_events("s-b1", "python.loops", score=9),
        ]
    )
    return School(students=students, users=users)
