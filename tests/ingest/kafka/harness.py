"""What the Kafka process tests share: per-test topics, a recording producer, reading a
topic back, committed offsets, `consume_events` subprocesses and the reference state.

Everything talks to the real broker and the real PostgreSQL; nothing here is a double.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[3]
EVENT_PARTITIONS = 3
# One step of the 4-decimal rounding: a tie like 0.48215 may round either way depending on
# how the float sum was taken (fsum vs sum); 1e-9 absorbs the float error of the difference.
TOLERANCE = 1e-4 + 1e-9


def unique_name(kind: str) -> str:
    return f"test.{kind}.{uuid.uuid4().hex[:12]}"


# -- topics ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topics:
    bootstrap: str
    events: str
    dlq: str
    partitions: int = EVENT_PARTITIONS


def create_topics(bootstrap: str, wanted: dict[str, int]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=-1) for name, n in wanted.items()],
        operation_timeout=10,
    )
    for future in futures.values():
        future.result(timeout=15)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        known = admin.list_topics(timeout=5).topics
        if all(name in known and len(known[name].partitions) == n for name, n in wanted.items()):
            return
        time.sleep(0.1)
    raise AssertionError(f"topics {sorted(wanted)} did not appear in the metadata")


def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(list(names), operation_timeout=10).values():
        with contextlib.suppress(KafkaException):  # already gone: nothing to clean up
            future.result(timeout=15)


def delete_groups(bootstrap: str, groups: Iterable[str]) -> None:
    groups = list(groups)
    if not groups:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        futures = admin.delete_consumer_groups(groups, request_timeout=10)
    except KafkaException:  # the broker may not support it; a stale group id harms no one
        return
    for future in futures.values():
        with contextlib.suppress(KafkaException):
            future.result(timeout=15)


# -- producing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One message as the broker acknowledged it."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class RecordingProducer:
    """Produces to one topic and keeps the broker's answer (partition, offset) for each."""

    def __init__(self, bootstrap: str, topic: str):
        self.topic = topic
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
            }
        )
        self.sent: list[Sent] = []
        self.errors: list[KafkaError] = []
        self._lock = threading.Lock()

    def _on_delivery(self, error, message) -> None:
        with self._lock:
            if error is not None:
                self.errors.append(error)
            else:
                self.sent.append(
                    Sent(message.partition(), message.offset(), message.key(), message.value())
                )

    def send(
        self,
        value: bytes | None,
        *,
        key: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        kwargs = {} if partition is None else {"partition": partition}
        while True:
            try:
                self.producer.produce(
                    self.topic,
                    value=value,
                    key=key,
                    headers=headers,
                    on_delivery=self._on_delivery,
                    **kwargs,
                )
                return
            except BufferError:
                self.producer.poll(0.05)

    def flush(self) -> list[Sent]:
        left = self.producer.flush(30)
        assert left == 0, f"{left} messages not delivered"
        assert self.errors == [], self.errors
        return self.sent

    def end_offsets(self) -> dict[int, int]:
        """The offset after the last acknowledged message of each partition written to."""
        ends: dict[int, int] = {}
        for sent in self.sent:
            ends[sent.partition] = max(ends.get(sent.partition, 0), sent.offset + 1)
        return ends


def event_bytes(document: dict) -> bytes:
    return orjson.dumps(document)


def event_key(document: dict) -> bytes:
    return document["student_id"].encode()


class SteadyProducer(threading.Thread):
    """Produces `values` at about `per_second`, flushing every chunk: a live stream."""

    def __init__(self, producer: RecordingProducer, items: list[tuple[bytes, bytes]], per_second):
        super().__init__(daemon=True)
        self.producer = producer
        self.items = items
        self.chunk = max(1, per_second // 20)
        self.pause = self.chunk / per_second
        self.stop_requested = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            for start in range(0, len(self.items), self.chunk):
                if self.stop_requested.is_set():
                    break
                for key, value in self.items[start : start + self.chunk]:
                    self.producer.send(value, key=key)
                self.producer.producer.flush(30)
                time.sleep(self.pause)
            self.producer.flush()
        except BaseException as exc:  # reported by finish()
            self.failure = exc

    def finish(self, timeout: float = 60) -> list[Sent]:
        self.join(timeout)
        assert not self.is_alive(), "the producer thread did not finish"
        if self.failure is not None:
            raise self.failure
        return self.producer.sent


# -- reading back ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


def read_topic(bootstrap: str, topic: str, partitions: int, *, settle: float = 1.0) -> list:
    """Every message of the topic, read by assignment (no group join), in partition order.

    Reads to the high watermark, then keeps listening `settle` seconds so that extra
    copies, if any, are seen too.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test.reader.{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
    try:
        highs = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        }
        consumer.assign(tps)
        received: list[Received] = []
        deadline = time.monotonic() + 30
        quiet_since = None
        while time.monotonic() < deadline:
            messages = consumer.consume(500, timeout=0.2)
            for message in messages:
                if message.error() is not None:
                    continue
                received.append(
                    Received(
                        message.partition(),
                        message.offset(),
                        message.key(),
                        message.value(),
                        dict(message.headers() or []),
                    )
                )
            reached = all(
                any(r.partition == p and r.offset >= high - 1 for r in received) or high <= 0
                for p, high in highs.items()
            )
            if messages or not reached:
                quiet_since = None
                continue
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                break
        return sorted(received, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group_id: str, topic: str, partitions: int) -> dict:
    """The group's committed offset per partition (0 where it never committed)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False}
    )
    try:
        committed = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=10
        )
    finally:
        consumer.close()
    return {tp.partition: max(tp.offset, 0) for tp in committed}


# -- the consumer process --------------------------------------------------------------------


def database_url_named(name: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{name}"))


def consumer_env(*, database_url: str, topics: Topics, group_id: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mastery_project.settings.test",
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": topics.bootstrap,
        "KAFKA_EVENTS_TOPIC": topics.events,
        "KAFKA_DLQ_TOPIC": topics.dlq,
        "KAFKA_GROUP_ID": group_id,
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class ConsumerProcess:
    """`manage.py consume_events` in a subprocess, its output in a log file."""

    env: dict[str, str]
    log_path: Path
    args: tuple[str, ...] = ()
    process: subprocess.Popen | None = field(default=None, init=False)

    def start(self) -> ConsumerProcess:
        command = [sys.executable, "manage.py", "consume_events", "--metrics-port", "0"]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*command, *self.args], cwd=ROOT, env=self.env, stdout=log, stderr=log
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def count(self, text: str) -> int:
        return self.log().count(text)

    def wait_for_log(self, text: str, *, times: int = 1, timeout: float = 40) -> None:
        wait_until(
            lambda: self.count(text) >= times,
            timeout=timeout,
            message=lambda: f"{text!r} not logged {times}x; log tail:\n{self.log()[-3000:]}",
            alive=self,
        )

    def assigned_partitions(self) -> set[int]:
        """The partitions of the latest "partitions assigned" log line."""
        lines = [line for line in self.log().splitlines() if "partitions assigned" in line]
        assert lines, self.log()[-3000:]
        names = orjson.loads(lines[-1])["partitions"]
        return {int(name.rsplit("[", 1)[1].rstrip("]")) for name in names}

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"consumer still running after {timeout}s; log tail:\n{self.log()[-3000:]}"
            ) from None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.running():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    message: Callable[[], str] | str = "condition not met",
    interval: float = 0.1,
    alive: ConsumerProcess | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if alive is not None and not alive.running():
            text = message() if callable(message) else message
            raise AssertionError(f"consumer exited ({alive.process.returncode}): {text}")
        time.sleep(interval)
    raise AssertionError(message() if callable(message) else message)


# -- events and the reference state -----------------------------------------------------------


def synthetic_documents(
    rng: random.Random, *, count: int, students: int = 40, topics: int = 6, days: int = 20
) -> list[dict]:
    from ingest.synthetic import synthetic_events

    now = datetime.now(UTC)
    prefix = uuid.uuid4().hex[:6]
    return list(
        synthetic_events(
            student_ids=[f"s-{prefix}-{n:03d}" for n in range(students)],
            topics=[f"topic-{prefix}.{n}" for n in range(topics)],
            start=now - timedelta(days=days),
            end=now - timedelta(seconds=5),
            count=count,
            rng=rng,
        )
    )


def conflicting(document: dict) -> dict:
    """Same event_id, another score: a quiz gets the opposite end of its scale."""
    assert document["event_type"] == "quiz.submitted"
    payload = dict(document["payload"])
    payload["score"] = 0 if payload["score"] else payload["max_score"]
    return {**document, "payload": payload}


def _utc(document: dict) -> datetime:
    return datetime.fromisoformat(document["occurred_at"]).astimezone(UTC)


def reference_state(accepted: Iterable[dict]) -> dict[tuple[str, str], dict[str, float]]:
    """SPEC §2.1 per (student, topic) from the accepted documents, via `reference_mastery`."""
    from django.conf import settings

    from mastery.domain.facts import PairEvent, reference_mastery
    from mastery.policy import current_policy

    policy = current_policy()
    accepted = list(accepted)
    reported: dict[str, tuple] = {}
    pairs: dict[tuple[str, str], list[PairEvent]] = defaultdict(list)
    for d in accepted:
        pairs[(d["student_id"], d["topic"])].append(
            PairEvent(d["event_id"], d["event_type"], _utc(d), d["payload"])
        )
        total = d["payload"].get("exercises_total")
        if d["event_type"] == "exercise.completed" and total is not None:
            candidate = (_utc(d), d["event_id"], total)
            reported[d["topic"]] = max(reported.get(d["topic"], candidate), candidate)
    default = settings.MASTERY_DEFAULT_EXERCISES_TOTAL
    state = {}
    for (student, topic), events in pairs.items():
        total = reported[topic][2] if topic in reported else default
        components, score = reference_mastery(events, total, policy)
        state[(student, topic)] = {"mastery": score, **components.as_dict()}
    return state


def stored_state() -> dict[tuple[str, str], dict[str, float]]:
    from mastery.models import MasteryRecord

    return {
        (r.student.student_id, r.topic.slug): {
            "mastery": r.mastery,
            "completion": r.completion,
            "quiz": r.quiz,
            "quality": r.quality,
            "consistency": r.consistency,
        }
        for r in MasteryRecord.objects.select_related("student", "topic")
    }


def state_differences(expected: dict, actual: dict) -> list:
    """Pairs missing, unexpected, or off by more than TOLERANCE in any figure."""
    differences = []
    for pair in sorted(set(expected) | set(actual)):
        want, got = expected.get(pair), actual.get(pair)
        if want is None or got is None or any(abs(got[k] - want[k]) > TOLERANCE for k in want):
            differences.append((pair, got, want))
    return differences
