"""The session-mode generator: what the realistic ingestion workload is made of."""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from ingest.domain.events import parse_event
from ingest.synthetic import SESSION_EVENTS, TOPICS_PER_STUDENT, session_events, synthetic_events

END = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
START = END - timedelta(days=14)
STUDENTS = [f"s-{n:03d}" for n in range(40)]
TOPICS = [f"topic.{n}" for n in range(10)]


def sessions(count: int, seed: int = 1, **kwargs) -> list[dict]:
    return session_events(
        student_ids=STUDENTS, topics=TOPICS, start=START, end=END, count=count,
        rng=random.Random(seed), **kwargs,
    )  # fmt: skip


def at(event: dict) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


def test_gives_exactly_count_valid_events_in_time_order_inside_the_window():
    events = sessions(3000)
    assert len(events) == 3000
    moments = [at(event) for event in events]
    assert moments == sorted(moments)
    assert moments[0] >= START
    assert moments[-1] < END
    for event in events:
        parse_event(event, now=END, retention_days=90)


def test_each_student_keeps_to_a_few_topics_of_its_own_during_the_school_day():
    events = sessions(3000)
    topics_of: dict[str, set[str]] = {}
    for event in events:
        topics_of.setdefault(event["student_id"], set()).add(event["topic"])
        assert 8 <= at(event).hour < 19  # sessions start by 18:00 and last at most an hour
    assert max(len(topics) for topics in topics_of.values()) <= TOPICS_PER_STUDENT


def test_a_pair_gets_many_events_a_day():
    per_pair_day = Counter((e["student_id"], e["topic"], at(e).date()) for e in sessions(3000))
    # Every session gives its pair-day 5-15 events; only the last may have been cut short.
    assert sum(1 for n in per_pair_day.values() if n < SESSION_EVENTS[0]) <= 1
    assert sum(per_pair_day.values()) / len(per_pair_day) >= SESSION_EVENTS[0]


def test_the_same_seed_gives_the_same_stream():
    assert sessions(500, seed=7) == sessions(500, seed=7)
    assert sessions(500, seed=7) != sessions(500, seed=8)


def test_topics_per_student_is_capped_by_the_topics_there_are():
    events = sessions(200, topics_per_student=50)
    assert {event["topic"] for event in events} <= set(TOPICS)


def test_a_window_without_a_school_hour_is_refused():
    night = datetime(2026, 3, 15, 20, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="school-day"):
        session_events(
            student_ids=STUDENTS, topics=TOPICS, start=night, end=night + timedelta(hours=6),
            count=10, rng=random.Random(1),
        )  # fmt: skip


def test_the_uniform_stream_is_still_in_no_order():
    stream = synthetic_events(
        student_ids=STUDENTS, topics=TOPICS, start=START, end=END, count=500,
        rng=random.Random(3),
    )  # fmt: skip
    events = list(stream)
    moments = [at(event) for event in events]
    assert moments != sorted(moments)
    assert all(START <= moment < END for moment in moments)


def test_produce_events_refuses_an_unknown_mode():
    with pytest.raises(CommandError, match="mode"):
        call_command("produce_events", "--count", "1", "--mode", "bursts")
