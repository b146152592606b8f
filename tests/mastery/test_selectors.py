"""The SQL of each rule is its pure definition (`mastery.domain.overall`), to the bit."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mastery import selectors
from mastery.domain.overall import at_risk, cohort_mean, overall_mastery, score_mean
from mastery.models import Cohort, MasteryRecord, Student, Topic, User
from tests.factories import CohortFactory, UserFactory, event_document, ingest_all

pytestmark = pytest.mark.django_db

stored_scores = st.integers(0, 10_000).map(lambda n: n / 10_000)
any_scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


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


def put_record(student: Student, slug: str, mastery: float) -> MasteryRecord:
    topic, _ = Topic.objects.get_or_create(slug=slug)
    return MasteryRecord.objects.create(
        student=student, topic=topic, mastery=mastery, completion=0.0, quiz=0.0, quality=0.0,
        consistency=0.0, policy_hash="test", updated_at=timezone.now(),
    )  # fmt: skip


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
        assert row.overall_mastery == expected, student_id
        assert row.at_risk == at_risk(scores_of(student_id)), student_id
    assert rows["s-new"].overall_mastery is None
    assert rows["s-many"].at_risk
    assert not rows["s-one"].at_risk


def test_sql_cohort_mean_matches_the_pure_definition_over_consenting_students(cohort):
    teacher = cohort.teachers.get()
    [row] = selectors.cohort_list(teacher)
    consenting = Student.objects.filter(cohorts=cohort, analytics_consent=True)
    expected = cohort_mean(overall_mastery(scores_of(s.student_id)) for s in consenting)
    assert row.mean_mastery == expected
    everyone = cohort_mean(overall_mastery(scores_of(s.student_id)) for s in Student.objects.all())
    assert abs(expected - everyone) > 0.01  # the non-consenting student really is left out


def test_the_api_and_the_admin_agree_on_a_students_overall_mastery(cohort):
    admin = UserFactory(role=User.Role.ADMIN)
    listed = {s.student_id: s.overall_mastery for s in selectors.student_list(admin)}
    queried = selectors.mastery_for_student(Student.objects.get(student_id="s-many"))
    assert listed["s-many"] == queried.overall_mastery
    assert Cohort.objects.count() == 1


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.one_of(stored_scores, any_scores), min_size=1, max_size=12))
def test_postgresql_computes_score_mean_to_the_bit(values):
    """`score_mean_sql` (the template of `ScoreMean`) on the real server, ties included."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {selectors.score_mean_sql('v')} FROM unnest(%s::float8[]) AS v", [values]
        )
        [(sql_mean,)] = cursor.fetchall()
    assert sql_mean == score_mean(values)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(stored_scores, min_size=1, max_size=12))
def test_on_stored_scores_it_is_the_exact_numeric_mean(values):
    """On the server: for 4-decimal scores, the rule is `round(avg(x::numeric), 4)`, the
    exact mean of each value's 15-digit decimal (`float8::numeric`), half away from zero."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {selectors.score_mean_sql('v')}, round(avg(v::numeric), 4)::float8"
            " FROM unnest(%s::float8[]) AS v",
            [values],
        )
        [(ours, numeric)] = cursor.fetchall()
    assert ours == numeric


@pytest.mark.parametrize(
    ("records", "expected"),
    [([0.4999, 0.5, 0.5], 0.5), ([0.6999, 0.7], 0.7), ([0.5, 0.5001], 0.5001), ([0.3], 0.3)],
)
def test_sql_overall_mastery_rounds_as_the_pure_rule_at_a_bound_and_a_tie(records, expected):
    student = Student.objects.create(student_id="s-edge")
    for n, mastery in enumerate(records):
        put_record(student, f"t.{n}", mastery)
    [row] = Student.objects.annotate(overall=selectors.student_overall_mastery())
    assert row.overall == overall_mastery(records) == expected


def test_sql_cohort_mean_rounds_a_tie_between_students_as_the_pure_rule():
    students = []
    for student_id, mastery in (("s-low", 0.6999), ("s-high", 0.7)):
        student = Student.objects.create(student_id=student_id)
        put_record(student, "t.x", mastery)
        students.append(student)
    CohortFactory(cohort_id="tie", students=students)
    [row] = Cohort.objects.annotate(mean=selectors.cohort_mean_mastery())
    assert row.mean == cohort_mean([0.6999, 0.7]) == 0.7
