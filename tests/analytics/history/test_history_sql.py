"""The history computed in PostgreSQL is the daily series of SPEC §3.1 (held to the pure
`carry_forward`, through `mastery.selectors.student_daily_series`, value for value on
random snapshot sets), and its periods and summary are the documented aggregates of
those days."""

import statistics
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.selectors.history import student_history
from mastery.models import Snapshot, Topic
from mastery.selectors import student_daily_series
from tests.analytics.history.support import put_snapshots
from tests.factories import StudentFactory

pytestmark = pytest.mark.django_db

# The selector takes its window as arguments: fixed dates keep every run the same.
BASE = date(2026, 3, 2)  # a Monday
TOPICS = ("t.a", "t.b", "t.c")

snapshot_sets = st.lists(
    st.tuples(
        st.sampled_from(TOPICS),
        st.integers(-25, 45).map(lambda n: BASE + timedelta(days=n)),
        # Stored scores have 4 decimals; near 0.7, two topics' mean is often a tie.
        st.one_of(
            st.integers(0, 10_000).map(lambda n: n / 10_000),
            st.integers(6990, 7010).map(lambda n: n / 10_000),
        ),
    ),
    max_size=40,
    unique_by=lambda row: (row[0], row[1]),
)


def least_squares_slope(values: list[float]) -> float:
    """The slope of the least-squares line through (i, values[i]), written out."""
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    sxy = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    sxx = sum((i - mean_x) ** 2 for i in range(n))
    return sxy / sxx


def python_summary(days: list[date], values: list[float | None]) -> dict:
    """The summary read straight from its definition, over the days that have a value."""
    present = [(day, v) for day, v in zip(days, values, strict=True) if v is not None]
    ys = [v for _, v in present]
    if not ys:
        return dict.fromkeys(("mean", "median", "std", "min", "max", "slope", "volatility"))
    xs = [(day - days[0]).days for day, _ in present]
    changes = [
        values[i] - values[i - 1]
        for i in range(1, len(values))
        if values[i] is not None and values[i - 1] is not None
    ]
    slope = None
    if len(ys) > 1:
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mean_x) ** 2 for x in xs
        )
    return {
        "mean": statistics.fmean(ys),
        "median": statistics.median(ys),
        "std": statistics.stdev(ys) if len(ys) > 1 else None,
        "min": min(ys),
        "max": max(ys),
        "slope": slope,
        "volatility": statistics.stdev(changes) if len(changes) > 1 else None,
    }


def assert_close(actual, expected, tolerance):
    if expected is None:
        assert actual is None
    else:
        assert actual == pytest.approx(expected, abs=tolerance)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=snapshot_sets, offset=st.integers(-5, 30), length=st.integers(0, 40))
def test_the_sql_daily_series_is_carry_forward(student, rows, offset, length):
    Snapshot.objects.filter(student=student).delete()
    put_snapshots(student, rows)
    start = BASE + timedelta(days=offset)
    end = start + timedelta(days=length)

    history = student_history(student, start=start, end=end, granularity="daily")
    pure = student_daily_series(student, start=start, end=end)

    assert [p.period_start for p in history.series] == pure.days
    for period, value in zip(history.series, pure.overall, strict=True):
        if value is None:
            assert (period.samples, period.mean, period.min, period.max) == (0, None, None, None)
        else:
            # One definition of the overall value (`score_mean`), ties included: equal.
            assert period.samples == 1
            assert period.mean == period.min == period.max == value
    # The summary's aggregates are sums in floating point, PostgreSQL's and Python's.
    expected = python_summary(pure.days, pure.overall)
    summary = history.summary
    assert_close(summary.mean, expected["mean"], 1e-12)
    assert_close(summary.median, expected["median"], 1e-12)  # may average two values
    assert (summary.min, summary.max) == (expected["min"], expected["max"])
    assert_close(summary.std, expected["std"], 1e-12)
    assert_close(summary.trend_slope, expected["slope"], 1e-12)
    assert_close(summary.volatility, expected["volatility"], 1e-12)

    for slug, values in pure.topics.items():
        topic = Topic.objects.get(slug=slug)
        one = student_history(student, start=start, end=end, granularity="daily", topic=topic)
        assert [p.mean for p in one.series] == values  # no rounding in play: exact


def test_a_value_carries_across_days_without_snapshots_and_into_the_window(student):
    put_snapshots(
        student,
        [("t.a", BASE - timedelta(days=10), 0.3), ("t.a", BASE + timedelta(days=3), 0.6)],
    )
    history = student_history(
        student, start=BASE, end=BASE + timedelta(days=5), granularity="daily"
    )
    assert [p.mean for p in history.series] == [0.3, 0.3, 0.3, 0.6, 0.6, 0.6]


def test_no_value_before_a_topics_first_snapshot_and_the_overall_mean_of_the_others(student):
    put_snapshots(
        student,
        [("t.a", BASE, 0.2), ("t.b", BASE + timedelta(days=2), 0.8)],
    )
    history = student_history(
        student, start=BASE - timedelta(days=1), end=BASE + timedelta(days=3), granularity="daily"
    )
    assert [p.mean for p in history.series] == [None, 0.2, 0.2, 0.5, 0.5]
    assert [p.samples for p in history.series] == [0, 1, 1, 1, 1]


def test_a_day_whose_topics_mean_is_a_tie_rounds_as_overall_mastery(student):
    day_two = BASE + timedelta(days=1)
    put_snapshots(
        student,
        [
            ("t.a", BASE, 0.6999),
            ("t.b", BASE, 0.7),
            ("t.a", day_two, 0.5),
            ("t.b", day_two, 0.5001),
        ],
    )
    history = student_history(student, start=BASE, end=day_two, granularity="daily")
    pure = student_daily_series(student, start=BASE, end=day_two)
    # Means 0.69995 and 0.50005, whose doubles lie below the tie: half up on the decimal.
    assert [p.mean for p in history.series] == pure.overall == [0.7, 0.5001]


def test_another_students_snapshots_are_not_read(student):
    put_snapshots(StudentFactory(student_id="s-other"), [("t.a", BASE, 0.9)])
    put_snapshots(student, [("t.a", BASE, 0.1)])
    history = student_history(student, start=BASE, end=BASE, granularity="daily")
    assert history.series[0].mean == 0.1


def test_weekly_periods_are_iso_weeks_starting_on_monday(student):
    wednesday = BASE + timedelta(days=2)
    put_snapshots(student, [("t.a", wednesday, 0.4), ("t.a", BASE + timedelta(days=9), 0.7)])
    history = student_history(
        student, start=wednesday, end=BASE + timedelta(days=15), granularity="weekly"
    )
    starts = [p.period_start for p in history.series]
    assert starts == [BASE, BASE + timedelta(days=7), BASE + timedelta(days=14)]
    assert all(day.weekday() == 0 for day in starts)
    first, second, third = history.series
    assert first.samples == 5  # Wednesday to Sunday: the window's days of that week only
    assert first.mean == pytest.approx(0.4)
    # Week two: Monday 0.4, Tuesday (day 8) 0.4, then 0.7 from Wednesday (day 9) on.
    assert second.samples == 7
    assert second.mean == pytest.approx((2 * 0.4 + 5 * 0.7) / 7)
    assert (second.min, second.max) == (0.4, 0.7)
    assert third.samples == 2


def test_the_monthly_mean_is_over_exactly_the_days_that_have_a_value(student):
    june = date(2026, 6, 1)
    put_snapshots(student, [("t.a", date(2026, 6, 10), 0.4), ("t.a", date(2026, 6, 20), 0.8)])
    history = student_history(
        student, start=date(2026, 5, 25), end=date(2026, 7, 3), granularity="monthly"
    )
    may, june_period, july = history.series
    assert may.period_start == date(2026, 5, 1)
    assert (may.samples, may.mean) == (0, None)
    assert june_period.period_start == june
    # June 10-19 at 0.4 (10 days), June 20-30 at 0.8 (11 days); June 1-9 have no value.
    assert june_period.samples == 21
    assert june_period.mean == pytest.approx((10 * 0.4 + 11 * 0.8) / 21)
    assert july.samples == 3
    assert july.mean == pytest.approx(0.8)


def test_the_summary_slope_and_volatility_on_a_constructed_series(student):
    put_snapshots(
        student,
        [("t.a", BASE, 0.2), ("t.a", BASE + timedelta(days=3), 0.5),
         ("t.a", BASE + timedelta(days=5), 0.4)],
    )  # fmt: skip
    history = student_history(
        student, start=BASE, end=BASE + timedelta(days=6), granularity="daily"
    )
    daily = [0.2, 0.2, 0.2, 0.5, 0.5, 0.4, 0.4]
    changes = [0.0, 0.0, 0.3, 0.0, -0.1, 0.0]
    summary = history.summary
    assert summary.trend_slope == pytest.approx(least_squares_slope(daily), abs=1e-12)
    assert summary.volatility == pytest.approx(statistics.stdev(changes), abs=1e-12)
    assert summary.mean == pytest.approx(statistics.fmean(daily), abs=1e-12)
    assert summary.median == 0.4
    assert summary.std == pytest.approx(statistics.stdev(daily), abs=1e-12)
    assert (summary.min, summary.max) == (0.2, 0.5)


def test_a_student_without_snapshots_has_empty_periods_and_a_null_summary(student):
    history = student_history(
        student, start=BASE, end=BASE + timedelta(days=40), granularity="monthly"
    )
    assert [p.samples for p in history.series] == [0, 0]
    assert set(vars(history.summary).values()) == {None}
