"""The consumer loop's decisions, with fake Kafka clients, a fake pipeline and a fake clock:
retry and backoff, dead letters before the commit, what is committed, pause and resume,
stopping mid-batch, oversized messages and the stall metrics. The real broker and
database are the process tier (tests/ingest/kafka/)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from django.db import OperationalError
from prometheus_client import REGISTRY

from ingest.consumer import (
    DLQ_RESERVE,
    PROCESSING_ERROR,
    TOO_LARGE,
    ConsumerSettings,
    EventConsumer,
)
from ingest.pipeline import ACCEPTED, REJECTED, BatchResult, ItemOutcome

TOPIC = "events"
DLQ = "dead-letters"
LIBRDKAFKA_FRAMING = 40  # about what librdkafka adds to key + value + headers per message
SPEC_HEADERS = ("error.code", "error.message", "source.topic", "source.partition", "source.offset")


class Stalled(Exception):
    """The fake clock ran past its budget: the loop would have waited for ever."""


class FakeClock:
    """`now()` for the consumer's clock; `sleep()` advances it, up to `budget` seconds."""

    def __init__(self, log: list, budget: float = 120.0):
        self.log = log
        self.budget = budget
        self.time = 1000.0
        self.started = self.time
        self.on_sleep: Callable[[], None] | None = None

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.log.append(("sleep", round(seconds, 6)))
        self.advance(seconds)
        if self.on_sleep is not None:
            self.on_sleep()

    def advance(self, seconds: float) -> None:
        self.time += seconds
        if self.time - self.started > self.budget:
            raise Stalled(f"still waiting after {self.budget} fake seconds")


class FakeMessage:
    def __init__(self, topic, partition, offset, value, key=b"s-1", headers=None, error=None):
        self._topic, self._partition, self._offset = topic, partition, offset
        self._value, self._key, self._headers, self._error = value, key, headers, error

    def value(self):
        return self._value

    def key(self):
        return self._key

    def topic(self):
        return self._topic

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def headers(self):
        return self._headers

    def error(self):
        return self._error


def _size(key, value, headers) -> int:
    texts = sum(len(name) + len(text) for name, text in headers or [])
    return len(key or b"") + len(value or b"") + texts + LIBRDKAFKA_FRAMING


def _message(partition: int, offset: int, item: bytes | tuple[bytes, bytes]) -> FakeMessage:
    key, value = item if isinstance(item, tuple) else (b"s-1", item)
    return FakeMessage(TOPIC, partition, offset, value, key=key)


class FakeConsumer:
    """One consumer of `TOPIC`: assigned every partition at its first `consume()`, as
    librdkafka does; hands out each partition's messages in order. A paused partition
    still yields the `fetched_ahead` messages librdkafka had fetched before the pause. An
    empty `consume()` takes its timeout, as a real one blocks."""

    def __init__(self, log: list, clock: FakeClock, partitions: dict[int, list]):
        self.log = log
        self.clock = clock
        self.logs = {
            p: [_message(p, offset, item) for offset, item in enumerate(items)]
            for p, items in partitions.items()
        }
        self.positions = dict.fromkeys(partitions, 0)
        self.paused: set[int] = set()
        self.fetched_ahead = 0
        self.fetched_until: dict[int, int] = {}
        self.assigned = False
        self.revoke_next: list[int] = []

    def append(self, partition: int, value: bytes) -> None:
        self.logs[partition].append(_message(partition, len(self.logs[partition]), value))

    def subscribe(self, topics, on_assign, on_revoke):
        assert topics == [TOPIC]
        self.on_assign, self.on_revoke = on_assign, on_revoke

    def consume(self, num_messages, timeout):
        if self.assigned and self.revoke_next:  # a rebalance, after the first assignment
            revoked, self.revoke_next = self.revoke_next, []
            for p in revoked:
                del self.logs[p], self.positions[p]
            self.on_revoke(self, [TopicPartition(TOPIC, p) for p in revoked])
        if not self.assigned:
            self.assigned = True
            self.on_assign(self, [TopicPartition(TOPIC, p) for p in self.logs])
        handed: list[FakeMessage] = []
        for p in sorted(self.logs):
            end = self.fetched_until[p] if p in self.paused else len(self.logs[p])
            available = self.logs[p][self.positions[p] : min(end, self.positions[p] + num_messages)]
            self.positions[p] += len(available)
            handed += available
            num_messages -= len(available)
        if not handed:
            self.clock.advance(timeout)
        return handed

    def pause(self, partitions):
        self.paused |= {tp.partition for tp in partitions}
        for tp in partitions:
            self.fetched_until[tp.partition] = self.positions[tp.partition] + self.fetched_ahead
        self.log.append(("pause", sorted(tp.partition for tp in partitions)))

    def resume(self, partitions):
        self.paused -= {tp.partition for tp in partitions}
        self.log.append(("resume", sorted(tp.partition for tp in partitions)))

    def commit(self, offsets, asynchronous):
        assert asynchronous is False
        self.log.append(("commit", {tp.partition: tp.offset for tp in offsets}))

    def position(self, partitions):
        return [
            TopicPartition(tp.topic, tp.partition, self.positions[tp.partition])
            for tp in partitions
        ]

    def get_watermark_offsets(self, partition, timeout=None, cached=False):
        self.log.append(("watermarks", partition.partition, cached))
        return 0, len(self.logs[partition.partition])

    def close(self):
        self.log.append(("close",))


class FakeProducer:
    """Refuses at produce() what is over `max_bytes`, as librdkafka does; its broker
    refuses a flush whose letters together are over `broker_max_bytes`. `acknowledge`
    False: nothing is delivered (a broker away)."""

    def __init__(self, log: list, *, max_bytes=1_000_000, broker_max_bytes=None):
        self.log = log
        self.max_bytes = max_bytes
        self.broker_max_bytes = broker_max_bytes
        self.acknowledge = True
        self.queued: list[tuple] = []
        self.delivered: list[dict] = []

    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None):
        if _size(key, value, headers) > self.max_bytes:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        letter = {"topic": topic, "key": key, "value": value, "headers": dict(headers or [])}
        self.queued.append((letter, on_delivery))
        self.log.append(("produce", letter["headers"].get("source.offset")))

    def flush(self, timeout=None):
        self.log.append(("flush",))
        if not self.acknowledge:
            return len(self.queued)
        flushed, self.queued = self.queued, []
        total = sum(_size(m["key"], m["value"], m["headers"].items()) for m, _ in flushed)
        refused = self.broker_max_bytes is not None and total > self.broker_max_bytes
        for letter, on_delivery in flushed:
            if refused:
                on_delivery(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), None)
            else:
                self.delivered.append(letter)
                self.log.append(("delivered", letter["headers"]["source.offset"]))
                on_delivery(None, None)
        return 0

    def poll(self, timeout=None):
        return 0


class FakeIngest:
    """The pipeline's contract without a database: `ok…` values are accepted, others
    rejected as invalid_json; `poison` values raise; `failures` are raised first, in turn."""

    def __init__(self, log: list, clock: FakeClock):
        self.log = log
        self.clock = clock
        self.failures: list[Exception] = []
        self.calls: list[tuple[float, list[bytes]]] = []
        self.on_call: Callable[[], None] | None = None

    def __call__(self, values, *, source):
        assert source == "kafka"
        self.calls.append((self.clock.now(), list(values)))
        self.log.append(("ingest", len(values)))
        if self.on_call is not None:
            self.on_call()
        if self.failures:
            raise self.failures.pop(0)
        if any(value.startswith(b"poison") for value in values):
            raise RuntimeError("the pipeline choked")
        return BatchResult([_outcome(index, value) for index, value in enumerate(values)])


def _outcome(index: int, value: bytes) -> ItemOutcome:
    if value.startswith(b"ok"):
        return ItemOutcome(index, value.decode(), ACCEPTED)
    return ItemOutcome(index, None, REJECTED, "invalid_json", "not a UTF-8 JSON document")


class Loop:
    """An EventConsumer on fakes, and the one log of what it did to them, in order."""

    def __init__(self, partitions: dict[int, list], *, broker_max_bytes=None, **settings):
        self.log: list[tuple] = []
        self.clock = FakeClock(self.log)
        self.kafka = FakeConsumer(self.log, self.clock, partitions)
        limit = settings.get("dlq_message_max_bytes", ConsumerSettings.dlq_message_max_bytes)
        self.producer = FakeProducer(self.log, max_bytes=limit, broker_max_bytes=broker_max_bytes)
        self.ingest = FakeIngest(self.log, self.clock)
        chosen = {"backoff_initial": 0.2, "backoff_max": 1.0, **settings}
        self.consumer = EventConsumer(
            ConsumerSettings(
                bootstrap_servers="fake:9092", group_id="g", topic=TOPIC, dlq_topic=DLQ, **chosen
            ),
            ingest=self.ingest,
            consumer=self.kafka,
            producer=self.producer,
            sleep=self.clock.sleep,
            clock=self.clock.now,
        )

    def run(self, **limits) -> int:
        return self.consumer.run(**{"idle_exit": 1.0, **limits})

    def calls(self, *kinds: str) -> list[tuple]:
        return [entry for entry in self.log if entry[0] in kinds]

    def attempt_gaps(self) -> list[float]:
        times = [at for at, _values in self.ingest.calls]
        return [round(later - earlier, 6) for earlier, later in itertools.pairwise(times)]


def _lag(partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "mastery_consumer_lag", {"topic": TOPIC, "partition": str(partition)}
    )


def _sample(name: str, labels: dict | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def _values(count: int, prefix: str = "ok") -> list[bytes]:
    return [f"{prefix}-{n}".encode() for n in range(count)]


# -- transient failures ---------------------------------------------------------------------


def test_a_database_outage_retries_the_batch_with_capped_exponential_backoff_while_paused():
    loop = Loop({0: _values(3), 1: _values(2)})
    loop.ingest.failures = [OperationalError("server closed the connection")] * 5

    assert loop.run() == 5

    assert len(loop.ingest.calls) == 6
    assert all(values == loop.ingest.calls[0][1] for _at, values in loop.ingest.calls)
    assert loop.attempt_gaps() == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])
    steps = [entry[0] for entry in loop.calls("ingest", "pause", "sleep", "resume", "commit")]
    collapsed = [kind for n, kind in enumerate(steps) if n == 0 or kind != steps[n - 1]]
    assert collapsed == ["ingest", "pause", "sleep", "resume"] * 5 + ["ingest", "commit"]
    assert loop.calls("pause", "resume") == [("pause", [0, 1]), ("resume", [0, 1])] * 5
    assert loop.calls("commit") == [("commit", {0: 3, 1: 2})]


def test_an_unacknowledged_dead_letter_holds_the_commit_back_until_it_is_delivered():
    loop = Loop({0: [b"ok-0", b"bad-1", b"ok-2"]})
    loop.producer.acknowledge = False

    def broker_back_after_three_tries() -> None:
        if len(loop.calls("flush")) == 3:
            loop.producer.acknowledge = True

    loop.clock.on_sleep = broker_back_after_three_tries
    assert loop.run() == 3

    assert len(loop.ingest.calls) == 1, "the database commit is not repeated"
    assert loop.calls("flush", "commit")[:5] == [("flush",)] * 4 + [("commit", {0: 3})]
    copies = [letter["headers"]["source.offset"] for letter in loop.producer.delivered]
    assert copies, "at least once, never zero times"
    assert set(copies) == {b"1"}
    assert loop.log.index(("delivered", b"1")) < loop.log.index(("commit", {0: 3}))


def test_the_backoff_is_applied_per_attempt_and_never_exceeds_its_cap():
    loop = Loop({0: _values(1)}, backoff_initial=0.5, backoff_max=3.0)
    loop.ingest.failures = [OperationalError("down")] * 6

    loop.run()

    assert loop.attempt_gaps() == pytest.approx([0.5, 1.0, 2.0, 3.0, 3.0, 3.0])


# -- dead letters and the commit --------------------------------------------------------------


def test_rejected_messages_are_dead_lettered_whole_with_key_and_headers_before_the_commit():
    loop = Loop({0: [b"ok-0", (b"s-42", b"{not json"), b"ok-2"], 1: [b"bad-value"]})

    assert loop.run() == 4

    letters = {letter["headers"]["source.offset"]: letter for letter in loop.producer.delivered}
    first = letters[b"1"]
    assert (first["topic"], first["key"], first["value"]) == (DLQ, b"s-42", b"{not json")
    assert list(first["headers"]) == list(SPEC_HEADERS)
    assert first["headers"]["error.code"] == b"invalid_json"
    assert first["headers"]["source.topic"] == TOPIC.encode()
    assert first["headers"]["source.partition"] == b"0"
    assert letters[b"0"]["headers"]["source.partition"] == b"1"
    order = [entry[0] for entry in loop.log if entry[0] in ("delivered", "commit")]
    assert order == ["delivered", "delivered", "commit"]


def test_committed_offsets_are_one_past_the_last_message_of_each_assigned_partition():
    loop = Loop({0: _values(4), 1: _values(2), 2: _values(3)})

    assert loop.run(max_messages=9) == 9

    assert loop.calls("commit") == [("commit", {0: 4, 1: 2, 2: 3})]


def test_a_partition_revoked_while_its_batch_retries_is_not_committed():
    loop = Loop({0: _values(2), 1: _values(3)})
    loop.ingest.failures = [OperationalError("down")]
    loop.kafka.revoke_next = [1]  # taken by the consume() of the backoff wait

    assert loop.run() == 5

    assert loop.calls("commit") == [("commit", {0: 2})]
    # Resumed as paused: librdkafka keeps a revoked partition's pause, so a partition
    # assigned again (its member lost and back, say) would never be fetched otherwise.
    assert loop.calls("pause", "resume") == [("pause", [0, 1]), ("resume", [0, 1])]


def test_a_batch_that_raises_is_applied_one_by_one_and_only_the_poison_is_dead_lettered():
    loop = Loop({0: [b"ok-0", b"poison-1", b"ok-2"]})

    assert loop.run() == 3

    assert [values for _at, values in loop.ingest.calls] == [
        [b"ok-0", b"poison-1", b"ok-2"],
        [b"ok-0"],
        [b"poison-1"],
        [b"ok-2"],
    ]
    [letter] = loop.producer.delivered
    assert letter["value"] == b"poison-1"
    assert letter["headers"]["error.code"] == PROCESSING_ERROR.encode()
    assert letter["headers"]["error.message"] == b"RuntimeError"
    assert loop.calls("commit") == [("commit", {0: 3})]


# -- stopping --------------------------------------------------------------------------------


def test_stop_during_a_failing_batch_leaves_it_uncommitted_and_run_returns():
    loop = Loop({0: _values(3)})
    loop.ingest.failures = [OperationalError("down")] * 100
    loop.clock.on_sleep = loop.consumer.stop  # SIGTERM arrives during the backoff

    assert loop.run(idle_exit=None) == 0

    assert loop.calls("commit") == []
    assert len(loop.ingest.calls) == 2, "one more attempt after the signal, then it gives up"
    assert loop.calls("pause", "resume") == [("pause", [0]), ("resume", [0])]
    assert loop.log[-1] == ("close",)
    assert _sample("mastery_consumer_batch_retrying_seconds") == 0.0


def test_stop_mid_run_finishes_the_batch_in_hand_commits_it_and_reads_no_more():
    loop = Loop({0: _values(5)}, batch_size=2)
    loop.ingest.on_call = loop.consumer.stop  # SIGTERM arrives while the batch is applied

    assert loop.run(idle_exit=None) == 2

    assert len(loop.ingest.calls) == 1
    assert loop.calls("commit") == [("commit", {0: 2})]
    assert loop.log[-1] == ("close",)


# -- oversized messages (issue 9, defect 3) ------------------------------------------------------


def test_a_message_over_the_event_cap_is_rejected_before_parsing_and_dead_lettered_whole():
    loop = Loop({0: [b"ok-0", b"x" * 5001, b"ok-2"]}, max_event_bytes=5000)
    rejected = _sample("mastery_events_rejected_total", {"source": "kafka", "code": TOO_LARGE})

    assert loop.run() == 3

    assert [values for _at, values in loop.ingest.calls] == [[b"ok-0", b"ok-2"]]
    [letter] = loop.producer.delivered
    assert letter["value"] == b"x" * 5001
    assert letter["headers"]["error.code"] == TOO_LARGE.encode()
    assert (
        letter["headers"]["error.message"]
        == b"the event is 5,001 bytes, over the cap of 5,000 bytes"
    )
    assert "dlq.truncated" not in letter["headers"]
    assert loop.calls("commit") == [("commit", {0: 3})]
    after = _sample("mastery_events_rejected_total", {"source": "kafka", "code": TOO_LARGE})
    assert after == rejected + 1


def test_a_message_the_producer_cannot_take_is_dead_lettered_truncated_and_the_partition_moves_on():
    """The defect: just over 1,000,000 bytes, rejected, and over the producer's limit."""
    huge = b"{" + b"x" * 1_000_100
    loop = Loop({0: [(b"s-7", huge), b"ok-1"], 1: [b"ok-0"]}, max_event_bytes=2_000_000)
    truncated = _sample("mastery_dlq_truncated_total", {"code": "invalid_json"})

    assert loop.run() == 3

    [letter] = loop.producer.delivered
    headers = letter["headers"]
    assert letter["key"] == b"s-7"
    assert list(headers)[:5] == list(SPEC_HEADERS)
    assert (headers["dlq.truncated"], headers["dlq.original_size"]) == (b"true", b"1000101")
    assert headers["error.code"] == b"invalid_json"
    assert huge.startswith(letter["value"])
    spec_bytes = sum(len(n) + len(v) for n, v in headers.items() if n in SPEC_HEADERS)
    assert len(letter["value"]) == 1_000_000 - DLQ_RESERVE - spec_bytes - len(b"s-7")
    assert loop.calls("commit") == [("commit", {0: 2, 1: 1})]
    assert _sample("mastery_dlq_truncated_total", {"code": "invalid_json"}) == truncated + 1


def test_the_default_cap_dead_letters_an_over_a_megabyte_message_as_too_large():
    loop = Loop({0: [b"x" * 1_000_100, b"ok-1"]})

    assert loop.run() == 2

    [letter] = loop.producer.delivered
    assert letter["headers"]["error.code"] == TOO_LARGE.encode()
    assert letter["headers"]["dlq.original_size"] == b"1000100"
    assert loop.calls("commit") == [("commit", {0: 2})]


def test_an_event_at_the_default_cap_fits_the_default_dead_letter_limit_whole():
    loop = Loop({0: [b"y" * ConsumerSettings.max_event_bytes]})

    loop.run()

    [letter] = loop.producer.delivered
    assert len(letter["value"]) == ConsumerSettings.max_event_bytes
    assert "dlq.truncated" not in letter["headers"]


def test_a_letter_the_broker_refuses_as_too_large_is_cut_down_until_it_is_taken():
    loop = Loop({0: [b"z" * 50_000]}, broker_max_bytes=20_000)

    assert loop.run() == 1

    [letter] = loop.producer.delivered
    assert letter["headers"]["dlq.original_size"] == b"50000"
    assert _size(letter["key"], letter["value"], letter["headers"].items()) <= 20_000
    assert len(letter["value"]) > 5_000, "halved a few times, not emptied"
    assert loop.calls("commit") == [("commit", {0: 1})]


def test_a_small_letter_refused_with_a_large_one_is_resent_alone_unchanged():
    """Each fits the broker's limit alone (~15,150 and ~650 bytes), not together."""
    small = b"s" * 500
    loop = Loop({0: [b"z" * 15_000, small]}, broker_max_bytes=15_500)

    assert loop.run() == 2

    assert [offset for _kind, offset in loop.calls("produce")] == [b"0", b"1", b"0", b"1"]
    letters = {letter["headers"]["source.offset"]: letter for letter in loop.producer.delivered}
    assert letters[b"1"]["value"] == small
    assert "dlq.truncated" not in letters[b"1"]["headers"]
    assert letters[b"0"]["value"] == b"z" * 15_000, "alone, it fits"
    assert loop.calls("commit") == [("commit", {0: 2})]


def test_a_hostile_key_too_long_for_any_letter_is_cut_too():
    loop = Loop({0: [(b"k" * 1_200_000, b"bad")]})

    assert loop.run() == 1

    [letter] = loop.producer.delivered
    assert letter["headers"]["dlq.original_key_size"] == b"1200000"
    assert letter["value"] == b"bad"
    assert b"k" * 1000 in letter["key"]


@pytest.mark.parametrize(
    ("field", "value"), [("max_event_bytes", 0), ("dlq_message_max_bytes", 1000)]
)
def test_settings_refuse_a_cap_that_leaves_no_room(field, value):
    with pytest.raises(ValueError, match=field):
        ConsumerSettings(
            bootstrap_servers="b", group_id="g", topic=TOPIC, dlq_topic=DLQ, **{field: value}
        )


def test_the_dead_letter_producer_gets_its_size_limit_from_the_settings():
    chosen = ConsumerSettings("b", "g", TOPIC, DLQ, dlq_message_max_bytes=250_000)

    assert chosen.producer_config()["message.max.bytes"] == 250_000


# -- stall metrics ----------------------------------------------------------------------------


def test_a_stalled_batch_shows_in_the_lag_and_the_retrying_gauge_and_clears_after():
    loop = Loop({0: _values(4), 1: _values(2)}, batch_size=3)
    loop.ingest.failures = [OperationalError("down")] * 4
    seen: list[tuple[float, float | None, float | None]] = []

    def scrape() -> None:
        if not loop.consumer.processed:
            seen.append((_sample("mastery_consumer_batch_retrying_seconds"), _lag(0), _lag(1)))
        if len(seen) == 3:
            loop.kafka.append(0, b"ok-late")  # the stream goes on during the stall

    loop.clock.on_sleep = scrape
    started = time.time()

    assert loop.run() == 7

    retrying = [value for value, _lag0, _lag1 in seen]
    assert retrying == sorted(retrying), retrying
    assert retrying[-1] >= 2.0, retrying
    assert seen[0][1:] == (4.0, 2.0), "the batch in hand is not applied: it counts as lag"
    assert seen[-1][1:] == (5.0, 2.0), "a message that arrives during the stall counts too"
    assert ("watermarks", 0, False) in loop.log, "paused partitions: asked of the broker"
    assert _sample("mastery_consumer_batch_retrying_seconds") == 0.0
    assert (_lag(0), _lag(1)) == (0.0, 0.0)
    assert _sample("mastery_consumer_last_commit_timestamp_seconds") >= started


def test_messages_fetched_before_the_pause_wait_in_hand_count_as_lag_and_are_applied_next():
    loop = Loop({0: _values(6)}, batch_size=2)
    loop.kafka.fetched_ahead = 2
    loop.ingest.failures = [OperationalError("down")]
    lags: list[float | None] = []
    loop.ingest.on_call = lambda: lags.append(_lag(0))

    assert loop.run() == 6

    batches = [values for _at, values in loop.ingest.calls]
    assert batches == [_values(6)[:2]] * 2 + [_values(6)[2:4], _values(6)[4:]]
    assert lags[1:] == [6.0, 4.0, 2.0]
    assert _lag(0) == 0.0
    assert loop.calls("commit") == [("commit", {0: 2}), ("commit", {0: 4}), ("commit", {0: 6})]


def test_without_failures_the_lag_is_read_from_the_cache_and_the_retrying_gauge_stays_zero():
    loop = Loop({0: _values(3)})

    loop.run()

    assert _sample("mastery_consumer_batch_retrying_seconds") == 0.0
    assert _lag(0) == 0.0
    assert loop.calls("watermarks") == [("watermarks", 0, True)]


def test_a_batch_that_hangs_without_failing_shows_as_held_when_scraped():
    """A statement waiting on a lock raises nothing: only a scrape-time figure shows it."""
    loop = Loop({0: _values(2)})
    held = []

    def hang():
        loop.clock.advance(42.0)  # the ingest call is stuck this long
        held.append(_sample("mastery_consumer_batch_in_hand_seconds"))

    loop.ingest.on_call = hang
    loop.run(max_messages=2)

    assert held == [42.0]
    assert _sample("mastery_consumer_batch_retrying_seconds") == 0.0  # nothing failed
    assert _sample("mastery_consumer_batch_in_hand_seconds") == 0.0  # released after commit
