"""The ingestion pipeline against the real database (SPEC §2.1, §2.2).

`ingest_batch` is driven directly, with a fixed `now`; every expected score comes from
`mastery.domain.facts.reference_mastery` over the events the test itself sent.
"""

import itertools
import json
import random
from datetime import UTC, date, datetime, timedelta

import orjson
import pytest
from django.conf import settings
from django.test import override_settings

from ingest import pipeline
from ingest.models import InboxEvent
from ingest.pipeline import ingest_batch
from mastery.domain.facts import PairEvent, reference_mastery
from mastery.domain.formula import level_for
from mastery.models import MasteryRecord, Snapshot, Student, Topic
from mastery.policy import current_policy
from mastery.services import mastery_records_rescore
from tests.factories import DEFAULT_PAYLOADS, TopicFactory, event_document, iso

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
TOPIC = "python.loops"
_sequence = itertools.count(1)


def at(days_ago: int, hour: int = 12, minute: int = 0) -> datetime:
    """A UTC moment on the day `days_ago` days before NOW's day."""
    day = NOW.date() - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def event(
    event_type: str = "quiz.submitted",
    *,
    student: str = "s-1",
    topic: str = TOPIC,
    occurred_at: datetime | str | None = None,
    event_id: str | None = None,
    **payload,
) -> dict:
    return event_document(
        event_type,
        student_id=student,
        topic=topic,
        occurred_at=at(1) if occurred_at is None else occurred_at,
        event_id=event_id or f"e-{next(_sequence):05d}",
        payload=dict(DEFAULT_PAYLOADS[event_type]),
        **payload,
    )


def reordered_bytes(document: dict) -> bytes:
    """The same event as other bytes: keys in reverse order (payload too), indented."""
    flipped = {key: document[key] for key in reversed(list(document))}
    flipped["payload"] = {key: document["payload"][key] for key in reversed(document["payload"])}
    return json.dumps(flipped, indent=2).encode()


def ingest(*items, source: str = "http", now: datetime = NOW):
    return ingest_batch(list(items), source=source, now=now)


def statuses(result) -> list[tuple[int, str, str | None]]:
    return [(o.index, o.status, o.code) for o in result.outcomes]


def pair_events(documents) -> list[PairEvent]:
    return [
        PairEvent(
            d["event_id"], d["event_type"], datetime.fromisoformat(d["occurred_at"]), d["payload"]
        )
        for d in documents
    ]


def record_of(student: str, topic: str = TOPIC) -> MasteryRecord:
    return MasteryRecord.objects.get(student__student_id=student, topic__slug=topic)


def record_state(student: str, topic: str = TOPIC) -> tuple:
    record = record_of(student, topic)
    return (
        record.completion,
        record.quiz,
        record.quality,
        record.consistency,
        record.mastery,
        record.level,
        record.facts,
        record.policy_hash,
        record.updated_at,
    )


def snapshot_state(student: str, topic: str = TOPIC) -> dict[date, tuple]:
    return {
        s.day: (s.completion, s.quiz, s.quality, s.consistency, s.mastery)
        for s in Snapshot.objects.filter(student__student_id=student, topic__slug=topic)
    }


def assert_matches_reference(actual, documents, exercises_total: int) -> None:
    """`actual` (a record or snapshot) equals SPEC §2.1 computed from `documents`."""
    policy = current_policy()
    components, score = reference_mastery(pair_events(documents), exercises_total, policy)
    assert (actual.completion, actual.quiz, actual.quality, actual.consistency) == pytest.approx(
        (components.completion, components.quiz, components.quality, components.consistency),
        abs=1e-9,
    )
    assert actual.mastery == pytest.approx(score, abs=1e-9)


def assert_record_matches(student: str, documents, exercises_total: int, topic=TOPIC) -> None:
    record = record_of(student, topic)
    assert_matches_reference(record, documents, exercises_total)
    assert record.level == level_for(record.mastery)
    assert record.policy_hash == current_policy().policy_hash


def assert_snapshots_match_prefixes(
    student: str, documents, exercises_total: int, topic: str = TOPIC
) -> None:
    """One snapshot per UTC day with events, each the score of the events up to that day."""
    days = sorted({e.occurred_at.date() for e in pair_events(documents)})
    snapshots = {
        s.day: s for s in Snapshot.objects.filter(student__student_id=student, topic__slug=topic)
    }
    assert sorted(snapshots) == days
    for day in days:
        prefix = [
            d
            for d, e in zip(documents, pair_events(documents), strict=True)
            if e.occurred_at.date() <= day
        ]
        assert_matches_reference(snapshots[day], prefix, exercises_total)


# --- rejections -----------------------------------------------------------------------------

BAD_STUDENT = "s-bad"
BAD_TOPIC = "bad.topic"


def bad(**overrides) -> dict:
    """A quiz event of a student and topic no good item mentions, with top-level overrides."""
    document = event(student=BAD_STUDENT, topic=BAD_TOPIC, event_id="e-bad")
    document.update(overrides)
    return document


def _missing(name: str) -> dict:
    document = bad()
    del document[name]
    return document


REJECTIONS = {
    "truncated json": (lambda: orjson.dumps(bad())[:-7], "invalid_json", None),
    "not utf-8": (lambda: b'{"event_id": "e-bad", "student_id": "s-\xff"}', "invalid_json", None),
    "json array": (lambda: orjson.dumps([bad()]), "invalid_shape", None),
    "json number": (lambda: b"42", "invalid_shape", None),
    "no occurred_at": (lambda: _missing("occurred_at"), "missing_field", "e-bad"),
    "null payload": (lambda: bad(payload=None), "missing_field", "e-bad"),
    "no quiz score": (
        lambda: bad(payload={"quiz_id": "q", "max_score": 10}),
        "missing_field",
        "e-bad",
    ),
    "score above max": (
        lambda: bad(payload={"quiz_id": "q", "score": 11, "max_score": 10}),
        "invalid_field",
        "e-bad",
    ),
    "naive occurred_at": (
        lambda: bad(occurred_at="2026-11-19T12:00:00"),
        "invalid_field",
        "e-bad",
    ),
    "bad student_id": (lambda: bad(student_id="s bad!"), "invalid_field", "e-bad"),
    "unknown event_type": (lambda: bad(event_type="video.watched"), "unknown_event_type", "e-bad"),
    "expired": (
        lambda: bad(
            occurred_at=iso(
                NOW - timedelta(days=settings.RETENTION_EVENTS_DAYS) - timedelta(seconds=1)
            )
        ),
        "expired",
        "e-bad",
    ),
    "future": (
        lambda: bad(occurred_at=iso(NOW + timedelta(minutes=5, seconds=1))),
        "future",
        "e-bad",
    ),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_a_rejected_item_is_reported_with_its_code_and_writes_nothing(case):
    build, code, event_id = REJECTIONS[case]
    first = event(student="s-good-1", event_id="e-good-1")
    last = event("exercise.completed", student="s-good-2", event_id="e-good-2")

    result = ingest(first, build(), last)

    assert statuses(result) == [(0, "accepted", None), (1, "rejected", code), (2, "accepted", None)]
    rejected = result.rejected[0]
    assert rejected.event_id == event_id
    assert rejected.message
    assert (result.accepted, result.duplicates) == (2, 0)
    assert result.student_ids == {"s-good-1", "s-good-2"}
    assert set(InboxEvent.objects.values_list("event_id", flat=True)) == {"e-good-1", "e-good-2"}
    assert set(Student.objects.values_list("student_id", flat=True)) == {"s-good-1", "s-good-2"}
    assert set(Topic.objects.values_list("slug", flat=True)) == {TOPIC}
    owners = {"s-good-1", "s-good-2"}
    assert set(MasteryRecord.objects.values_list("student__student_id", flat=True)) == owners
    assert set(Snapshot.objects.values_list("student__student_id", flat=True)) == owners


def test_events_just_inside_the_time_window_are_accepted():
    oldest = NOW - timedelta(days=settings.RETENTION_EVENTS_DAYS) + timedelta(seconds=1)
    newest = NOW + timedelta(minutes=5)

    result = ingest(event(occurred_at=oldest), event(occurred_at=newest))

    assert statuses(result) == [(0, "accepted", None), (1, "accepted", None)]
    assert Student.objects.get(student_id="s-1").last_activity_at == newest


def test_a_batch_of_only_rejected_items_writes_nothing():
    result = ingest(b"{", bad(event_type="video.watched"), bad(occurred_at="yesterday"))

    assert [o.code for o in result.outcomes] == [
        "invalid_json",
        "unknown_event_type",
        "invalid_field",
    ]
    assert result.accepted == 0
    assert not InboxEvent.objects.exists()
    assert not Student.objects.exists()
    assert not Topic.objects.exists()


def test_a_json_value_that_is_not_an_object_is_rejected_as_invalid_shape():
    """The HTTP view hands `{"events": [...]}` items over as parsed JSON: any JSON value."""
    good = event(event_id="e-good")

    result = ingest(good, 42, [1, 2], None, True, 1.5)

    assert statuses(result) == [(0, "accepted", None)] + [
        (index, "rejected", "invalid_shape") for index in range(1, 6)
    ]
    assert list(InboxEvent.objects.values_list("event_id", flat=True)) == ["e-good"]


# --- duplicates and conflicts ---------------------------------------------------------------


def test_duplicate_event_is_counted_not_applied_twice():
    quiz = event(occurred_at=at(2), score=6)
    exercise = event("exercise.completed", occurred_at=at(1), exercise_id="ex-7")
    ingest(quiz, exercise, source="kafka")
    record_before = record_state("s-1")
    snapshots_before = snapshot_state("s-1")

    later = NOW + timedelta(hours=1)
    result = ingest(
        exercise, reordered_bytes(quiz), quiz, reordered_bytes(exercise), source="http", now=later
    )

    assert statuses(result) == [(i, "duplicate", None) for i in range(4)]
    assert (result.accepted, result.duplicates, result.rejected) == (0, 4, [])
    assert result.student_ids == set()
    assert InboxEvent.objects.count() == 2
    assert set(InboxEvent.objects.values_list("source", "received_at")) == {("kafka", NOW)}
    assert record_state("s-1") == record_before
    assert snapshot_state("s-1") == snapshots_before
    assert_record_matches("s-1", [quiz, exercise], 10)


def test_a_reordered_copy_in_the_same_batch_is_a_duplicate():
    quiz = event(score=3)

    result = ingest(quiz, reordered_bytes(quiz), orjson.dumps(quiz))

    assert statuses(result) == [
        (0, "accepted", None),
        (1, "duplicate", None),
        (2, "duplicate", None),
    ]
    assert InboxEvent.objects.count() == 1
    assert_record_matches("s-1", [quiz], 10)


def test_a_conflict_in_the_same_batch_is_rejected_and_the_first_is_kept():
    first = event(event_id="e-same", score=9)
    changed = {**first, "payload": {**first["payload"], "score": 2}}

    result = ingest(first, changed)

    assert statuses(result) == [(0, "accepted", None), (1, "rejected", "conflict")]
    assert result.rejected[0].event_id == "e-same"
    assert InboxEvent.objects.get(event_id="e-same").payload["score"] == 9
    assert_record_matches("s-1", [first], 10)


def test_a_conflict_across_batches_is_rejected_and_the_stored_event_stays():
    first = event(event_id="e-same", score=9)
    ingest(first)
    before = record_state("s-1")
    changed_score = {**first, "payload": {**first["payload"], "score": 2}}
    changed_time = {**first, "occurred_at": iso(at(3))}

    result = ingest(changed_score, orjson.dumps(changed_time), now=NOW + timedelta(minutes=1))

    assert statuses(result) == [(0, "rejected", "conflict"), (1, "rejected", "conflict")]
    stored = InboxEvent.objects.get(event_id="e-same")
    assert (stored.payload["score"], stored.occurred_at) == (9, at(1))
    assert record_state("s-1") == before


def test_a_repeated_conflicting_copy_is_a_conflict_too():
    """Only an id *accepted* with the same content makes a duplicate (SPEC §2.2).

    The second copy of a refused version was never accepted, so it must be dead-lettered
    as a conflict like the first, not swallowed as a duplicate.
    """
    first = event(event_id="e-same", score=9)
    ingest(first)
    changed = {**first, "payload": {**first["payload"], "score": 2}}

    result = ingest(changed, reordered_bytes(changed), now=NOW + timedelta(minutes=1))

    assert statuses(result) == [(0, "rejected", "conflict"), (1, "rejected", "conflict")]


def test_the_accepted_version_after_a_conflicting_one_in_a_batch_is_a_duplicate():
    """A batch that first carries a refused version, then the stored one: conflict, duplicate."""
    first = event(event_id="e-same", score=9)
    ingest(first)
    changed = {**first, "payload": {**first["payload"], "score": 2}}

    result = ingest(changed, first, now=NOW + timedelta(minutes=1))

    assert statuses(result) == [(0, "rejected", "conflict"), (1, "duplicate", None)]


def test_a_rejected_item_does_not_claim_its_event_id():
    broken = event(event_id="e-x")
    broken["payload"] = None
    good = event(event_id="e-x")

    result = ingest(broken, good)

    assert statuses(result) == [(0, "rejected", "missing_field"), (1, "accepted", None)]


# --- registration and activity --------------------------------------------------------------


def test_first_accepted_event_creates_student_and_topic_and_stores_its_receipt():
    documents = [
        event(student="s-new", topic="new.topic", occurred_at=at(3)),
        event("session.completed", student="s-new", topic="new.topic", occurred_at=at(1, 9)),
        # 01:30 at +03:00 is 22:30 UTC the day before: still the latest moment here.
        event(
            "code.reviewed",
            student="s-new",
            topic="new.topic",
            occurred_at=(at(0, 1, 30)).replace(tzinfo=None).isoformat() + "+03:00",
        ),
    ]
    assert not Student.objects.exists()

    result = ingest(*documents, source="kafka")

    assert result.accepted == 3
    assert result.student_ids == {"s-new"}
    student = Student.objects.get(student_id="s-new")
    assert student.last_activity_at == at(1, 22, 30)
    assert student.analytics_consent is True
    assert student.created_at is not None
    topic = Topic.objects.get(slug="new.topic")
    assert (topic.exercises_total, topic.reported_exercises_total, topic.name) == (None, None, "")
    rows = {row.event_id: row for row in InboxEvent.objects.all()}
    assert set(rows) == {d["event_id"] for d in documents}
    for document in documents:
        row = rows[document["event_id"]]
        assert (row.student_id, row.topic_id) == (student.pk, topic.pk)
        assert row.event_type == document["event_type"]
        assert row.occurred_at == datetime.fromisoformat(document["occurred_at"])
        assert row.payload == document["payload"]
        assert (row.source, row.received_at) == ("kafka", NOW)
        assert len(row.content_hash) == 64
    assert_record_matches("s-new", documents, 10, topic="new.topic")
    assert_snapshots_match_prefixes("s-new", documents, 10, topic="new.topic")


def test_last_activity_only_moves_forward():
    ingest(event(occurred_at=at(2)))
    ingest(event(occurred_at=at(5)))
    assert Student.objects.get(student_id="s-1").last_activity_at == at(2)

    ingest(event(occurred_at=at(0, 10)), event(occurred_at=at(4)))
    assert Student.objects.get(student_id="s-1").last_activity_at == at(0, 10)


def test_an_existing_topic_is_reused_with_its_settings():
    TopicFactory(slug=TOPIC, name="Loops", exercises_total=4)

    ingest(event("exercise.completed", exercise_id="ex-1", exercises_total=20))

    topic = Topic.objects.get(slug=TOPIC)
    assert (topic.name, topic.exercises_total) == ("Loops", 4)
    assert Topic.objects.count() == 1


# --- transactions ---------------------------------------------------------------------------


def test_a_failure_while_applying_leaves_nothing_of_the_batch(monkeypatch):
    existing = event(occurred_at=at(3), score=5)
    ingest(existing)
    record_before = record_state("s-1")
    snapshots_before = snapshot_state("s-1")
    batch = [
        event(occurred_at=at(5), score=10),  # late event for the existing pair
        event("exercise.completed", occurred_at=at(1), exercises_total=3),
        event(student="s-new", topic="new.topic"),
    ]
    real_apply = pipeline.mastery_records_apply_events
    calls = []

    def apply_then_fail(**kwargs):
        real_apply(**kwargs)
        calls.append(kwargs)
        raise RuntimeError("injected failure after applying")

    monkeypatch.setattr(pipeline, "mastery_records_apply_events", apply_then_fail)
    with pytest.raises(RuntimeError, match="injected"):
        ingest(*batch, now=NOW + timedelta(minutes=1))

    assert len(calls) == 1
    assert list(InboxEvent.objects.values_list("event_id", flat=True)) == [existing["event_id"]]
    assert not Student.objects.filter(student_id="s-new").exists()
    assert not Topic.objects.filter(slug="new.topic").exists()
    assert Topic.objects.get(slug=TOPIC).reported_exercises_total is None
    assert record_state("s-1") == record_before
    assert snapshot_state("s-1") == snapshots_before
    assert Student.objects.get(student_id="s-1").last_activity_at == at(3)

    monkeypatch.undo()
    result = ingest(*batch, now=NOW + timedelta(minutes=2))

    assert result.accepted == 3
    assert_record_matches("s-1", [existing, *batch[:2]], 3)


# --- snapshots ------------------------------------------------------------------------------


def _history() -> list[dict]:
    """Twelve events of one pair over four UTC days, with a tie and a non-UTC offset."""
    return [
        event(occurred_at=at(20), score=2),
        event("exercise.completed", occurred_at=at(20, 8), exercise_id="ex-1"),
        event(occurred_at=at(12, 9), score=10),
        event(occurred_at=at(12, 9), score=4, event_id="e-tie-a"),
        event(occurred_at=at(12, 9), score=7, event_id="e-tie-b"),
        event("code.reviewed", occurred_at=at(12, 10), quality_score=0.4),
        event(occurred_at=at(5), score=9, max_score=12.5),
        event("code.reviewed", occurred_at=at(5, 13), quality_score=0.9),
        event("exercise.completed", occurred_at=at(5, 14), exercise_id="ex-2"),
        event("exercise.completed", occurred_at=at(5, 15), exercise_id="ex-1"),
        event("session.completed", occurred_at=at(2, 23, 59)),
        # 00:30 at +02:00 is 22:30 UTC on the day before.
        event(occurred_at=at(0, 0, 30).replace(tzinfo=None).isoformat() + "+02:00", score=6),
    ]


def test_events_over_several_days_give_one_snapshot_per_day_of_the_prefix():
    documents = _history()
    random.Random(7).shuffle(documents)

    ingest(*documents)

    assert_snapshots_match_prefixes("s-1", documents, 10)
    assert_record_matches("s-1", documents, 10)
    assert Snapshot.objects.filter(day=at(1).date()).exists()  # the +02:00 event's UTC day


def test_events_arriving_day_by_day_give_the_same_snapshots_as_one_batch():
    documents = sorted(_history(), key=lambda d: datetime.fromisoformat(d["occurred_at"]))
    for document in documents:
        ingest(document)

    assert_snapshots_match_prefixes("s-1", documents, 10)
    assert_record_matches("s-1", documents, 10)


def test_a_late_event_rewrites_the_snapshots_from_its_day_on():
    documents = _history()
    ingest(*documents[6:])  # days 5, 2 and 1 ago
    untouched = snapshot_state("s-1")
    late = [
        event(occurred_at=at(8), score=0),
        event("exercise.completed", occurred_at=at(8, 1), exercise_id="ex-9"),
        event("code.reviewed", occurred_at=at(3), quality_score=0.1),
    ]

    ingest(*late)

    assert_snapshots_match_prefixes("s-1", documents[6:] + late, 10)
    assert_record_matches("s-1", documents[6:] + late, 10)
    assert snapshot_state("s-1")[at(5).date()] != untouched[at(5).date()]

    # Later still: older than the whole consistency window, mixed with a newer event.
    older = [*documents[:6], event(occurred_at=at(0, 14), score=1)]
    ingest(*older, now=NOW + timedelta(hours=1))

    everything = documents + late + older[6:]
    assert_snapshots_match_prefixes("s-1", everything, 10)
    assert_record_matches("s-1", everything, 10)


def test_a_late_event_only_touches_its_own_pair():
    ingest(event(occurred_at=at(2)), event(student="s-2", occurred_at=at(2)))
    other = snapshot_state("s-2")

    ingest(event(occurred_at=at(6), score=1))

    assert snapshot_state("s-2") == other


# --- the topic's exercises_total ------------------------------------------------------------

REPORTS = [
    # (occurred_at, event_id, exercises_total); the latest is (at(2), "e-c") -> 8.
    (at(2), "e-b", 20),
    (at(4), "e-z", 5),
    (at(2), "e-a", 7),
    (at(2), "e-c", 8),
    (at(2), "e-B", 30),  # "B" < "a" < "b" < "c" as plain string comparison
]
NO_TOTAL = event("exercise.completed", occurred_at=at(1), event_id="e-late", exercise_id="ex-x")
QUIZ_WITH_TOTAL = event(occurred_at=at(0, 9), event_id="e-quiz", exercises_total=2)


def report_events() -> list[dict]:
    """The exercise events of REPORTS, each reporting its exercises_total."""
    return [
        event(
            "exercise.completed",
            occurred_at=when,
            event_id=eid,
            exercise_id=eid,
            exercises_total=total,
        )
        for when, eid, total in REPORTS
    ]


@pytest.mark.parametrize(
    "order", random.Random(2026).sample(list(itertools.permutations(range(len(REPORTS)))), 12)
)
def test_the_reported_total_is_the_latest_by_occurred_at_then_event_id(order):
    reports = report_events()
    for index in order:
        ingest(reports[index])
    ingest(NO_TOTAL, QUIZ_WITH_TOTAL)

    topic = Topic.objects.get(slug=TOPIC)
    assert (topic.reported_exercises_total, topic.reported_event_id) == (8, "e-c")
    assert topic.reported_at == at(2)
    assert record_of("s-1").completion == pytest.approx(6 / 8)
    assert_record_matches("s-1", [*reports, NO_TOTAL, QUIZ_WITH_TOTAL], 8)


def test_the_reported_total_within_one_batch_is_the_latest():
    reports = report_events()

    ingest(*reversed(reports))

    assert Topic.objects.get(slug=TOPIC).reported_exercises_total == 8
    assert_record_matches("s-1", reports, 8)
    assert_snapshots_match_prefixes("s-1", reports, 8)


def test_an_admin_set_total_wins_over_reported_ones():
    TopicFactory(slug=TOPIC, exercises_total=4)
    documents = [
        event("exercise.completed", exercise_id="ex-1", exercises_total=20),
        event("exercise.completed", exercise_id="ex-2", occurred_at=at(0, 10)),
    ]

    ingest(*documents)

    topic = Topic.objects.get(slug=TOPIC)
    assert (topic.exercises_total, topic.reported_exercises_total) == (4, 20)
    assert record_of("s-1").completion == pytest.approx(0.5)
    assert_record_matches("s-1", documents, 4)


def test_a_new_effective_total_rescores_other_students_of_the_topic():
    alice = [
        event("exercise.completed", student="alice", exercise_id="ex-1", occurred_at=at(3)),
        event("exercise.completed", student="alice", exercise_id="ex-2", occurred_at=at(2)),
        event(student="alice", score=5),
    ]
    elsewhere = event("exercise.completed", student="alice", topic="other.topic")
    ingest(*alice, elsewhere)
    assert record_of("alice").completion == pytest.approx(0.2)
    other_topic_before = record_state("alice", "other.topic")

    bob = [event("exercise.completed", student="bob", exercise_id="ex-1", exercises_total=4)]
    ingest(*bob, now=NOW + timedelta(minutes=1))

    assert record_of("alice").completion == pytest.approx(0.5)
    assert_record_matches("alice", alice, 4)
    assert_record_matches("bob", bob, 4)
    assert record_state("alice", "other.topic") == other_topic_before

    # With an admin's total in force, a newer reported total changes no one's score.
    Topic.objects.filter(slug=TOPIC).update(exercises_total=5)
    mastery_records_rescore(topic_pks=[Topic.objects.get(slug=TOPIC).pk])
    alice_before = record_state("alice")
    carol = [event("exercise.completed", student="carol", occurred_at=at(0, 9), exercises_total=2)]

    ingest(*carol, now=NOW + timedelta(minutes=2))

    assert Topic.objects.get(slug=TOPIC).reported_exercises_total == 2
    assert record_state("alice") == alice_before
    assert_record_matches("alice", alice, 5)
    assert_record_matches("carol", carol, 5)


def test_snapshots_do_not_depend_on_when_the_topic_size_arrived():
    """The same events give the same snapshots whether the size came before or after them.

    Bob reports a size of 4 on a day before all of Alice's events, so any reading of
    "the topic's exercises_total" agrees Alice's snapshots are out of 4, not the default 10.
    """
    alice = [
        event("exercise.completed", student="alice", exercise_id="ex-1", occurred_at=at(5)),
        event("exercise.completed", student="alice", exercise_id="ex-2", occurred_at=at(3)),
    ]

    def size_report(topic: str) -> dict:
        return event(
            "exercise.completed", student="bob", topic=topic, occurred_at=at(10), exercises_total=4
        )

    # topic "size.first": the size arrives first; topic "size.after": after Alice's events.
    ingest(size_report("size.first"))
    ingest(*[{**d, "event_id": d["event_id"] + "-1", "topic": "size.first"} for d in alice])
    ingest(*[{**d, "event_id": d["event_id"] + "-2", "topic": "size.after"} for d in alice])
    ingest(size_report("size.after"))

    assert_snapshots_match_prefixes("alice", alice, 4, topic="size.first")
    assert snapshot_state("alice", "size.after") == snapshot_state("alice", "size.first")
    assert_snapshots_match_prefixes("alice", alice, 4, topic="size.after")


# --- re-scoring after a policy change -------------------------------------------------------

NEW_WEIGHTS = {"completion": 0.1, "quiz": 0.2, "quality": 0.3, "consistency": 0.4}


def _two_topics() -> dict[tuple[str, str], list[dict]]:
    return {
        ("s-1", "t.one"): [
            event("exercise.completed", topic="t.one", occurred_at=at(3), exercise_id="ex-1"),
            event(topic="t.one", occurred_at=at(2), score=7),
            event("code.reviewed", topic="t.one", occurred_at=at(1), quality_score=0.6),
        ],
        ("s-2", "t.one"): [
            event(student="s-2", topic="t.one", occurred_at=at(9), score=3),
            event("session.completed", student="s-2", topic="t.one", occurred_at=at(4)),
        ],
        ("s-1", "t.two"): [
            event("exercise.completed", topic="t.two", occurred_at=at(6), exercises_total=3),
            event("code.reviewed", topic="t.two", occurred_at=at(1), quality_score=1),
        ],
    }


TOTALS = {"t.one": 10, "t.two": 3}


def test_rescore_brings_every_record_to_new_weights_without_reading_events():
    pairs = _two_topics()
    ingest(*itertools.chain.from_iterable(pairs.values()))
    old_hash = current_policy().policy_hash
    InboxEvent.objects.all().delete()

    with override_settings(MASTERY_WEIGHTS=NEW_WEIGHTS):
        new_hash = current_policy().policy_hash
        rewritten = mastery_records_rescore()

        assert rewritten == 3
        assert new_hash != old_hash
        for (student, topic), documents in pairs.items():
            assert_record_matches(student, documents, TOTALS[topic], topic=topic)
            assert record_of(student, topic).policy_hash == new_hash


def test_rescore_of_some_topics_leaves_the_others_alone():
    pairs = _two_topics()
    ingest(*itertools.chain.from_iterable(pairs.values()))
    old_hash = current_policy().policy_hash
    untouched = record_state("s-1", "t.two")
    InboxEvent.objects.all().delete()

    with override_settings(MASTERY_WEIGHTS=NEW_WEIGHTS):
        rewritten = mastery_records_rescore(topic_pks=[Topic.objects.get(slug="t.one").pk])

        assert rewritten == 2
        assert_record_matches("s-1", pairs[("s-1", "t.one")], 10, topic="t.one")
        assert_record_matches("s-2", pairs[("s-2", "t.one")], 10, topic="t.one")
    assert record_state("s-1", "t.two") == untouched
    assert record_of("s-1", "t.two").policy_hash == old_hash


def test_events_applied_after_a_policy_change_use_the_new_policy():
    first = event(occurred_at=at(3), score=4)
    ingest(first)

    with override_settings(MASTERY_WEIGHTS=NEW_WEIGHTS):
        second = event("code.reviewed", occurred_at=at(1), quality_score=0.5)
        ingest(second)

        assert_record_matches("s-1", [first, second], 10)
