"""`EventConsumer` in this process against the real broker and database: its limits
(`max_messages`, `idle_exit`, also across a rebalance), its lag gauge, and a dead letter
the broker refuses."""

import dataclasses
import random
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections
from prometheus_client import REGISTRY

from ingest.consumer import ConsumerSettings, EventConsumer
from ingest.models import InboxEvent
from ingest.pipeline import ingest_batch
from tests.ingest.kafka.harness import (
    RecordingProducer,
    committed_offsets,
    event_bytes,
    event_key,
    read_topic,
    synthetic_documents,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("transactional_db")]

# A name the broker refuses ("Broker: Invalid topic"): auto-creation cannot rescue it.
REFUSED_DLQ_TOPIC = "no such topic!"


def _settings(topics, group_id: str, **overrides) -> ConsumerSettings:
    chosen = {"dlq_topic": topics.dlq, **overrides}
    return ConsumerSettings(
        bootstrap_servers=topics.bootstrap, group_id=group_id, topic=topics.events, **chosen
    )


def _produce(topics, documents: list[dict]) -> RecordingProducer:
    producer = RecordingProducer(topics.bootstrap, topics.events)
    for document in documents:
        producer.send(event_bytes(document), key=event_key(document))
    producer.flush()
    return producer


def _committed(topics, group_id: str) -> dict[int, int]:
    return committed_offsets(topics.bootstrap, group_id, topics.events, topics.partitions)


def _lag(topics, partition: int) -> float | None:
    labels = {"topic": topics.events, "partition": str(partition)}
    return REGISTRY.get_sample_value("mastery_consumer_lag", labels)


def _retries(reason: str) -> float:
    return REGISTRY.get_sample_value("mastery_consumer_retries_total", {"reason": reason}) or 0.0


def test_max_messages_stops_after_exactly_that_many_and_the_next_run_resumes(
    topics, group_id, consumer_env_for, consumer_processes
):
    documents = synthetic_documents(random.Random(), count=150, students=12, topics=3)
    producer = _produce(topics, documents)
    ends = producer.end_offsets()
    assert len(ends) == topics.partitions

    command = consumer_processes(consumer_env_for(group_id), "--max-messages", "40")
    assert command.wait(timeout=60) == 0, command.log()[-3000:]
    assert "consumed 40 messages" in command.log()
    assert InboxEvent.objects.count() == 40
    halfway = _committed(topics, group_id)
    assert sum(halfway.values()) == 40

    consumer = EventConsumer(_settings(topics, group_id))
    started = time.monotonic()
    assert consumer.run(idle_exit=1.5) == 110
    assert time.monotonic() - started < 30
    assert InboxEvent.objects.count() == 150
    assert _committed(topics, group_id) == ends
    resumed = [partition for partition, end in ends.items() if end > halfway[partition]]
    assert {partition: _lag(topics, partition) for partition in resumed} == dict.fromkeys(
        resumed, 0.0
    )


def test_idle_exit_returns_once_assigned_and_idle_that_long(topics, group_id):
    consumer = EventConsumer(_settings(topics, group_id))
    started = time.monotonic()
    assert consumer.run(idle_exit=1.0) == 0
    elapsed = time.monotonic() - started
    assert consumer.ever_assigned, "it left before the group gave it partitions"
    assert 1.0 <= elapsed < 20


def test_a_refused_dead_letter_holds_back_the_commit_until_it_is_delivered(topics, group_id):
    now = datetime.now(UTC)
    good = synthetic_documents(random.Random(), count=2, students=1, topics=1)
    poison = {**good[0], "event_id": "refused-dlq-1", "event_type": "video.watched"}
    poison["occurred_at"] = (now - timedelta(minutes=1)).isoformat()
    producer = RecordingProducer(topics.bootstrap, topics.events)
    for document in (good[0], poison, good[1]):
        producer.send(event_bytes(document), key=b"one-partition", partition=0)
    sent = producer.flush()

    consumer = EventConsumer(
        _settings(
            topics,
            group_id,
            dlq_topic=REFUSED_DLQ_TOPIC,
            backoff_initial=0.1,
            backoff_max=0.4,
            dlq_timeout=2.0,
        )
    )
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["processed"] = consumer.run(idle_exit=1.5)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connections.close_all()

    retries_before = _retries("TransientError")
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: _retries("TransientError") >= retries_before + 3, timeout=40)
        assert InboxEvent.objects.count() == 2  # applied: the database commit came first
        assert _committed(topics, group_id)[0] <= sent[1].offset
        assert read_topic(topics.bootstrap, topics.dlq, 1, settle=0.3) == []
        assert thread.is_alive(), "the batch must be retried, not given up"
    finally:
        # The dead-letter topic becomes available: the same batch now completes.
        consumer.settings = dataclasses.replace(consumer.settings, dlq_topic=topics.dlq)
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert outcome == {"processed": 3}

    [letter] = read_topic(topics.bootstrap, topics.dlq, 1)
    assert (letter.value, letter.headers["error.code"], letter.headers["source.offset"]) == (
        event_bytes(poison),
        b"unknown_event_type",
        str(sent[1].offset).encode(),
    )
    assert _committed(topics, group_id)[0] == 3
    assert InboxEvent.objects.count() == 2


class SlowMember:
    """An in-process member with a backlog it applies at most 100 events/s (the real
    pipeline, unhurried): 2,400 events last it about 24 s, time enough for a member
    started later (a new process joining the group, slower on a loaded machine) to take
    over part of the backlog."""

    def __init__(self, topics, group_id: str, *, idle_exit: float | None):
        self.consumer = EventConsumer(
            _settings(topics, group_id, batch_size=10), ingest=self.unhurried_ingest
        )
        self.outcome: dict = {}
        self.thread = threading.Thread(target=self._run, args=(idle_exit,), daemon=True)

    @staticmethod
    def unhurried_ingest(values, **kwargs):
        time.sleep(0.1)
        return ingest_batch(values, **kwargs)

    def _run(self, idle_exit: float | None) -> None:
        try:
            self.outcome["processed"] = self.consumer.run(idle_exit=idle_exit)
        except BaseException as exc:
            self.outcome["error"] = exc
        finally:
            connections.close_all()

    def start(self) -> None:
        self.thread.start()
        wait_until(lambda: InboxEvent.objects.count() >= 100, timeout=40)

    def finish(self) -> int:
        self.consumer.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        assert "error" not in self.outcome, self.outcome
        return self.outcome["processed"]


def test_idle_exit_does_not_end_a_run_while_the_group_rebalances(
    topics, group_id, consumer_env_for, consumer_processes
):
    """Idle time counts from joining the group, and a rebalance is a join: a member whose
    partitions were revoked and is waiting for new ones is not idle. Leaving then would
    also close the consumer while its JoinGroup is in flight (SPEC §7)."""
    documents = synthetic_documents(random.Random(), count=2400, students=30, topics=3)
    _produce(topics, documents)
    member = SlowMember(topics, group_id, idle_exit=2.0)
    member.start()
    other = consumer_processes(consumer_env_for(group_id))

    wait_until(
        lambda: not member.thread.is_alive() or other.count("partitions assigned") >= 1,
        timeout=40,
    )
    waiting = len(documents) - InboxEvent.objects.count()
    assert member.thread.is_alive() or waiting == 0, (
        f"run(idle_exit=2) returned after {member.outcome.get('processed')} messages, "
        f"with {waiting} still waiting: it left during the rebalance"
    )

    wait_until(lambda: InboxEvent.objects.count() == len(documents), timeout=60, interval=0.5)
    member.finish()
    other.signal(signal.SIGTERM)
    assert other.wait(timeout=15) == 0


def test_a_partition_handed_to_another_member_does_not_keep_its_old_lag(
    topics, group_id, consumer_env_for, consumer_processes, request
):
    """The lag gauge describes the partitions this process reads. Once a partition has
    moved to another member and been drained there, this process must not go on
    reporting the backlog it saw before the rebalance."""
    documents = synthetic_documents(random.Random(), count=2400, students=30, topics=3)
    _produce(topics, documents)
    member = SlowMember(topics, group_id, idle_exit=None)
    member.start()
    request.addfinalizer(member.consumer.stop)  # never leave a consumer thread behind
    wait_until(lambda: any(_lag(topics, p) for p in range(topics.partitions)), timeout=20)
    before = {partition: _lag(topics, partition) for partition in range(topics.partitions)}
    other = consumer_processes(consumer_env_for(group_id))
    other.wait_for_log("partitions assigned")
    theirs = other.assigned_partitions()

    wait_until(lambda: InboxEvent.objects.count() == len(documents), timeout=60, interval=0.5)
    assert member.finish() < len(documents), "the other member should have taken a share"
    other.signal(signal.SIGTERM)
    assert other.wait(timeout=15) == 0

    after = {partition: _lag(topics, partition) for partition in theirs}
    assert all(lag in (None, 0.0) for lag in after.values()), (before, after)
