"""The Kafka consumer loop: batches from `learning.events` into the ingestion pipeline.

Delivery is at-least-once and the inbox is idempotent, so every event is applied exactly
once. Offsets are committed only after the batch's database commit *and* the dead-letter
produce of its rejected messages were acknowledged. A transient failure (database down,
serialization failure, DLQ unavailable) pauses the partitions and retries the same batch
with capped exponential backoff; a permanently bad message is dead-lettered and never
blocks its partition: one too large to be dead-lettered as it is goes there cut down to
fit. `stop()` (the signal handlers) lets the batch in hand finish.
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
TOO_LARGE = "too_large"
CORRELATION_HEADERS = ("correlation_id", "x-correlation-id", "x-request-id")
JOIN_TIMEOUT = 30.0  # seconds an idle-exit run waits to be given partitions at all
LAG_QUERY_TIMEOUT = 1.0  # seconds a retrying batch waits for a partition's end offset
# Bytes of a dead letter's limit kept for what is not key, value or header text: the
# record's framing (~40), its batch's (61), the truncation headers and varints.
DLQ_RESERVE = 1024
MIN_DLQ_MESSAGE_BYTES = 4096  # the reserve, the five headers and a useful prefix
SIZE_REFUSALS = (KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE)


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
    # A larger message value is rejected as too_large without being parsed.
    max_event_bytes: int = 900_000
    # The dead-letter producer's message.max.bytes: librdkafka's default, and below Apache
    # Kafka's broker default (1,048,588), so a letter the producer takes the broker takes.
    dlq_message_max_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        if self.max_event_bytes < 1:
            raise ValueError("max_event_bytes must be at least 1")
        if self.dlq_message_max_bytes < MIN_DLQ_MESSAGE_BYTES:
            raise ValueError(f"dlq_message_max_bytes must be at least {MIN_DLQ_MESSAGE_BYTES}")

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
            "message.max.bytes": self.dlq_message_max_bytes,
        }


def _headers(message: Message) -> dict[str, str]:
    return {
        key.lower(): value.decode("utf-8", "replace") if isinstance(value, bytes) else ""
        for key, value in (message.headers() or [])
    }


def _refused_as_too_large(error: object) -> bool:
    return isinstance(error, KafkaError) and error.code() in SIZE_REFUSALS


@dataclass
class DeadLetter:
    """A rejected message on its way to the DLQ: the original as it is, until a size limit
    refuses it; then `room` bytes of its key and value, and headers that say so."""

    message: Message
    outcome: ItemOutcome
    room: int | None = None
    # In the producer's queue, its delivery not reported yet (the broker away): a retry
    # waits for it instead of queueing another copy of it.
    queued: bool = False
    reported: bool = False
    report: KafkaError | None = None  # the last delivery report's error; None: delivered

    def on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        self.queued, self.reported, self.report = False, True, error

    def produced(self, queued: bool) -> None:
        """A new delivery of this letter was asked for: queued, or refused at once."""
        self.queued, self.reported, self.report = queued, False, None

    def delivered(self) -> bool:
        return self.reported and self.report is None

    def headers(self) -> list[tuple[str, bytes]]:
        """The five headers of SPEC §2.2."""
        return [
            ("error.code", (self.outcome.code or "").encode()),
            ("error.message", (self.outcome.message or "").encode()),
            ("source.topic", self.message.topic().encode()),
            ("source.partition", str(self.message.partition()).encode()),
            ("source.offset", str(self.message.offset()).encode()),
        ]

    def content(self) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
        """(key, value, headers) to produce."""
        key, value, headers = self.message.key(), self.message.value(), self.headers()
        if self.room is None:
            return key, value, headers
        key, value = key or b"", value or b""
        headers += [("dlq.truncated", b"true"), ("dlq.original_size", str(len(value)).encode())]
        if len(key) > self.room // 2:  # only a hostile key is this long: the value comes first
            headers.append(("dlq.original_key_size", str(len(key)).encode()))
            key = key[: self.room // 2]
        return key, value[: self.room - len(key)], headers

    def shrink(self, message_max_bytes: int) -> bool:
        """Cut the letter down: to what the producer's limit leaves, or, if the broker
        refused even that, to half of what was sent. False when nothing is left to cut."""
        header_bytes = sum(len(name) + len(value) for name, value in self.headers())
        fits = max(0, message_max_bytes - DLQ_RESERVE - header_bytes)
        sent = self.room
        if sent is None:
            sent = len(self.message.key() or b"") + len(self.message.value() or b"")
        if sent == 0:
            return False
        self.room = fits if sent > fits else sent // 2
        return True


def pipeline_ingest(values: list[bytes], *, source: str) -> BatchResult:
    """The real pipeline behind the loop, with the housekeeping a long-lived process needs:
    a connection the server dropped is replaced before the batch, and one a failure may have
    left unusable (a restarted server, an aborted transaction) is closed after it, so the
    next call opens a fresh one. The loop itself never touches the database."""
    close_old_connections()
    try:
        return ingest_batch(values, source=source)
    except Exception:
        db_connection.close()
        raise


class EventConsumer:
    """One consumer process. `run()` until `stop()`, `max_messages` or `idle_exit`."""

    def __init__(
        self,
        settings: ConsumerSettings,
        *,
        ingest: Callable[..., BatchResult] = pipeline_ingest,
        consumer: Consumer | None = None,
        producer: Producer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.ingest = ingest
        self.sleep = sleep
        self.clock = clock
        self.consumer = consumer or Consumer(settings.consumer_config())
        self.producer = producer or Producer(settings.producer_config())
        self.assigned: set[tuple[str, int]] = set()
        self.carry: list[Message] = []
        self.processed = 0
        self._held_since: float | None = None
        # Read by the metrics server's thread at scrape time, so a batch that hangs (in a
        # statement waiting on a lock, say) shows although the loop itself is blocked.
        metrics.CONSUMER_BATCH_IN_HAND.set_function(self.batch_in_hand_seconds)
        self.last_activity = clock()
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
        self.last_activity = self.clock()
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
                self.last_activity = self.clock()
                self.handle_batch(batch)
        finally:
            self.close()
        return self.processed

    def _idle_for(self) -> float:
        """Idle time counts only while partitions are assigned: joining the group, or
        rejoining during a rebalance, can take seconds (SPEC §7) and is not idleness."""
        idle = self.clock() - self.last_activity
        if not self.assigned and idle < JOIN_TIMEOUT:
            return 0.0
        return idle

    def close(self) -> None:
        self.producer.flush(self.settings.dlq_timeout)
        self.consumer.close()  # leaves the group, so partitions move at once

    # -- rebalancing -----------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned |= {(tp.topic, tp.partition) for tp in partitions}
        self.last_activity = self.clock()
        self.ever_assigned = True
        logger.info("partitions assigned", extra={"partitions": _names(partitions)})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Offsets are committed synchronously after every batch, so what is done is
        # committed already; messages held for revoked partitions go to their new owner.
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self.assigned -= revoked
        self.last_activity = self.clock()
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
        pass, or until asked to stop: then the batch is left uncommitted, to be redelivered.
        While it fails, `/metrics` shows how long, and the lag it leaves behind."""
        attempt = 0
        taken_at = self._held_since = self.clock()
        pending: list[DeadLetter] | None = None
        try:
            while True:
                try:
                    if pending is None:
                        result = self._apply(batch)
                        pending = [
                            DeadLetter(batch[o.index], o)
                            for o in result.outcomes
                            if o.status == REJECTED
                        ]
                        self._log_outcomes(batch, result)
                    pending = self._dead_letter(pending)
                    if pending:
                        raise TransientError(f"{len(pending)} dead letters not acknowledged")
                    self._commit(batch)
                    break
                except (TransientError, OperationalError, InterfaceError, KafkaException) as exc:
                    attempt += 1
                    reason = type(exc).__name__
                    metrics.CONSUMER_RETRIES.labels(reason).inc()
                    metrics.CONSUMER_BATCH_RETRYING.set(self.clock() - taken_at)
                    self._record_lag(in_hand=batch, cached=False)
                    delay = min(
                        self.settings.backoff_max,
                        self.settings.backoff_initial * 2 ** (attempt - 1),
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
                    self._wait_paused(delay, taken_at)
        finally:
            metrics.CONSUMER_BATCH_RETRYING.set(0)
            self._held_since = None
        self.processed += len(batch)
        self._record_lag()

    def batch_in_hand_seconds(self) -> float:
        """How long the batch in hand has been held; 0 between batches."""
        held_since = self._held_since
        return 0.0 if held_since is None else self.clock() - held_since

    def _apply(self, batch: list[Message]) -> BatchResult:
        """Outcomes of the whole batch: a message over `max_event_bytes` is rejected as
        too_large before parsing, like an HTTP body over its limit; the rest are ingested."""
        values = [m.value() or b"" for m in batch]
        cap = self.settings.max_event_bytes
        fitting = [index for index, value in enumerate(values) if len(value) <= cap]
        if len(fitting) == len(values):
            return self._ingest(values)
        result = self._ingest([values[index] for index in fitting]) if fitting else BatchResult([])
        outcomes = {
            fitting[o.index]: dataclasses.replace(o, index=fitting[o.index])
            for o in result.outcomes
        }
        for index, value in enumerate(values):
            if index not in outcomes:
                message = f"the event is {len(value):,} bytes, over the cap of {cap:,} bytes"
                outcomes[index] = ItemOutcome(index, None, REJECTED, TOO_LARGE, message)
                metrics.EVENTS_REJECTED.labels("kafka", TOO_LARGE).inc()
        return BatchResult([outcomes[index] for index in range(len(values))], result.student_ids)

    def _ingest(self, values: list[bytes]) -> BatchResult:
        token = correlation_id.set(f"batch-{uuid.uuid4().hex[:12]}")
        try:
            try:
                return self.ingest(values, source="kafka")
            except (OperationalError, InterfaceError):
                raise  # the database is down or restarting: retry the batch, never skip it
            except DatabaseError:
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
                raise
            except Exception as exc:  # a bug or a poison value: dead-letter it, move on
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

    # -- dead letters ----------------------------------------------------------------------

    def _dead_letter(self, pending: list[DeadLetter]) -> list[DeadLetter]:
        """Produce every pending dead letter; return those not acknowledged in time.

        A letter still queued from an earlier attempt (no delivery report yet: the broker
        is away) is waited for, not queued again, so an outage does not multiply it; one
        the broker failed is produced again. A retry may still write a letter twice
        (at-least-once), never zero times. A letter the broker refuses as too large is
        sent again alone: it may only have shared a request with larger ones; refused
        alone, it is cut down until it is taken.
        """
        if not pending:
            return []
        for letter in pending:
            if not letter.queued:
                letter.produced(self._produce(letter))
        self.producer.flush(self.settings.dlq_timeout)
        delivered = [
            letter
            for letter in pending
            if letter.delivered()
            or (
                letter.reported
                and _refused_as_too_large(letter.report)
                and self._resend_alone(letter, cut=len(pending) == 1)
            )
        ]
        for letter in delivered:
            self._count_sent(letter)
        return [letter for letter in pending if letter not in delivered]

    def _count_sent(self, letter: DeadLetter) -> None:
        code = letter.outcome.code or ""
        metrics.DLQ_SENT.labels(code).inc()
        if letter.room is None:
            return
        metrics.DLQ_TRUNCATED.labels(code).inc()
        logger.warning(
            "dead letter truncated",
            extra={
                "code": code,
                "original_size": len(letter.message.value() or b""),
                "kept": letter.room,
                "source_topic": letter.message.topic(),
                "source_partition": letter.message.partition(),
                "source_offset": letter.message.offset(),
            },
        )

    def _produce(self, letter: DeadLetter) -> bool:
        """Queue one letter, cut down while the producer finds it too large to queue;
        False if it could not be queued."""
        limit = self.settings.dlq_message_max_bytes
        while True:
            key, value, headers = letter.content()
            try:
                self.producer.produce(
                    self.settings.dlq_topic,
                    value=value,
                    key=key,
                    headers=headers,
                    on_delivery=letter.on_delivery,
                )
                return True
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if _refused_as_too_large(error) and letter.shrink(limit):
                    continue
                logger.warning("dead letter not queued: %s", exc)
                return False
            except BufferError as exc:  # the local queue is full: the retry sends it
                logger.warning("dead letter not queued: %s", exc)
                return False

    def _resend_alone(self, letter: DeadLetter, *, cut: bool) -> bool:
        """Send one letter on its own until the broker takes it (True) or refuses it for
        another reason; `cut`: it was refused alone already, so cut it down first."""
        while True:
            if cut and not letter.shrink(self.settings.dlq_message_max_bytes):
                return False
            letter.produced(self._produce(letter))
            self.producer.flush(self.settings.dlq_timeout)
            if not (letter.reported and _refused_as_too_large(letter.report)):
                return letter.delivered()
            cut = True

    # -- offsets and lag -------------------------------------------------------------------

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
            metrics.CONSUMER_LAST_COMMIT.set_to_current_time()

    def _wait_paused(self, delay: float, taken_at: float) -> None:
        """Back off without leaving the group: partitions paused, the consumer still polled.

        The partitions paused are the ones resumed, also when a rebalance revoked them
        meanwhile (the broker lost the member, say): librdkafka keeps a partition's pause
        across a revoke, so one assigned again would stay paused and never be fetched."""
        paused = [TopicPartition(t, p) for t, p in self.assigned]
        if paused:
            self.consumer.pause(paused)
        deadline = self.clock() + delay
        try:
            while self.clock() < deadline and not self._stopping:
                polled = self.consumer.consume(num_messages=100, timeout=0)
                self.carry.extend(self._usable(polled))  # prefetched before the pause
                self.sleep(min(0.1, max(0.0, deadline - self.clock())))
                metrics.CONSUMER_BATCH_RETRYING.set(self.clock() - taken_at)
        finally:
            if paused:
                self.consumer.resume(paused)

    def _record_lag(self, *, in_hand: Sequence[Message] = (), cached: bool = True) -> None:
        """Messages from the first one not yet committed to the partition's end. Messages
        held (a failing batch, prefetched ones) count: they are not applied. A retrying
        batch asks the broker for the end, since paused partitions refresh no cache."""
        first_held: dict[tuple[str, int], int] = {}
        for message in (*in_hand, *self.carry):
            key = (message.topic(), message.partition())
            first_held[key] = min(first_held.get(key, message.offset()), message.offset())
        for topic, partition in sorted(self.assigned):
            tp = TopicPartition(topic, partition)
            try:
                _low, high = self.consumer.get_watermark_offsets(
                    tp, timeout=LAG_QUERY_TIMEOUT, cached=cached
                )
                start = first_held.get((topic, partition))
                if start is None:
                    start = self.consumer.position([tp])[0].offset
            except KafkaException:
                if cached:
                    continue
                return  # the broker does not answer: waiting on each partition helps no one
            if high >= 0 and start >= 0:
                metrics.CONSUMER_LAG.labels(topic, str(partition)).set(max(0, high - start))


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]


def _offset_ranges(batch: list[Message]) -> dict[str, list[int]]:
    ranges: dict[str, list[int]] = {}
    for message in batch:
        key = f"{message.topic()}[{message.partition()}]"
        low, high = ranges.get(key, [message.offset(), message.offset()])
        ranges[key] = [min(low, message.offset()), max(high, message.offset())]
    return ranges
