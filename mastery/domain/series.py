"""The daily series of SPEC §3.1, defined once: predictions, the admin chart and the
back-test read it through `carry_forward`; the history, which aggregates a year of it in
PostgreSQL, through its SQL form `mastery.selectors.student_daily_series_sql`, which tests
hold to `carry_forward` value for value.

For one student and topic, the value on UTC day d is the mastery of the latest snapshot on
or before d (carried forward; none before the pair's first snapshot). The overall value on
d is the `overall_mastery` of the topics that have a value on d: their mean, rounded as
`score_mean` rounds it.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from mastery.domain.overall import overall_mastery


@dataclass(frozen=True)
class DailySeries:
    """Values per day over a window, oldest first; None where there is no value yet."""

    days: list[date]
    overall: list[float | None]
    topics: dict[str, list[float | None]]


def carry_forward(
    *,
    start: date,
    end: date,
    before: Mapping[str, float],
    snapshots: Iterable[tuple[str, date, float]],
) -> DailySeries:
    """The series from `start` to `end` inclusive.

    `before`: each topic's latest snapshot value before `start` (it carries into the
    window); `snapshots`: (topic, day, mastery) of the snapshots inside the window.
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    by_day: dict[str, dict[date, float]] = defaultdict(dict)
    for topic, day, mastery in snapshots:
        if not start <= day <= end:
            raise ValueError(f"snapshot of {topic} on {day} is outside {start}..{end}")
        by_day[topic][day] = mastery
    window = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    topics: dict[str, list[float | None]] = {}
    for topic in sorted(set(before) | set(by_day)):
        value = before.get(topic)
        values: list[float | None] = []
        for day in window:
            value = by_day[topic].get(day, value)
            values.append(value)
        topics[topic] = values
    overall = [
        overall_mastery(values[i] for values in topics.values() if values[i] is not None)
        for i in range(len(window))
    ]
    return DailySeries(window, overall, topics)
