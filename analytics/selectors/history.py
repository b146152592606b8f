"""A student's mastery history (SPEC §3.3), computed in PostgreSQL in one statement.

The daily series is the definition of SPEC §3.1 (`mastery.domain.series.carry_forward`),
written a second time in SQL so that a year of days x topics never crosses into Python:
each topic's value on a day is its latest snapshot on or before that day (a gaps-and-
islands fill: a running count of snapshots numbers each run of days, and the run takes
its one snapshot's value; the days before the window's first snapshot take the latest
snapshot before the window); the overall value is the mean of the topics that have one,
rounded to 4 decimals as `overall_mastery` rounds it. Tests hold it to `carry_forward`.

Periods (`date_trunc`: day, ISO week from Monday, month) and the summary are aggregates
over those daily values; Python only turns the one result row into dataclasses.
"""

from dataclasses import dataclass
from datetime import date

from django.db import connection

from mastery.models import Student, Topic

# Granularity -> the `date_trunc` field of its periods.
PERIODS = {"daily": "day", "weekly": "week", "monthly": "month"}

_HISTORY_SQL = """
WITH window_days AS (
    SELECT day::date AS day
    FROM generate_series(%(start)s::date, %(end)s::date, interval '1 day') AS day
),
inside AS (
    SELECT topic_id, day, mastery FROM mastery_snapshot
    WHERE student_id = %(student)s AND day BETWEEN %(start)s AND %(end)s
      AND (%(topic)s::bigint IS NULL OR topic_id = %(topic)s::bigint)
),
carried_in AS (
    SELECT DISTINCT ON (topic_id) topic_id, mastery FROM mastery_snapshot
    WHERE student_id = %(student)s AND day < %(start)s
      AND (%(topic)s::bigint IS NULL OR topic_id = %(topic)s::bigint)
    ORDER BY topic_id, day DESC
),
grid AS (
    SELECT t.topic_id, d.day, i.mastery,
           count(i.mastery) OVER (PARTITION BY t.topic_id ORDER BY d.day) AS run
    FROM (SELECT topic_id FROM inside UNION SELECT topic_id FROM carried_in) AS t
    CROSS JOIN window_days AS d
    LEFT JOIN inside AS i ON i.topic_id = t.topic_id AND i.day = d.day
),
topic_days AS (
    SELECT g.day,
           CASE WHEN g.run = 0 THEN c.mastery
                ELSE max(g.mastery) OVER (PARTITION BY g.topic_id, g.run) END AS value
    FROM grid AS g LEFT JOIN carried_in AS c ON c.topic_id = g.topic_id
),
daily AS (
    SELECT day, round(avg(value)::numeric, 4)::float8 AS value
    FROM topic_days WHERE value IS NOT NULL GROUP BY day
),
periods AS (
    SELECT date_trunc(%(period)s, d.day::timestamp)::date AS period_start, avg(v.value) AS mean,
           min(v.value) AS low, max(v.value) AS high, count(v.value) AS samples
    FROM window_days AS d LEFT JOIN daily AS v ON v.day = d.day
    GROUP BY 1
),
changes AS (
    -- Once a value exists every later day has one (it carries forward), so the previous
    -- row is the previous day.
    SELECT day, value, value - lag(value) OVER (ORDER BY day) AS change FROM daily
)
SELECT
    (SELECT array_agg(period_start ORDER BY period_start) FROM periods),
    (SELECT array_agg(mean ORDER BY period_start) FROM periods),
    (SELECT array_agg(low ORDER BY period_start) FROM periods),
    (SELECT array_agg(high ORDER BY period_start) FROM periods),
    (SELECT array_agg(samples ORDER BY period_start) FROM periods),
    avg(value),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY value),
    stddev_samp(value),
    min(value),
    max(value),
    regr_slope(value, (day - %(start)s::date)::float8),
    stddev_samp(change)
FROM changes
"""


@dataclass(frozen=True)
class Period:
    """One period of the series: aggregates over its days that have a value (none: None)."""

    period_start: date
    mean: float | None
    min: float | None
    max: float | None
    samples: int


@dataclass(frozen=True)
class HistorySummary:
    """Over the daily values of the window. `std` and `volatility` are sample standard
    deviations (n - 1; None below two values, resp. two changes); `trend_slope` is the
    least-squares slope per day (None below two values); `volatility` is the standard
    deviation of the day-to-day changes."""

    mean: float | None
    median: float | None
    std: float | None
    min: float | None
    max: float | None
    trend_slope: float | None
    volatility: float | None


@dataclass(frozen=True)
class History:
    series: list[Period]
    summary: HistorySummary


def student_history(
    student: Student, *, start: date, end: date, granularity: str, topic: Topic | None = None
) -> History:
    """The student's history from `start` to `end` inclusive, overall or for `topic`.

    A period's `period_start` is its calendar start (a Monday, the 1st), which may lie
    before `start`; its aggregates cover only the days of the window.
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    params = {
        "student": student.pk,
        "topic": topic.pk if topic is not None else None,
        "start": start,
        "end": end,
        "period": PERIODS[granularity],
    }
    with connection.cursor() as cursor:
        cursor.execute(_HISTORY_SQL, params)
        starts, means, lows, highs, samples, *summary = cursor.fetchone()
    series = [Period(*row) for row in zip(starts, means, lows, highs, samples, strict=True)]
    return History(series=series, summary=HistorySummary(*summary))
