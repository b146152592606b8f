"""A message just over 1,000,000 bytes on the real broker (issue 9, defect 3).

Apache Kafka's default limit (1,048,588) lets it in, and so does the embedded Tansu broker
(measured: it took 15,000,000 bytes). The dead-letter producer's limit is 1,000,000, so
the letter goes out truncated, and every partition moves on.
"""

import random

import orjson
import pytest
from confluent_kafka import Producer

from ingest.models import InboxEvent
from tests.ingest.kafka.harness import (
    RecordingProducer,
    committed_offsets,
    event_bytes,
    event_key,
    read_topic,
    synthetic_documents,
)

pytestmark = pytest.mark.kafka

OVERSIZED = 1_000_100


def _padded(document: dict, size: int) -> bytes:
    """The document with an extra field that brings it to exactly `size` bytes."""
    bare = orjson.dumps({**document, "padding": ""})
    return orjson.dumps({**document, "padding": "x" * (size - len(bare))})


def _produce_large(bootstrap: str, topic: str, *, key: bytes, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 2 * len(value)})
    reports = []
    producer.produce(
        topic, value=value, key=key, partition=0, on_delivery=lambda e, m: reports.append(e)
    )
    assert producer.flush(30) == 0
    assert reports == [None], reports


@pytest.mark.parametrize(
    ("cap", "event_type", "code"),
    [
        (None, "quiz.submitted", b"too_large"),  # the default cap, 900,000 bytes
        ("2000000", "video.watched", b"unknown_event_type"),  # parsed, rejected, too large
    ],
    ids=["over-the-cap", "over-the-dlq-limit"],
)
def test_an_oversized_message_is_dead_lettered_truncated_and_every_partition_moves_on(
    cap, event_type, code, topics, group_id, consumer_env_for, consumer_processes
):
    first, after, elsewhere, template = synthetic_documents(
        random.Random(), count=4, students=1, topics=1
    )
    rejected = {**template, "event_id": "oversized-1", "event_type": event_type}
    oversized = _padded(rejected, OVERSIZED)
    assert len(oversized) == OVERSIZED
    recorder = RecordingProducer(topics.bootstrap, topics.events)
    recorder.send(event_bytes(first), key=event_key(first), partition=0)
    recorder.flush()
    _produce_large(topics.bootstrap, topics.events, key=b"s-oversized", value=oversized)
    recorder.send(event_bytes(after), key=event_key(after), partition=0)
    recorder.send(event_bytes(elsewhere), key=event_key(elsewhere), partition=1)
    recorder.flush()

    env = consumer_env_for(group_id)
    if cap is not None:
        env["KAFKA_MAX_EVENT_BYTES"] = cap
    consumer = consumer_processes(env, "--idle-exit", "3")
    assert consumer.wait(timeout=60) == 0, consumer.log()[-3000:]

    stored = set(InboxEvent.objects.values_list("event_id", flat=True))
    assert stored == {first["event_id"], after["event_id"], elsewhere["event_id"]}
    assert committed_offsets(topics.bootstrap, group_id, topics.events, topics.partitions) == {
        0: 3,
        1: 1,
        2: 0,
    }
    [letter] = read_topic(topics.bootstrap, topics.dlq, 1)
    assert letter.key == b"s-oversized"
    assert letter.headers["error.code"] == code
    assert letter.headers["source.topic"] == topics.events.encode()
    assert (letter.headers["source.partition"], letter.headers["source.offset"]) == (b"0", b"1")
    assert letter.headers["dlq.truncated"] == b"true"
    assert letter.headers["dlq.original_size"] == str(OVERSIZED).encode()
    assert 990_000 < len(letter.value) < 1_000_000
    assert oversized.startswith(letter.value)
    assert "dead letter truncated" in consumer.log()
    assert "batch failed" not in consumer.log(), "nothing to retry: the letter went out at once"
