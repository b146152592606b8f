"""Two writers applying events of the same pair at once (HTTP and Kafka run side by side).

Each writer runs `ingest_batch` in its own thread and database connection. Wrappers line
both transactions up just before they lock their students (their inbox rows are written,
not yet committed) and widen the window between the first writer's apply and its commit,
so the interleaving is the same on every run.
"""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from ingest import pipeline
from ingest.models import InboxEvent
from ingest.pipeline import ingest_batch
from mastery.domain.facts import PairEvent, reference_mastery
from mastery.models import MasteryRecord, Snapshot
from mastery.policy import current_policy
from tests.factories import StudentFactory, TopicFactory

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def quiz(event_id: str, score: int, occurred_at: datetime) -> dict:
    return {
        "event_id": event_id,
        "event_type": "quiz.submitted",
        "student_id": "s-1",
        "topic": "t.new",
        "occurred_at": occurred_at.isoformat(),
        "payload": {"quiz_id": event_id, "score": score, "max_score": 10},
    }


def run_side_by_side(monkeypatch, first: list, second: list) -> None:
    """Both writers reach the point where they lock their students together; the first
    applies and holds its transaction open a while, the second must wait and then see it."""
    real_bump = pipeline._bump_activity
    real_apply = pipeline.mastery_records_apply_events
    both_ready = threading.Barrier(2, timeout=20)
    errors = []

    def bump(latest_by_student):
        both_ready.wait()
        if threading.current_thread().name == "second":
            time.sleep(0.1)  # the first writer holds the students' locks by now
        real_bump(latest_by_student)

    def apply(**kwargs):
        real_apply(**kwargs)
        if threading.current_thread().name == "first":
            time.sleep(0.5)  # applied, not yet committed

    def writer(items: list) -> None:
        try:
            ingest_batch(items, source="http", now=NOW)
        except Exception as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    monkeypatch.setattr(pipeline, "_bump_activity", bump)
    monkeypatch.setattr(pipeline, "mastery_records_apply_events", apply)
    threads = [
        threading.Thread(target=writer, args=(first,), name="first"),
        threading.Thread(target=writer, args=(second,), name="second"),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []


def test_concurrent_first_events_of_a_pair_are_both_applied(monkeypatch):
    """The student and topic exist, the pair has no record yet: neither writer's events may
    be lost when both create the record at the same time."""
    StudentFactory(student_id="s-1")
    TopicFactory(slug="t.new")
    day = NOW - timedelta(days=1)
    first, second = quiz("e-first", 10, day), quiz("e-second", 2, day + timedelta(hours=1))

    run_side_by_side(monkeypatch, [first], [second])

    assert set(InboxEvent.objects.values_list("event_id", flat=True)) == {"e-first", "e-second"}
    events = [
        PairEvent(
            d["event_id"], d["event_type"], datetime.fromisoformat(d["occurred_at"]), d["payload"]
        )
        for d in (first, second)
    ]
    components, score = reference_mastery(events, 10, current_policy())
    record = MasteryRecord.objects.get(student__student_id="s-1", topic__slug="t.new")
    assert sorted(e[1] for e in record.facts["quiz_recent"]) == ["e-first", "e-second"]
    assert record.quiz == pytest.approx(components.quiz)
    assert record.mastery == pytest.approx(score)
    snapshot = Snapshot.objects.get(student__student_id="s-1", topic__slug="t.new")
    assert snapshot.mastery == pytest.approx(score)


def test_concurrent_events_of_an_existing_record_are_both_applied(monkeypatch):
    """With a record in place its row lock serialises the writers."""
    day = NOW - timedelta(days=2)
    ingest_batch([quiz("e-zero", 5, day)], source="http", now=NOW)
    first, second = quiz("e-first", 10, day), quiz("e-second", 2, day + timedelta(days=1))

    run_side_by_side(monkeypatch, [first], [second])

    record = MasteryRecord.objects.get(student__student_id="s-1", topic__slug="t.new")
    assert sorted(e[1] for e in record.facts["quiz_recent"]) == ["e-first", "e-second", "e-zero"]
    assert record.quiz == pytest.approx((0.5 + 1.0 + 0.2) / 3)
