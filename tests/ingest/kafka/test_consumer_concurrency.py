"""Two group members applying events of the same (student, topic) pairs at the same time.

Key = student_id keeps a student on one partition only while every producer uses the same
partitioner; a Java client (murmur2) and librdkafka (crc32) do not, so one student's
events can sit on two partitions that two consumers apply concurrently. SPEC §2.1: the
state depends only on the set of accepted events, not on how they arrived.
"""

import random
import signal

import pytest

from ingest.models import InboxEvent
from ingest.pipeline import ingest_batch
from tests.factories import TopicFactory
from tests.ingest.kafka.harness import (
    RecordingProducer,
    event_bytes,
    event_key,
    reference_state,
    state_differences,
    stored_state,
    synthetic_documents,
    wait_until,
)

pytestmark = pytest.mark.kafka


def test_two_members_applying_the_same_new_pairs_concurrently_lose_no_event(
    topics, group_id, consumer_env_for, consumer_processes
):
    env = consumer_env_for(group_id)
    first = consumer_processes(env, "--batch-size", "500")
    first.wait_for_log("partitions assigned")
    second = consumer_processes(env, "--batch-size", "500")
    second.wait_for_log("partitions assigned")
    first.wait_for_log("partitions assigned", times=2)  # after the rebalance to two members
    mine, theirs = first.assigned_partitions(), second.assigned_partitions()
    assert mine, mine
    assert theirs, theirs
    assert not mine & theirs, (mine, theirs)
    one, other = min(mine), min(theirs)

    rng = random.Random()
    documents = synthetic_documents(rng, count=3000, students=100, topics=3, days=10)
    for document in documents:  # no topic-size reports: they would lock the topic rows
        document["payload"].pop("exercises_total", None)
    # The students and topics exist already; only their (student, topic) records are new.
    warm_up = [
        {
            **document,
            "event_id": f"warm-up-{n}",
            "topic": "warm-up",
            "event_type": "session.completed",
            "payload": {"duration_minutes": 5},
        }
        for n, document in enumerate({d["student_id"]: d for d in documents}.values())
    ]
    assert ingest_batch([event_bytes(d) for d in warm_up], source="http").accepted == len(warm_up)
    for slug in {d["topic"] for d in documents}:
        TopicFactory(slug=slug)
    producer = RecordingProducer(topics.bootstrap, topics.events)
    for document in documents:  # each pair's events split over both members' partitions
        partition = one if rng.random() < 0.5 else other
        producer.send(event_bytes(document), key=event_key(document), partition=partition)
    producer.flush()

    wait_until(
        lambda: InboxEvent.objects.count() == len(documents) + len(warm_up),
        timeout=60,
        interval=0.3,
        message=lambda: f"{InboxEvent.objects.count()} of {len(documents)} stored",
    )
    for member in (first, second):
        member.signal(signal.SIGTERM)
    assert [member.wait(timeout=15) for member in (first, second)] == [0, 0]
    assert "batch applied" in first.log()
    assert "batch applied" in second.log()

    expected = reference_state(documents + warm_up)
    differences = state_differences(expected, stored_state())
    assert differences == [], (
        f"{len(differences)} of {len(expected)} pairs differ, e.g. {differences[:3]}"
    )
