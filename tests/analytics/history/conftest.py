"""Fixtures of the history and cohort tests: a student, and a small school with one login
per role whose students have records and a few days of snapshots."""

from datetime import timedelta

import pytest
from django.utils import timezone

from mastery.models import Student, User
from tests.analytics.history.support import put_record, put_snapshots
from tests.factories import CohortFactory, StudentFactory, UserFactory


@pytest.fixture
def student(db) -> Student:
    return StudentFactory(student_id="s-history")


@pytest.fixture
def school(db, pinned_clock):
    """Cohort 10a (a1..a4, taught by `teacher`), 10b (b1..b3, by `other_teacher`); the
    `student` login is a1. Each student has records and a few days of snapshots."""
    today = timezone.now().date()
    values = {"a1": 0.62, "a2": 0.70, "a3": 0.81, "a4": 0.55, "b1": 0.40, "b2": 0.52, "b3": 0.47}
    students = {sid: StudentFactory(student_id=sid) for sid in values}
    for sid, value in values.items():
        put_record(students[sid], "t.x", value, completion=value, quiz=value, quality=value)
        put_snapshots(
            students[sid],
            [("t.x", today - timedelta(days=5), value - 0.1), ("t.x", today, value)],
        )
    users = {
        "teacher": UserFactory(username="teacher", role=User.Role.TEACHER),
        "other_teacher": UserFactory(username="other-teacher", role=User.Role.TEACHER),
        "admin": UserFactory(username="admin", role=User.Role.ADMIN),
        "service": UserFactory(username="lms", role=User.Role.SERVICE),
        "student": UserFactory(username="a1", role=User.Role.STUDENT, student=students["a1"]),
    }
    CohortFactory(
        cohort_id="10a",
        name="Year 10 A",
        students=[students[s] for s in ("a1", "a2", "a3", "a4")],
        teachers=[users["teacher"]],
    )
    CohortFactory(
        cohort_id="10b",
        name="Year 10 B",
        students=[students[s] for s in ("b1", "b2", "b3")],
        teachers=[users["other_teacher"]],
    )
    return {"today": today, "students": students, "users": users, "values": values}
