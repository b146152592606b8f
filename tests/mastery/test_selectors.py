"""The SQL of each rule agrees with its pure definition (`mastery.domain.overall`)."""

from datetime import UTC, datetime, timedelta

import pytest

from mastery import selectors
from mastery.domain.overall import at_risk, cohort_mean, overall_mastery
from mastery.models import Cohort, MasteryRecord, Student, User
from tests.factories import CohortFactory, UserFactory, event_document, ingest_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def cohort():
    """Four students: three weak topics, one strong topic, no topic yet, and one student
    without analytics consent."""
    at = datetime.now(UTC) - timedelta(hours=1)

    def quiz(student_id: str, topic: str, score: int) -> dict:
        return event_document("quiz.submitted", student_id=student_id, topic=topic,
                              occurred_at=at, score=score, max_score=10)  # fmt: skip

    exercises = [
        event_document("exercise.completed", student_id="s-one", topic="t.0", occurred_at=at,
                       exercise_id=f"ex-{n}")
        for n in range(10)
    ]  # fmt: skip
    ingest_all(
        [quiz("s-many", f"t.{n}", 2 + 3 * n) for n in range(3)]
        + [quiz("s-one", "t.0", 10), quiz("s-private", "t.0", 10), *exercises]
    )
    Student.objects.create(student_id="s-new")
    Student.objects.filter(student_id="s-private").update(analytics_consent=False)
    teacher = UserFactory(role=User.Role.TEACHER)
    return CohortFactory(cohort_id="c", students=list(Student.objects.all()), teachers=[teacher])


def scores_of(student_id: str) -> list[float]:
    return list(
        MasteryRecord.objects.filter(student__student_id=student_id).values_list(
            "mastery", flat=True
        )
    )


def test_sql_overall_mastery_and_at_risk_match_the_pure_definitions(cohort):
    admin = UserFactory(role=User.Role.ADMIN)
    rows = {s.student_id: s for s in selectors.students_with_mastery(admin)}
    for student_id, row in rows.items():
        expected = overall_mastery(scores_of(student_id))
        assert row.overall_mastery == pytest.approx(expected, abs=1e-4), student_id
        assert row.at_risk == at_risk(scores_of(student_id)), student_id
    assert rows["s-new"].overall_mastery is None
    assert rows["s-many"].at_risk
    assert not rows["s-one"].at_risk


def test_sql_cohort_mean_matches_the_pure_definition_over_consenting_students(cohort):
    teacher = cohort.teachers.get()
    [row] = selectors.cohort_list(teacher)
    consenting = Student.objects.filter(cohorts=cohort, analytics_consent=True)
    expected = cohort_mean(overall_mastery(scores_of(s.student_id)) for s in consenting)
    assert row.mean_mastery == pytest.approx(expected, abs=1e-4)
    everyone = cohort_mean(overall_mastery(scores_of(s.student_id)) for s in Student.objects.all())
    assert abs(expected - everyone) > 0.01  # the non-consenting student really is left out


def test_the_api_and_the_admin_agree_on_a_students_overall_mastery(cohort):
    admin = UserFactory(role=User.Role.ADMIN)
    listed = {s.student_id: s.overall_mastery for s in selectors.student_list(admin)}
    queried = selectors.mastery_for_student(Student.objects.get(student_id="s-many"))
    assert listed["s-many"] == pytest.approx(queried.overall_mastery, abs=1e-4)
    assert Cohort.objects.count() == 1
