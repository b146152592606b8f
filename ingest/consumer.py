"""The Kafka consumer loop: batches from `learning.events` into the ingestion pipeline.

Delivery is at-least-once and the inbox is idempotent, so every event is applied exactly
once. Offsets are committed only after the batch's database commit *and* the dead-letter
produce of its rejected messages were acknowledged. A transient failure (database down,
serialization failure, DLQ unavailable) pauses the partitions and retries the same batch
with capped exponential backoff; a permanently bad message is dead-lettered and never
blocks its partition. `stop()` (the signal handlers) lets the batch in hand finish.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections
from django.db import connection as db_connection

from ingest import metrics
from ingest.pipeline import DUPLICATE, REJECTED, BatchResult, ItemOutcome, ingest_batch
from mastery_project.correlation import accept_or_new, correlation_id

logger = logging.getLogger(__name__)

PROCESSING_ERROR = "processing_error"
CORRELATION_HEADERS = ("correlation_id", "x-correlation-id", "x-request-id")
JOIN_TIMEOUT = 30.0  # seconds an idle-exit run waits to be given partitions at all


class TransientError(Exception):
    """The batch could not be finished now; retry it, never skip it."""


@dataclass(frozen=True)
class ConsumerSettings:
    bootstrap_servers: str
    group_id: str
    topic: str
    dlq_topic: str
    session_timeout_ms: int = 6000
    batch_size: int = 2000
    poll_timeout: float = 0.05  # a batch waits at most this long to fill: bounds latency
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    dlq_timeout: float = 10.0
    max_poll_interval_ms: int = 60000

    def consumer_config(self) -> dict:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            # The embedded broker joins slowly with librdkafka's default of 45 s (SPEC §7).
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": max(500, self.session_timeout_ms // 3),
            # Also the rebalance timeout: a member lost mid-join holds the group up to this long.
            "max.poll.interval.ms": self.max_poll_interval_ms,
            "fetch.wait.max.ms": 100,
            "queued.max.messages.kbytes": 65536,
        }

    def producer_config(self) -> dict:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }


def _headers(message: Message) -> dict[str, str]:
    return {
        key.lower(): value.decode("utf-8", "replace") if isinstance(value, bytes) else ""
        for key, value in (message.headers() or [])
    }


class EventConsumer:
    """One consumer process. `run()` until `stop()`, `max_messages` or `idle_exit`."""

    def __init__(
        self,
        settings: ConsumerSettings,
        *,
        ingest: Callable[..., BatchResult] = ingest_batch,
        consumer: Consumer | None = None,
        producer: Producer | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.ingest = ingest
        self.sleep = sleep
        self.consumer = consumer or Consumer(settings.consumer_config())
        self.producer = producer or Producer(settings.producer_config())
        self.assigned: set[tuple[str, int]] = set()
        self.carry: list[Message] = []
        self.processed = 0
        self.last_activity = time.monotonic()
        self.ever_assigned = False
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self, *_signal_args) -> None:
        """Only sets a flag: safe from a signal handler."""
        self._stopping = True

    def run(self, *, max_messages: int | None = None, idle_exit: float | None = None) -> int:
        self.consumer.subscribe(
            [self.settings.topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        self.last_activity = time.monotonic()
        try:
            while not self._stopping:
                if max_messages is not None and self.processed >= max_messages:
                    break
                room = self.settings.batch_size
                if max_messages is not None:
                    room = min(room, max_messages - self.processed)
                batch = self._next_batch(room)
                if not batch:
                    if idle_exit is not None and self._idle_for() >= idle_exit:
                        break
                    continue
                self.last_activity = time.monotonic()
                self.handle_batch(batch)
        finally:
            self.close()
        return self.processed

    def _idle_for(self) -> float:
        """Idle time counts only while partitions are assigned: joining the group, or
        rejoining during a rebalance, can take seconds (SPEC §7) and is not idleness."""
        idle = time.monotonic() - self.last_activity
        if not self.assigned and idle < JOIN_TIMEOUT:
            return 0.0
        return idle

    def close(self) -> None:
        self.producer.flush(self.settings.dlq_timeout)
        self.consumer.close()  # leaves the group, so partitions move at once

    # -- rebalancing -----------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned |= {(tp.topic, tp.partition) for tp in partitions}
        self.last_activity = time.monotonic()
        self.ever_assigned = True
        logger.info("partitions assigned", extra={"partitions": _names(partitions)})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Offsets are committed synchronously after every batch, so what is done is
        # committed already; messages held for revoked partitions go to their new owner.
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self.assigned -= revoked
        self.last_activity = time.monotonic()
        self.carry = [m for m in self.carry if (m.topic(), m.partition()) not in revoked]
        for topic, partition in revoked:  # the new owner reports it; a sum stays right
            metrics.CONSUMER_LAG.labels(topic, str(partition)).set(0)
        logger.info("partitions revoked", extra={"partitions": _names(partitions)})

    # -- one batch -------------------------------------------------------------------------

    def _next_batch(self, room: int) -> list[Message]:
        batch, self.carry = self.carry[:room], self.carry[room:]
        if len(batch) < room:
            polled = self.consumer.consume(
                num_messages=room - len(batch), timeout=self.settings.poll_timeout
            )
            batch.extend(self._usable(polled))
        return batch

    def _usable(self, messages: Sequence[Message]) -> list[Message]:
        usable = []
        for message in messages:
            error = message.error()
            if error is None:
                usable.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                logger.warning("consumer error: %s", error)
        return usable

    def handle_batch(self, batch: list[Message]) -> None:
        """Apply, dead-letter and commit one batch; retries transient failures until they
        pass, or until asked to stop: then the batch is left uncommitted, to be redelivered."""
        attempt = 0
        pending_dlq: list[tuple[Message, ItemOutcome]] | None = None
        while True:
            try:
                if pending_dlq is None:
                    result = self._apply(batch)
                    pending_dlq = [
                        (batch[o.index], o) for o in result.outcomes if o.status == REJECTED
                    ]
                    self._log_outcomes(batch, result)
                pending_dlq = self._dead_letter(pending_dlq)
                if pending_dlq:
                    raise TransientError(f"{len(pending_dlq)} dead letters not acknowledged")
                self._commit(batch)
                break
            except (TransientError, OperationalError, InterfaceError, KafkaException) as exc:
                attempt += 1
                reason = type(exc).__name__
                metrics.CONSUMER_RETRIES.labels(reason).inc()
                delay = min(
                    self.settings.backoff_max, self.settings.backoff_initial * 2 ** (attempt - 1)
                )
                logger.warning(
                    "batch failed (%s: %s); retry %d in %.1fs",
                    reason,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else reason,
                    attempt,
                    delay,
                )
                if self._stopping:
                    logger.warning("stopping during a failure: batch left uncommitted")
                    return
                self._wait_paused(delay)
        self.processed += len(batch)
        self._record_lag()

    def _apply(self, batch: list[Message]) -> BatchResult:
        values = [m.value() or b"" for m in batch]
        token = correlation_id.set(f"batch-{uuid.uuid4().hex[:12]}")
        try:
            close_old_connections()
            try:
                return self.ingest(values, source="kafka")
            except (OperationalError, InterfaceError):
                db_connection.close()  # a restarted server leaves a dead connection behind
                raise
            except DatabaseError:
                db_connection.close()
                return self._apply_one_by_one(values)
            except Exception:
                logger.exception("batch raised; applying its messages one by one")
                return self._apply_one_by_one(values)
        finally:
            correlation_id.reset(token)

    def _apply_one_by_one(self, values: list[bytes]) -> BatchResult:
        """Isolate a message that makes the pipeline fail, so it cannot block the partition."""
        outcomes: list[ItemOutcome] = []
        for index, value in enumerate(values):
            try:
                single = self.ingest([value], source="kafka").outcomes[0]
                outcomes.append(dataclasses.replace(single, index=index))
            except (OperationalError, InterfaceError):
                db_connection.close()
                raise
            except Exception as exc:  # a bug or a poison value: dead-letter it, move on
                db_connection.close()
                logger.exception("message %d could not be applied", index)
                outcomes.append(
                    ItemOutcome(index, None, REJECTED, PROCESSING_ERROR, type(exc).__name__)
                )
        return BatchResult(outcomes)

    def _log_outcomes(self, batch: list[Message], result: BatchResult) -> None:
        for outcome in result.outcomes:
            if outcome.status == DUPLICATE:
                continue
            message = batch[outcome.index]
            if outcome.status != REJECTED:
                continue
            headers = _headers(message)
            cid = next((headers[h] for h in CORRELATION_HEADERS if h in headers), None)
            token = correlation_id.set(accept_or_new(cid))
            try:
                logger.warning(
                    "event rejected",
                    extra={
                        "event_id": outcome.event_id,
                        "code": outcome.code,
                        "reason": outcome.message,
                        "source_topic": message.topic(),
                        "source_partition": message.partition(),
                        "source_offset": message.offset(),
                    },
                )
            finally:
                correlation_id.reset(token)
        logger.info(
            "batch applied",
            extra={
                "size": len(batch),
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": len(result.rejected),
                "offsets": _offset_ranges(batch),
            },
        )

    def _dead_letter(
        self, pending: list[tuple[Message, ItemOutcome]]
    ) -> list[tuple[Message, ItemOutcome]]:
        """Produce every pending dead letter; return those not acknowledged in time.

        A retry may write a dead letter twice (at-least-once), never zero times.
        """
        if not pending:
            return []
        delivered: set[int] = set()

        def on_delivery_of(position: int, code: str):
            def on_delivery(error, _message) -> None:
                if error is None:
                    delivered.add(position)
                    metrics.DLQ_SENT.labels(code).inc()

            return on_delivery

        for position, (message, outcome) in enumerate(pending):
            headers = [
                ("error.code", (outcome.code or "").encode()),
                ("error.message", (outcome.message or "").encode()),
                ("source.topic", message.topic().encode()),
                ("source.partition", str(message.partition()).encode()),
                ("source.offset", str(message.offset()).encode()),
            ]
            try:
                self.producer.produce(
                    self.settings.dlq_topic,
                    value=message.value(),
                    key=message.key(),
                    headers=headers,
                    on_delivery=on_delivery_of(position, outcome.code or ""),
                )
            except (BufferError, KafkaException) as exc:
                logger.warning("dead letter not queued: %s", exc)
        self.producer.flush(self.settings.dlq_timeout)
        return [entry for position, entry in enumerate(pending) if position not in delivered]

    def _commit(self, batch: list[Message]) -> None:
        offsets: dict[tuple[str, int], int] = {}
        for message in batch:
            key = (message.topic(), message.partition())
            offsets[key] = max(offsets.get(key, -1), message.offset() + 1)
        owned = [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in offsets.items()
            if (topic, partition) in self.assigned
        ]
        if owned:
            self.consumer.commit(offsets=owned, asynchronous=False)

    def _wait_paused(self, delay: float) -> None:
        """Back off without leaving the group: partitions paused, the consumer still polled."""
        partitions = [TopicPartition(t, p) for t, p in self.assigned]
        if partitions:
            self.consumer.pause(partitions)
        deadline = time.monotonic() + delay
        try:
            while time.monotonic() < deadline and not self._stopping:
                polled = self.consumer.consume(num_messages=100, timeout=0)
                self.carry.extend(self._usable(polled))  # prefetched before the pause
                self.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        finally:
            partitions = [TopicPartition(t, p) for t, p in self.assigned]
            if partitions:
                self.consumer.resume(partitions)

    def _record_lag(self) -> None:
        for topic, partition in list(self.assigned):
            tp = TopicPartition(topic, partition)
            try:
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                position = self.consumer.position([tp])[0].offset
            except KafkaException:
                continue
            if high >= 0 and position >= 0:
                metrics.CONSUMER_LAG.labels(topic, str(partition)).set(max(0, high - position))


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]


def _offset_ranges(batch: list[Message]) -> dict[str, list[int]]:
    ranges: dict[str, list[int]] = {}
    for message in batch:
        key = f"{message.topic()}[{message.partition()}]"
        low, high = ranges.get(key, [message.offset(), message.offset()])
        ranges[key] = [min(low, message.offset()), max(high, message.offset())]
    return ranges
