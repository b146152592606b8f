"""A student's mastery history (SPEC §3.3), computed in PostgreSQL in one statement.

The daily values are `mastery.selectors.student_daily_series_sql`: the daily series of
SPEC §3.1 (`carry_forward`) in SQL, its overall value the project's one `score_mean`, so
that a year of days x topics never crosses into Python. Periods (`date_trunc`: day, ISO
week from Monday, month) and the summary are aggregates over those daily values; Python
only turns the one result row into dataclasses.
"""

from dataclasses import dataclass
from datetime import date

from django.db import connections

from mastery.models import Student, Topic
from mastery.selectors import student_daily_series_sql
from mastery_project.db_router import read_alias, replica_reads

# Granularity -> the `date_trunc` field of its periods.
PERIODS = {"daily": "day", "weekly": "week", "monthly": "month"}

# Follows the daily series' WITH list, which defines window_days(day) and daily(day, value).
_HISTORY_SQL = """
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
    regr_slope(value, (day - %(origin)s::date)::float8),
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


@replica_reads()
def student_history(
    student: Student, *, start: date, end: date, granularity: str, topic: Topic | None = None
) -> History:
    """The student's history from `start` to `end` inclusive, overall or for `topic`.

    A period's `period_start` is its calendar start (a Monday, the 1st), which may lie
    before `start`; its aggregates cover only the days of the window. Replica-safe: it
    reads stored snapshots, which the request that asks never writes.
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    daily_sql, params = student_daily_series_sql(student, start=start, end=end, topic=topic)
    params |= {"period": PERIODS[granularity], "origin": start}
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(f"WITH {daily_sql},{_HISTORY_SQL}", params)
        starts, means, lows, highs, samples, *summary = cursor.fetchone()
    series = [Period(*row) for row in zip(starts, means, lows, highs, samples, strict=True)]
    return History(series=series, summary=HistorySummary(*summary))
