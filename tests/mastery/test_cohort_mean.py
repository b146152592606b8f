from datetime import UTC, datetime, timedelta

import pytest

from mastery.domain.overall import cohort_mean, overall_mastery
from mastery.models import MasteryRecord, Student, User
from tests.factories import CohortFactory, UserFactory, event_document, ingest_all

pytestmark = pytest.mark.django_db


def test_cohort_mean_is_the_mean_of_students_overall_mastery(client_for):
    """A student with three topics weighs as much as one with a single topic (SPEC §2.1)."""
    at = datetime.now(UTC) - timedelta(hours=1)
    events = [
        event_document("quiz.submitted", student_id="s-many", topic=f"t.{n}", occurred_at=at,
                       score=2, max_score=10)
        for n in range(3)
    ] + [
        event_document("quiz.submitted", student_id="s-one", topic="t.0", occurred_at=at,
                       score=10, max_score=10)
    ]  # fmt: skip
    ingest_all(events)
    teacher = UserFactory(role=User.Role.TEACHER)
    CohortFactory(cohort_id="mixed", students=list(Student.objects.all()), teachers=[teacher])
    overall = {
        sid: overall_mastery(MasteryRecord.objects.filter(student__student_id=sid).values_list(
            "mastery", flat=True))
        for sid in ("s-many", "s-one")
    }  # fmt: skip
    [cohort] = client_for(teacher).get("/api/v1/cohorts/").json()["results"]
    expected = cohort_mean([overall["s-many"], overall["s-one"]])
    per_record = (3 * overall["s-many"] + overall["s-one"]) / 4
    assert cohort["mean_mastery"] == expected
    assert abs(expected - per_record) > 0.01
