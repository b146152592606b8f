"""Cohort figures from PostgreSQL: the mean is the one cohort mean of the project
(`cohort_mean_mastery` in SQL, `cohort_mean` in Python), to the bit, and the rest equal an
independent computation over the same students."""

import statistics

import numpy as np
import pytest

from analytics.domain.statistics import Sample
from analytics.selectors.cohorts import cohort_figures, cohorts_with_sizes
from mastery import selectors
from mastery.domain.overall import cohort_mean, overall_mastery
from mastery.models import MasteryRecord, Student, Topic, User
from tests.analytics.history.support import put_record
from tests.factories import CohortFactory, StudentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cohorts():
    """Cohort a: five students, one with three topics, one without consent, one with no
    records; cohort b: three students, one of them also in a."""
    a = [StudentFactory(student_id=f"a-{n}") for n in range(5)]
    b = [StudentFactory(student_id=f"b-{n}") for n in range(2)] + [a[0]]
    put_record(a[0], "t.x", 0.9, completion=1.0, quiz=0.8, quality=0.9, consistency=0.5)
    put_record(a[0], "t.y", 0.3, completion=0.2, quiz=0.4, quality=0.3, consistency=0.2)
    put_record(a[0], "t.z", 0.45, completion=0.5, quiz=0.4, quality=0.4, consistency=0.5)
    put_record(a[1], "t.x", 0.61, completion=0.6, quiz=0.7, quality=0.5, consistency=0.4)
    put_record(a[2], "t.x", 0.123, completion=0.1, quiz=0.1, quality=0.2, consistency=0.1)
    put_record(a[3], "t.x", 0.99, completion=1.0, quiz=1.0, quality=1.0, consistency=0.9)
    Student.objects.filter(pk=a[3].pk).update(analytics_consent=False)
    put_record(b[0], "t.x", 0.5, completion=0.5, quiz=0.5, quality=0.5, consistency=0.5)
    put_record(b[1], "t.y", 0.7, completion=0.7, quiz=0.7, quality=0.7, consistency=0.7)
    teacher = UserFactory(role=User.Role.TEACHER)
    return (
        CohortFactory(cohort_id="a", students=a, teachers=[teacher]),
        CohortFactory(cohort_id="b", students=b, teachers=[teacher]),
    )


def values_of(cohort, topic: Topic | None = None) -> list[float]:
    """Each consenting student's overall mastery (or the topic's), by the pure rule."""
    values = []
    for student in cohort.students.filter(analytics_consent=True):
        records = MasteryRecord.objects.filter(student=student)
        if topic is not None:
            records = records.filter(topic=topic)
        overall = overall_mastery(records.values_list("mastery", flat=True))
        if overall is not None:
            values.append(overall)
    return values


def test_the_mean_is_the_projects_cohort_mean(cohorts):
    a, b = cohorts
    figures = cohort_figures([a, b])
    teacher = a.teachers.get()
    sql_means = {c.cohort_id: c.mean_mastery for c in selectors.cohort_list(teacher)}
    listed = {c.cohort_id: c.mean_mastery for c in cohorts_with_sizes(teacher)}
    for cohort, f in zip(cohorts, figures, strict=True):
        expected = cohort_mean(values_of(cohort))
        assert f.mean == expected == sql_means[cohort.cohort_id] == listed[cohort.cohort_id]
    assert (figures[0].mean, figures[1].mean) == (0.4277, 0.5833)  # by hand, 4 decimals


def test_the_tests_take_the_unrounded_mean(cohorts):
    a, b = cohorts
    for cohort, f in zip(cohorts, cohort_figures([a, b]), strict=True):
        assert f.sample_mean == pytest.approx(statistics.fmean(values_of(cohort)), abs=1e-15)
        assert f.sample() == Sample(f.n, f.sample_mean, f.std)
        assert f.sample_mean != f.mean  # 1.283 / 3 and 1.75 / 3: the rounding shows


def test_a_tie_between_students_gives_the_same_mean_in_every_view():
    students = [StudentFactory(student_id=sid) for sid in ("low", "high")]
    put_record(students[0], "t.x", 0.6999)
    put_record(students[1], "t.x", 0.7)
    teacher = UserFactory(role=User.Role.TEACHER)
    tie = CohortFactory(cohort_id="tie", students=students, teachers=[teacher])
    [f] = cohort_figures([tie])
    [listed] = cohorts_with_sizes(teacher)
    [row] = selectors.cohort_list(teacher)
    assert f.mean == listed.mean_mastery == row.mean_mastery == cohort_mean([0.6999, 0.7]) == 0.7


def test_figures_equal_an_independent_computation(cohorts):
    a, b = cohorts
    fa, fb = cohort_figures([a, b])
    values = values_of(a)
    assert fa.n == len(values) == 3  # no consent and no records leave two out
    assert fa.median == pytest.approx(statistics.median(values))
    assert fa.std == pytest.approx(statistics.stdev(values))
    # percentile_cont interpolates linearly, as numpy's default percentile does.
    p25, p75, p90 = np.percentile(values, [25, 75, 90])
    assert (fa.p25, fa.p75, fa.p90) == pytest.approx((p25, p75, p90))
    assert (fa.min, fa.max) == (min(values), max(values))
    # a-0 counts in b too (a student may be in several cohorts).
    assert fb.n == 3
    assert fb.mean == cohort_mean(values_of(b))


def test_component_means_are_per_student_then_over_students(cohorts):
    a, _ = cohorts
    [fa] = cohort_figures([a])
    completion = [(1.0 + 0.2 + 0.5) / 3, 0.6, 0.1]  # a-0 over its three topics, a-1, a-2
    quiz = [(0.8 + 0.4 + 0.4) / 3, 0.7, 0.1]
    assert fa.components["completion"] == pytest.approx(statistics.fmean(completion))
    assert fa.components["quiz"] == pytest.approx(statistics.fmean(quiz))


def test_a_topic_narrows_each_student_to_its_record_there(cohorts):
    a, b = cohorts
    topic = Topic.objects.get(slug="t.y")
    fa, fb = cohort_figures([a, b], topic=topic)
    assert (fa.n, fa.mean) == (1, 0.3)
    assert fa.std is None  # one student: no spread
    assert fb.n == 2
    assert fb.mean == cohort_mean(values_of(b, topic)) == 0.5  # (0.7 + 0.3) / 2


def test_an_empty_cohort_has_n_zero_and_no_figures(cohorts):
    empty = CohortFactory(cohort_id="empty")
    [f] = cohort_figures([empty])
    assert f.n == 0
    assert f.mean is f.median is f.std is f.p25 is f.p90 is None
    assert f.components == dict.fromkeys(("completion", "quiz", "quality", "consistency"))
    assert f.histogram == [0] * 10


def test_the_histogram_counts_students_per_tenth(cohorts):
    a, _ = cohorts
    [fa] = cohort_figures([a])
    # a-0: mean(0.9, 0.3, 0.45) = 0.55, a-1: 0.61, a-2: 0.123
    assert fa.histogram == [0, 1, 0, 0, 0, 1, 1, 0, 0, 0]
    top = CohortFactory(cohort_id="top", students=[StudentFactory(student_id="perfect")])
    put_record(Student.objects.get(student_id="perfect"), "t.x", 1.0)
    [ft] = cohort_figures([top])
    assert ft.histogram[-1] == 1  # 1.0 falls in the last, closed bin


def test_withdrawing_consent_leaves_the_next_figures(cohorts):
    a, _ = cohorts
    [before] = cohort_figures([a])
    Student.objects.filter(student_id="a-1").update(analytics_consent=False)
    [after] = cohort_figures([a])
    assert after.n == before.n - 1
    assert after.mean == cohort_mean(values_of(a))


def test_the_list_gives_size_consenting_size_and_the_cohort_mean(cohorts):
    a, _ = cohorts
    rows = {c.cohort_id: c for c in cohorts_with_sizes(a.teachers.get())}
    assert (rows["a"].size, rows["a"].consenting_size) == (5, 4)
    assert rows["a"].mean_mastery == cohort_mean(values_of(a))
    outsider = UserFactory(role=User.Role.TEACHER)
    assert list(cohorts_with_sizes(outsider)) == []


def test_no_cohorts_give_no_figures(db):
    assert cohort_figures([]) == []
