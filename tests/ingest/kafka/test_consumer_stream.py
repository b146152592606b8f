"""The consumer against the real broker and PostgreSQL: a shuffled stream with duplicates
and conflicts ends in the reference state (SPEC §2.1); every poison message is
dead-lettered once with where it came from (SPEC §2.2), and the partition moves past it.

Set `KAFKA_TEST_SEED` to replay a run.
"""

import os
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from ingest.consumer import ConsumerSettings, EventConsumer
from ingest.models import InboxEvent
from ingest.pipeline import ingest_batch
from tests.factories import iso
from tests.ingest.kafka.harness import (
    RecordingProducer,
    committed_offsets,
    conflicting,
    event_bytes,
    event_key,
    read_topic,
    reference_state,
    state_differences,
    stored_state,
    synthetic_documents,
)

pytestmark = pytest.mark.kafka

EVENTS = 3000
DUPLICATE_SHARE = 0.10
CONFLICTS = 12


def _seed() -> int:
    chosen = os.environ.get("KAFKA_TEST_SEED")
    return int(chosen) if chosen else random.SystemRandom().randrange(2**32)


def _stored_ids() -> set[str]:
    return set(InboxEvent.objects.values_list("event_id", flat=True))


def _in_process_consumer(topics, group_id: str) -> EventConsumer:
    return EventConsumer(
        ConsumerSettings(
            bootstrap_servers=topics.bootstrap,
            group_id=group_id,
            topic=topics.events,
            dlq_topic=topics.dlq,
        )
    )


def test_shuffled_stream_with_duplicates_and_conflicts_ends_in_the_reference_state(
    topics, group_id, consumer_env_for, consumer_processes
):
    seed = _seed()
    print(f"KAFKA_TEST_SEED={seed}")
    rng = random.Random(seed)
    originals = synthetic_documents(rng, count=EVENTS, students=40, topics=6, days=20)
    duplicates = rng.sample(originals, int(EVENTS * DUPLICATE_SHARE))
    # A conflict of an id that is also duplicated makes outcomes depend on batching
    # (see test_a_repeated_conflict_is_dead_lettered_each_time); keep those apart here.
    duplicated = {d["event_id"] for d in duplicates}
    quizzes = [
        d
        for d in originals
        if d["event_type"] == "quiz.submitted" and d["event_id"] not in duplicated
    ]
    conflicts = [conflicting(d) for d in rng.sample(quizzes, CONFLICTS)]
    stream = originals + duplicates
    rng.shuffle(stream)

    producer = RecordingProducer(topics.bootstrap, topics.events)
    for document in stream:
        producer.send(event_bytes(document), key=event_key(document))
    producer.flush()
    # Each conflict strictly after its original, on the same key and so the same partition.
    for document in conflicts:
        producer.send(event_bytes(document), key=event_key(document))
    sent = producer.flush()
    assert len({s.partition for s in sent}) == topics.partitions

    consumer = consumer_processes(consumer_env_for(group_id), "--idle-exit", "3")
    assert consumer.wait(timeout=120) == 0, consumer.log()[-3000:]
    assert f"consumed {len(sent)} messages" in consumer.log()

    assert InboxEvent.objects.count() == len(originals)
    assert _stored_ids() == {d["event_id"] for d in originals}
    differences = state_differences(reference_state(originals), stored_state())
    assert differences == [], f"seed {seed}: {len(differences)} pairs differ: {differences[:5]}"

    conflict_values = {event_bytes(d) for d in conflicts}
    expected_dead = sorted(
        (s.partition, s.offset, s.value) for s in sent if s.value in conflict_values
    )
    dead = read_topic(topics.bootstrap, topics.dlq, 1)
    assert len(expected_dead) == CONFLICTS
    assert (
        sorted(
            (int(m.headers["source.partition"]), int(m.headers["source.offset"]), m.value)
            for m in dead
        )
        == expected_dead
    ), seed
    assert {m.headers["error.code"] for m in dead} == {b"conflict"}
    assert {m.headers["source.topic"] for m in dead} == {topics.events.encode()}

    committed = committed_offsets(topics.bootstrap, group_id, topics.events, topics.partitions)
    assert committed == producer.end_offsets()


def _valid_quiz(rng: random.Random, now: datetime, **changes) -> dict:
    document = {
        "event_id": f"poison-test-{rng.getrandbits(64):x}",
        "event_type": "quiz.submitted",
        "student_id": "s-poison",
        "topic": "python.loops",
        "occurred_at": iso(now - timedelta(hours=2)),
        "payload": {"quiz_id": "q7", "score": 8, "max_score": 10},
    }
    document.update(changes)
    return document


def _poison_cases(rng: random.Random, now: datetime, original: dict) -> list[tuple]:
    """(label, value bytes, expected error.code) of one message per way to be rejected."""

    def doc(event_type="quiz.submitted", payload: dict | None = None, **changes) -> dict:
        payloads = {
            "exercise.completed": {"exercise_id": "ex-1", "exercises_total": 12},
            "quiz.submitted": {"quiz_id": "q7", "score": 8, "max_score": 10},
            "code.reviewed": {"submission_id": "sub-1", "quality_score": 0.8},
            "session.completed": {"duration_minutes": 30},
        }
        chosen = (
            payloads.get(event_type, payloads["quiz.submitted"]) if payload is None else payload
        )
        return _valid_quiz(rng, now, event_type=event_type, payload=chosen, **changes)

    def without(document: dict, *path: str) -> dict:
        copy = {**document, "payload": dict(document["payload"])}
        target = copy["payload"] if len(path) == 2 else copy
        del target[path[-1]]
        return copy

    retention = settings.RETENTION_EVENTS_DAYS
    expired = (now - timedelta(days=retention + 1)).isoformat()
    future = (now + timedelta(hours=1)).isoformat()
    cases = [
        ("not JSON", b'{"event_id": "e-1", "event_type": ', "invalid_json"),
        ("not UTF-8", b'{"event_id": "\xff\xfe", "event_type": "quiz.submitted"}', "invalid_json"),
        # An empty or null value never reaches a consumer through the embedded broker: it
        # acknowledges the produce but fetches skip the record. Whitespace stands in for it.
        ("blank value", b"  \n", "invalid_json"),
        ("JSON array", b'[{"event_id": "e-2"}]', "invalid_shape"),
        ("JSON string", b'"quiz.submitted"', "invalid_shape"),
        ("missing topic", without(doc(), "topic"), "missing_field"),
        ("missing payload", without(doc(), "payload"), "missing_field"),
        ("null student_id", doc(student_id=None), "missing_field"),
        ("student_id not a string", doc(student_id=42), "invalid_field"),
        ("event_id not a string", doc(event_id=7), "invalid_field"),
        ("event_id too long", doc(event_id="e" * 101), "invalid_field"),
        ("bad student_id", doc(student_id="s 1/2"), "invalid_field"),
        ("bad topic slug", doc(topic="Python Loops"), "invalid_field"),
        ("occurred_at without zone", doc(occurred_at="2026-01-01T10:00:00"), "invalid_field"),
        ("occurred_at not a date", doc(occurred_at="yesterday"), "invalid_field"),
        ("event_type not a string", doc(3), "invalid_field"),
        ("unknown event_type", doc("video.watched"), "unknown_event_type"),
        ("payload not an object", doc(payload=[1, 2]), "invalid_field"),
        ("NUL character", doc(note="a\u0000b"), "invalid_field"),
        ("exercise without id", doc("exercise.completed", {"exercises_total": 3}), "missing_field"),
        ("empty exercise_id", doc("exercise.completed", {"exercise_id": ""}), "invalid_field"),
        (
            "exercise_id not a string",
            doc("exercise.completed", {"exercise_id": 5}),
            "invalid_field",
        ),
        (
            "exercises_total 0",
            doc("exercise.completed", {"exercise_id": "e", "exercises_total": 0}),
            "invalid_field",
        ),
        (
            "exercises_total float",
            doc("exercise.completed", {"exercise_id": "e", "exercises_total": 2.5}),
            "invalid_field",
        ),
        ("quiz without quiz_id", doc(payload={"score": 1, "max_score": 2}), "missing_field"),
        ("quiz without score", doc(payload={"quiz_id": "q", "max_score": 2}), "missing_field"),
        (
            "negative score",
            doc(payload={"quiz_id": "q", "score": -1, "max_score": 10}),
            "invalid_field",
        ),
        ("max_score 0", doc(payload={"quiz_id": "q", "score": 0, "max_score": 0}), "invalid_field"),
        (
            "score above max_score",
            doc(payload={"quiz_id": "q", "score": 11, "max_score": 10}),
            "invalid_field",
        ),
        (
            "score a string",
            doc(payload={"quiz_id": "q", "score": "8", "max_score": 10}),
            "invalid_field",
        ),
        (
            "score a boolean",
            doc(payload={"quiz_id": "q", "score": True, "max_score": 10}),
            "invalid_field",
        ),
        (
            "review without submission_id",
            doc("code.reviewed", {"quality_score": 0.5}),
            "missing_field",
        ),
        (
            "quality above 1",
            doc("code.reviewed", {"submission_id": "s", "quality_score": 1.5}),
            "invalid_field",
        ),
        (
            "quality below 0",
            doc("code.reviewed", {"submission_id": "s", "quality_score": -0.1}),
            "invalid_field",
        ),
        ("session without duration", doc("session.completed", {}), "missing_field"),
        ("negative duration", doc("session.completed", {"duration_minutes": -1}), "invalid_field"),
        ("expired", doc(occurred_at=expired), "expired"),
        ("future", doc(occurred_at=future), "future"),
        ("conflict", conflicting(original), "conflict"),
    ]
    return [
        (label, value if isinstance(value, bytes) else event_bytes(value), code)
        for label, value, code in cases
    ]


def test_every_poison_message_is_dead_lettered_once_with_its_origin_and_the_stream_moves_on(
    topics, group_id, transactional_db
):
    rng = random.Random(_seed())
    now = datetime.now(UTC)
    original = _valid_quiz(rng, now)
    poison = _poison_cases(rng, now, original)
    goods = [original] + [
        _valid_quiz(rng, now, occurred_at=(now - timedelta(minutes=n)).isoformat())
        for n in range(1, len(poison) + 1)
    ]

    producer = RecordingProducer(topics.bootstrap, topics.events)
    for number, good in enumerate(goods):
        producer.send(event_bytes(good), key=b"good", partition=0)
        if number < len(poison):
            producer.send(poison[number][1], key=f"poison-{number}".encode(), partition=0)
    sent = producer.flush()
    origin = {s.key: s for s in sent if s.key != b"good"}

    processed = _in_process_consumer(topics, group_id).run(idle_exit=2)

    assert processed == len(sent)
    assert _stored_ids() == {g["event_id"] for g in goods}
    dead = read_topic(topics.bootstrap, topics.dlq, 1)
    by_key: dict[bytes, list] = {}
    for message in dead:
        by_key.setdefault(message.key, []).append(message)
    wrong = []
    for number, (label, value, code) in enumerate(poison):
        key = f"poison-{number}".encode()
        letters = by_key.pop(key, [])
        if len(letters) != 1:
            wrong.append((label, f"{len(letters)} dead letters"))
            continue
        [letter] = letters
        want = {
            "value": value,
            "error.code": code.encode(),
            "source.topic": topics.events.encode(),
            "source.partition": b"0",
            "source.offset": str(origin[key].offset).encode(),
        }
        got = {"value": letter.value, **{k: letter.headers.get(k) for k in want if k != "value"}}
        if got != want or not letter.headers.get("error.message"):
            wrong.append((label, got, want, letter.headers.get("error.message")))
    assert wrong == []
    assert by_key == {}, "dead letters of messages that were never poison"
    committed = committed_offsets(topics.bootstrap, group_id, topics.events, topics.partitions)
    assert committed[0] == producer.end_offsets()[0] == len(sent)


def test_a_repeated_conflict_is_dead_lettered_each_time(topics, group_id, transactional_db):
    """SPEC §2.2: a conflict is judged against the *accepted* content. Two copies of the
    same conflicting event are two conflicts, and a copy of the accepted event is a
    duplicate, whether or not they arrive in the same batch."""
    rng = random.Random(_seed())
    now = datetime.now(UTC)
    original = _valid_quiz(rng, now)
    [outcome] = ingest_batch([event_bytes(original)], source="kafka").outcomes
    assert outcome.status == "accepted"
    changed = event_bytes(conflicting(original))

    producer = RecordingProducer(topics.bootstrap, topics.events)
    for value in (changed, changed, event_bytes(original)):
        producer.send(value, key=original["student_id"].encode(), partition=0)
    sent = producer.flush()

    assert _in_process_consumer(topics, group_id).run(idle_exit=2) == 3

    dead = read_topic(topics.bootstrap, topics.dlq, 1)
    assert [(m.headers["source.offset"], m.headers["error.code"], m.value) for m in dead] == [
        (str(s.offset).encode(), b"conflict", changed) for s in sent[:2]
    ]
    assert _stored_ids() == {original["event_id"]}
