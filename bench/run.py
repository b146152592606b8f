"""`make bench`: Kafka → PostgreSQL ingestion measured beside its raw floor, in one run.

1. Produce N synthetic events (default 200,000) to a fresh topic.
2. Floor: a plain confluent-kafka consume of that topic plus a PostgreSQL COPY of the
   same rows into a scratch table: the least any consumer must do.
3. Ours: the real EventConsumer (validation, inbox, mastery records, snapshots, offsets)
   over the same events; applied events/s and its ratio to the floor.
4. Latency: events produced at a steady rate (default 2,000/s) while the consumer runs;
   p50/p95 from produce to offset committed.

Runs in a database of its own (`<name>_bench`, recreated), never the dev data.
"""

import argparse
import os
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_database(url: str) -> str:
    """Recreate `<db>_bench` next to the configured database; return its URL."""
    parts = urlsplit(url.replace("postgres://", "postgresql://", 1))
    name = f"{parts.path.lstrip('/') or 'mastery'}_bench"
    with psycopg.connect(urlunsplit(parts), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mastery_project.settings.local")
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DEBUG"] = "false"  # as in production: no per-query debug bookkeeping
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


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
            messages = consumer.consume(num_messages=5000, timeout=1)
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
    consumer.close()
    return expected / elapsed


def make_consumer(servers: str, topic: str, group: str, batch_size: int, on_commit=None):
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

    return BenchConsumer(
        ConsumerSettings(
            bootstrap_servers=servers, group_id=group, topic=topic,
            dlq_topic=f"{topic}.dlq", batch_size=batch_size,
        )
    )  # fmt: skip


def ours(servers: str, topic: str, expected: int, batch_size: int) -> float:
    consumer = make_consumer(servers, topic, f"bench-{uuid.uuid4().hex[:8]}", batch_size)
    consumer.run(max_messages=expected, idle_exit=30)
    elapsed = time.perf_counter() - consumer.first_batch_at
    return consumer.processed / elapsed


def latency(servers: str, topic: str, events: list[dict], rate: float, batch_size: int):
    samples: list[float] = []

    def on_commit(batch):
        now = time.time()
        for message in batch:
            for key, value in message.headers() or []:
                if key == "bench.produced_at":
                    samples.append(now - float(value))

    consumer = make_consumer(
        servers, topic, f"bench-lat-{uuid.uuid4().hex[:8]}", batch_size, on_commit
    )
    worker = threading.Thread(
        target=consumer.run, kwargs={"max_messages": len(events), "idle_exit": 30}
    )
    worker.start()
    while not consumer.ever_assigned:
        time.sleep(0.1)
    produce(servers, topic, events, rate=rate)
    worker.join()
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.95) - 1], len(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--students", type=int, default=5_000)
    parser.add_argument("--topics", type=int, default=40)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=2_000)
    parser.add_argument("--latency-seconds", type=float, default=15)
    args = parser.parse_args()

    import random

    database_url = bench_database(os.environ["DATABASE_URL"])
    setup_django(database_url)
    from confluent_kafka.admin import AdminClient

    from ingest.synthetic import synthetic_events

    servers = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    admin = AdminClient({"bootstrap.servers": servers})
    run_id = uuid.uuid4().hex[:8]
    topic, latency_topic = f"bench.events.{run_id}", f"bench.latency.{run_id}"
    for name in (topic, f"{topic}.dlq", latency_topic, f"{latency_topic}.dlq"):
        create_topic(admin, name, args.partitions if "dlq" not in name else 1)

    rng = random.Random(8)
    now = datetime.now(UTC)
    students = [f"b-{n:06d}" for n in range(args.students)]
    topics = [f"course.topic-{n}" for n in range(args.topics)]
    events = list(synthetic_events(
        student_ids=students, topics=topics, start=now - timedelta(days=30),
        end=now - timedelta(minutes=1), count=args.events, rng=rng,
    ))  # fmt: skip
    print(f"producing {len(events):,} events ({args.students:,} students, {args.topics} topics)")
    produce(servers, topic, events)

    floor_rate = floor(servers, topic, len(events), database_url)
    our_rate = ours(servers, topic, len(events), args.batch_size)

    steady = list(synthetic_events(
        student_ids=students, topics=topics, start=now - timedelta(days=1),
        end=datetime.now(UTC), count=int(args.rate * args.latency_seconds), rng=rng,
    ))  # fmt: skip
    p50, p95, n = latency(servers, latency_topic, steady, args.rate, args.batch_size)

    print()
    print("| measure | ours | baseline (same run) | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| Kafka → PostgreSQL, events/s | {our_rate:,.0f} | {floor_rate:,.0f} (consume + COPY)"
        f" | {our_rate / floor_rate:.2f} | ≥ 20,000 and ≥ 0.5 |"
    )
    print(
        f"| produce → committed at {args.rate:,.0f}/s | p50 {p50 * 1000:.0f} ms,"
        f" p95 {p95 * 1000:.0f} ms ({n:,} events) | — | — | p95 < 250 ms |"
    )
    print(f"\n({os.cpu_count()} cores; batch size {args.batch_size}; {args.partitions} partitions)")


if __name__ == "__main__":
    main()
