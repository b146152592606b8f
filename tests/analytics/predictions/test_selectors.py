"""The set-based read of snapshots the forecasts and the back-test use, held to the daily
series of SPEC §3.1 (`mastery.selectors.student_daily_series`, over `carry_forward`)."""

import random
from datetime import date, timedelta

import pytest

from analytics.domain.forecast import series_value
from analytics.selectors.predictions import student_histories, subject_pairs
from mastery.models import Snapshot, Student, Topic
from mastery.selectors import student_daily_series
from tests.factories import StudentFactory, TopicFactory

pytestmark = pytest.mark.django_db

END = date(2026, 6, 30)
TOPICS = ("t.alpha", "t.beta", "t.gamma")


def random_history(seed: int) -> dict[str, Student]:
    """Three students with snapshots on random days of 90, in random topics; the third has
    only snapshots older than the window below."""
    rng = random.Random(seed)
    topics = [TopicFactory(slug=slug, exercises_total=rng.randint(5, 20)) for slug in TOPICS]
    students = {sid: StudentFactory(student_id=sid) for sid in ("r-1", "r-2", "r-3")}
    rows = []
    for sid, student in students.items():
        for topic in topics:
            if rng.random() < 0.25:
                continue
            newest = 45 if sid == "r-3" else 0
            for days_ago in sorted(rng.sample(range(newest, 90), rng.randint(1, 12))):
                rows.append(
                    Snapshot(
                        student=student,
                        topic=topic,
                        day=END - timedelta(days=days_ago),
                        completion=0.5,
                        quiz=0.5,
                        quality=0.5,
                        consistency=0.5,
                        mastery=round(rng.random(), 4),
                        exercises_done=rng.randint(0, 5),
                    )
                )
    Snapshot.objects.bulk_create(rows)
    return students


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("window", [None, 30])
def test_the_read_gives_every_day_the_value_of_the_daily_series(seed, window):
    students = random_history(seed)
    start = END - timedelta(days=(window or 90) - 1)
    histories = dict(
        student_histories(Student.objects.all(), start=start if window else None, end=END)
    )
    for student in students.values():
        pairs = histories.get(student.pk, [])
        series = student_daily_series(student, start=start, end=END)
        assert {p.topic for p in pairs} == set(series.topics)
        for index, day in enumerate(series.days):
            assert series_value(pairs, day) == series.overall[index], (student, day)
            for p in pairs:
                assert series_value([p], day) == series.topics[p.topic][index]


def test_each_pair_knows_its_topics_size_and_a_topic_narrows_the_read():
    students = random_history(7)
    histories = dict(student_histories([s.pk for s in students.values()], end=END))
    sizes = {t.slug: t.exercises_total for t in Topic.objects.all()}
    for pairs in histories.values():
        assert [p.topic for p in pairs] == sorted(p.topic for p in pairs)
        assert all(p.exercises_total == sizes[p.topic] for p in pairs)
    beta = Topic.objects.get(slug="t.beta")
    narrowed = dict(student_histories(Student.objects.all(), end=END, topic=beta))
    assert {p.topic for pairs in narrowed.values() for p in pairs} <= {"t.beta"}


def test_a_student_with_only_snapshots_before_the_window_still_carries_them_in():
    students = random_history(3)
    r3 = students["r-3"]
    pairs = subject_pairs(r3, topic=None, today=END - timedelta(days=10))
    last = Snapshot.objects.filter(student=r3).order_by("-day").first()
    assert pairs
    assert {len(p.snapshots) for p in pairs} == {1}  # one carried value per pair
    assert max(p.snapshots[0].day for p in pairs) == last.day


def test_an_unknown_student_has_no_history():
    assert list(student_histories([987654321], end=END)) == []
