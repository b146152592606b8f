"""The daily series of SPEC §3.1: carried forward per topic, overall = mean of topics."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mastery.domain.overall import overall_mastery
from mastery.domain.series import carry_forward

START = date(2026, 3, 1)


def test_a_topic_keeps_its_last_value_on_days_without_a_snapshot():
    series = carry_forward(
        start=START,
        end=START + timedelta(days=4),
        before={},
        snapshots=[
            ("loops", START + timedelta(days=1), 0.3),
            ("loops", START + timedelta(days=3), 0.6),
        ],
    )
    assert series.days == [START + timedelta(days=i) for i in range(5)]
    assert series.topics["loops"] == [None, 0.3, 0.3, 0.6, 0.6]
    assert series.overall == [None, 0.3, 0.3, 0.6, 0.6]


def test_the_value_before_the_window_carries_into_it():
    series = carry_forward(
        start=START, end=START + timedelta(days=2), before={"old": 0.7}, snapshots=[]
    )
    assert series.topics["old"] == [0.7, 0.7, 0.7]


def test_overall_is_the_mean_of_the_topics_that_have_a_value_that_day():
    series = carry_forward(
        start=START,
        end=START + timedelta(days=2),
        before={"a": 0.2},
        snapshots=[("b", START + timedelta(days=1), 0.6), ("a", START + timedelta(days=2), 0.4)],
    )
    assert series.overall == [0.2, 0.4, 0.5]


def test_a_snapshot_outside_the_window_or_a_reversed_window_is_refused():
    with pytest.raises(ValueError, match="outside"):
        carry_forward(
            start=START, end=START, before={}, snapshots=[("a", START - timedelta(days=1), 0.1)]
        )
    with pytest.raises(ValueError, match="before start"):
        carry_forward(start=START, end=START - timedelta(days=1), before={}, snapshots=[])


@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c"]),
        st.dictionaries(st.integers(0, 20), st.floats(0, 1, allow_nan=False), max_size=8),
        max_size=3,
    ),
    st.integers(0, 20),
)
def test_each_day_equals_the_latest_snapshot_on_or_before_it(points, day):
    """Against a direct reading of the definition, day by day."""
    snapshots = [
        (t, START + timedelta(days=d), v) for t, days in points.items() for d, v in days.items()
    ]
    series = carry_forward(
        start=START, end=START + timedelta(days=20), before={}, snapshots=snapshots
    )
    for topic, days in points.items():
        if not days:
            assert topic not in series.topics
            continue
        earlier = [d for d in days if d <= day]
        expected = days[max(earlier)] if earlier else None
        assert series.topics[topic][day] == expected
    present = [series.topics[t][day] for t in series.topics if series.topics[t][day] is not None]
    assert series.overall[day] == (overall_mastery(present) if present else None)
