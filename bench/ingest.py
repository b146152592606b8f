"""Kafka → PostgreSQL ingestion (SPEC §8), each workload beside its raw floor, in one run.

Workloads, both produced to a fresh topic (key = `student_id`, so each student's events
stay in order on one partition) and consumed by the real `EventConsumer` (validation,
inbox, records, snapshots, offsets after the commit):

- *realistic*: `session_events`, a school day in time order: each student on a few topics
  of its own, sessions of 5-15 events on one topic within the hour, 14 days;
- *worst case*: `synthetic_events`, uniform over 30 days and every (student, topic) pair,
  in no order: nearly every event opens a new record and a new snapshot.

The consumer runs in a process of its own, as `consume_events` does (`python -m
bench.ingest consume`, which freezes the start-up heap as the command does): a consumer
sharing its process with the benchmark's hundreds of thousands of generated events would
spend a third of its time in the garbage collector walking them.

Floor: a plain confluent-kafka consume of the same topic plus a `COPY` of the same events
into a scratch table with a primary key, committed per batch like ours. Each measurement
is repeated (`runs`), the tables emptied between runs; the median is reported with the
load average beside it. Latency: events produced at a steady rate while the consumer
runs; produce → offset committed, p50/p95/p99.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent

BATCH_SIZE = 5_000
PARTITIONS = 6
SIZES = {  # events per workload, latency seconds
    "small": {"realistic": 60_000, "worst": 40_000, "latency_seconds": 8},
    "default": {"realistic": 300_000, "worst": 200_000, "latency_seconds": 15},
    "large": {"realistic": 1_400_000, "worst": 500_000, "latency_seconds": 30},
}
STUDENTS = 5_000
TOPICS = 40
LATENCY_RATE = 2_000


def load() -> float:
    """The 1-minute load average: other work on the machine, noted beside each figure."""
    return os.getloadavg()[0]


def create_topic(admin, name: str, partitions: int) -> None:
    from confluent_kafka.admin import NewTopic

    for future in admin.create_topics([NewTopic(name, partitions, -1)]).values():
        future.result(30)


def produce(servers: str, topic: str, events: list[dict], rate: float | None = None) -> None:
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": servers, "linger.ms": 5, "queue.buffering.max.messages": 1000000}
    )
    started = time.monotonic()
    for n, event in enumerate(events, start=1):
        headers = [("bench.produced_at", str(time.time()).encode())] if rate else None
        while True:
            try:
                producer.produce(
                    topic, key=event["student_id"].encode(), value=orjson.dumps(event),
                    headers=headers,
                )  # fmt: skip
                break
            except BufferError:
                producer.poll(0.01)
        if rate:
            ahead = n / rate - (time.monotonic() - started)
            if ahead > 0:
                producer.poll(0)
                time.sleep(ahead)
    producer.flush(120)


def floor(servers: str, topic: str, expected: int, database_url: str) -> float:
    """Plain consume + COPY of the same rows: events/s."""
    import psycopg
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"bench-floor-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor (event_id text PRIMARY KEY,"
            " student_id text, topic text, occurred_at timestamptz, payload jsonb)"
        )
        conn.execute("TRUNCATE bench_floor")
        conn.commit()
        seen, started = 0, None
        while seen < expected:
            messages = consumer.consume(num_messages=BATCH_SIZE, timeout=1)
            if not messages:
                continue
            started = started or time.perf_counter()
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY bench_floor (event_id, student_id, topic, occurred_at, payload)"
                    " FROM STDIN"
                ) as copy,
            ):
                for message in messages:
                    event = orjson.loads(message.value())
                    copy.write_row(
                        (event["event_id"], event["student_id"], event["topic"],
                         event["occurred_at"], orjson.dumps(event["payload"]).decode())
                    )  # fmt: skip
            conn.commit()
            consumer.commit(asynchronous=False)
            seen += len(messages)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_floor")
        conn.commit()
    consumer.close()
    return expected / elapsed


def make_consumer(
    servers: str, topic: str, group: str, batch_size: int, on_commit=None, ready=None
):
    """The real consumer, timed from its first batch; `on_commit` sees each committed
    batch, `ready` (a path) is touched once partitions are assigned."""
    from ingest.consumer import ConsumerSettings, EventConsumer

    class BenchConsumer(EventConsumer):
        first_batch_at: float | None = None

        def handle_batch(self, batch):
            self.first_batch_at = self.first_batch_at or time.perf_counter()
            super().handle_batch(batch)

        def _commit(self, batch):
            super()._commit(batch)
            if on_commit:
                on_commit(batch)

        def _on_assign(self, consumer, partitions):
            super()._on_assign(consumer, partitions)
            if ready is not None:
                ready.touch()

    return BenchConsumer(
        ConsumerSettings(
            bootstrap_servers=servers, group_id=group, topic=topic,
            dlq_topic=f"{topic}.dlq", batch_size=batch_size,
        )
    )  # fmt: skip


def consume(topic: str, expected: int, batch_size: int, ready: Path | None) -> dict:
    """In the consumer's own process: consume `expected` events; the rate from the first
    batch on, and each event's produce → committed time where it carries one."""
    samples: list[float] = []

    def on_commit(batch):
        now = time.time()
        for message in batch:
            for key, value in message.headers() or []:
                if key == "bench.produced_at":
                    samples.append(now - float(value))

    servers = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    group = f"bench-{uuid.uuid4().hex[:8]}"
    consumer = make_consumer(servers, topic, group, batch_size, on_commit, ready)
    gc.collect()
    gc.freeze()  # as consume_events does: the start-up heap is never garbage
    cpu = time.process_time()
    consumer.run(max_messages=expected, idle_exit=30)
    elapsed = time.perf_counter() - consumer.first_batch_at
    if consumer.processed < expected:
        raise RuntimeError(f"consumed {consumer.processed:,} of {expected:,} events")
    return {
        "rate": consumer.processed / elapsed,
        "cpu_us_per_event": (time.process_time() - cpu) / consumer.processed * 1e6,
        "latencies": sorted(samples),
    }


def consumer_process(topic: str, expected: int, batch_size: int, ready: Path | None = None):
    """Start `python -m bench.ingest consume` on the bench database; returns the process."""
    command = [sys.executable, "-m", "bench.ingest", "consume", topic, str(expected)]
    command += ["--batch-size", str(batch_size)]
    if ready is not None:
        command += ["--ready", str(ready)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def result_of(process: subprocess.Popen) -> dict:
    out, _ = process.communicate(timeout=3600)
    if process.returncode:
        raise RuntimeError(f"the consumer process exited with {process.returncode}")
    return orjson.loads(out.strip().splitlines()[-1])


def ours(topic: str, expected: int, batch_size: int) -> float:
    return result_of(consumer_process(topic, expected, batch_size))["rate"]


def latency(servers: str, topic: str, events: list[dict], rate: float, batch_size: int):
    ready = Path(tempfile.mkdtemp(prefix="bench-latency-")) / "assigned"
    process = consumer_process(topic, len(events), batch_size, ready)
    try:  # the producer starts once the consumer holds its partitions
        deadline = time.monotonic() + 60
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the consumer process was not assigned its partitions")
            time.sleep(0.1)
        produce(servers, topic, events, rate=rate)
        samples = result_of(process)["latencies"]
    finally:
        shutil.rmtree(ready.parent, ignore_errors=True)
        if process.poll() is None:
            process.kill()

    def at(share: float) -> float:
        return samples[max(0, int(len(samples) * share) - 1)]

    return at(0.5), at(0.95), at(0.99), len(samples)


def empty_tables() -> None:
    """What ingestion wrote (inbox, records, snapshots, students, topics), so that each
    repetition starts from the same empty state."""
    from django.db import connection

    from ingest.models import InboxEvent
    from mastery.models import MasteryRecord, Snapshot, Student, Topic

    tables = [m._meta.db_table for m in (InboxEvent, Snapshot, MasteryRecord, Student, Topic)]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        cursor.execute("CHECKPOINT")  # each run starts from the same WAL state


def ingest_bench(
    *, size: str = "default", runs: int = 3, batch_size: int = BATCH_SIZE
) -> list[dict]:
    """Both workloads (median of `runs` runs each, beside the floor's median) and the
    produce → committed latency. Needs Django set up on a migrated bench database."""
    from confluent_kafka.admin import AdminClient
    from django.db import connection

    from ingest.synthetic import session_events, synthetic_events

    sizes = SIZES[size]
    servers = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    database_url = os.environ["DATABASE_URL"]
    admin = AdminClient({"bootstrap.servers": servers})
    run_id = uuid.uuid4().hex[:8]
    rng = random.Random(8)
    now = datetime.now(UTC)
    students = [f"b-{n:06d}" for n in range(STUDENTS)]
    topics = [f"course.topic-{n}" for n in range(TOPICS)]
    workloads = {
        "realistic": session_events(
            student_ids=students, topics=topics, start=now - timedelta(days=14),
            end=now - timedelta(minutes=1), count=sizes["realistic"], rng=rng,
        ),
        "worst": list(synthetic_events(
            student_ids=students, topics=topics, start=now - timedelta(days=30),
            end=now - timedelta(minutes=1), count=sizes["worst"], rng=rng,
        )),
    }  # fmt: skip
    described = {
        "realistic": f"realistic: sessions in time order, {len(workloads['realistic']):,} events,"
        f" {STUDENTS:,} students x 3 of {TOPICS} topics, 14 days",
        "worst": f"worst case: uniform, {len(workloads['worst']):,} events, {STUDENTS:,}"
        f" students x {TOPICS} topics, 30 days",
    }
    rows = []
    for name, events in workloads.items():
        topic = f"bench.{name}.{run_id}"
        for each in (topic, f"{topic}.dlq"):
            create_topic(admin, each, PARTITIONS if each == topic else 1)
        print(f"ingest: producing {described[name]}", flush=True)
        produce(servers, topic, events)
        count = len(events)
        workloads[name] = events = None  # this process holds no events while others measure
        gc.collect()
        floors, rates, loads = [], [], []
        for attempt in range(runs):
            empty_tables()
            loads.append(load())
            floors.append(floor(servers, topic, count, database_url))
            rates.append(ours(topic, count, batch_size))
            print(
                f"ingest: {name} run {attempt + 1}/{runs}: {rates[-1]:,.0f} events/s,"
                f" floor {floors[-1]:,.0f} (load {loads[-1]:.1f})",
                flush=True,
            )
        target = 20_000 if name == "realistic" else 10_000
        mine, base = statistics.median(rates), statistics.median(floors)
        rows.append(
            {
                "measure": f"Kafka → PostgreSQL, {described[name]}",
                "ours": f"{mine:,.0f} events/s",
                "baseline": f"{base:,.0f} events/s (plain consume + COPY)",
                "ratio": mine / base,
                "target": f"≥ {target:,} events/s",
                "met": mine >= target,
                "load": statistics.median(loads),
                "figures": {"events_per_s": rates, "floor_per_s": floors, "loads": loads},
            }
        )
    empty_tables()
    topic = f"bench.latency.{run_id}"
    for each in (topic, f"{topic}.dlq"):
        create_topic(admin, each, PARTITIONS if each == topic else 1)
    steady = session_events(
        student_ids=students, topics=topics, start=now - timedelta(days=1),
        end=now - timedelta(seconds=1), count=int(LATENCY_RATE * sizes["latency_seconds"]),
        rng=rng,
    )  # fmt: skip
    before = load()
    p50, p95, p99, n = latency(servers, topic, steady, LATENCY_RATE, batch_size)
    rows.append(
        {
            "measure": f"produce → committed at a steady {LATENCY_RATE:,} events/s",
            "ours": f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
            f" ({n:,} events)",
            "baseline": "—",
            "ratio": None,
            "target": "p95 < 250 ms",
            "met": p95 < 0.25,
            "load": before,
            "figures": {"p50_s": p50, "p95_s": p95, "p99_s": p99, "events": n},
        }
    )
    connection.close()
    return rows


def main() -> None:
    """`python -m bench.ingest consume TOPIC EXPECTED`: the measured consumer's process."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("command", choices=("consume",))
    parser.add_argument("topic")
    parser.add_argument("expected", type=int)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--ready", type=Path, help="touched once partitions are assigned")
    args = parser.parse_args()
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DEBUG"] = "false"
    import django

    django.setup()
    print(orjson.dumps(consume(args.topic, args.expected, args.batch_size, args.ready)).decode())


if __name__ == "__main__":
    main()
