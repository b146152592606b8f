import random
import time
from datetime import timedelta

import orjson
from confluent_kafka import Producer
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ingest.synthetic import session_events, synthetic_events
from mastery.models import Topic

MAX_STUDENTS = 1_000_000
DEFAULT_TOPICS = [f"course.topic-{n}" for n in range(1, 9)]


class Command(BaseCommand):
    help = "Produce realistic synthetic learning events into Kafka (demos and load)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, required=True, help="events to produce")
        parser.add_argument("--students", type=int, default=100, help="distinct students")
        parser.add_argument("--rate", type=float, help="events per second (default: flat out)")
        parser.add_argument("--days", type=int, default=7, help="spread occurred_at over days")
        parser.add_argument("--seed", type=int, help="random seed (default: random)")
        parser.add_argument(
            "--mode",
            choices=("uniform", "sessions"),
            default="uniform",
            help="uniform: spread at random, in no order; sessions: 5-15 events a student"
            " on one topic within the hour, in occurred_at order (what platforms send)",
        )

    def handle(self, *args, count, students, rate, days, seed, mode, **options) -> None:
        if count < 1 or students < 1 or (rate is not None and rate <= 0) or days < 1:
            raise CommandError("--count, --students, --rate and --days must be positive")
        if students > MAX_STUDENTS:
            raise CommandError(f"--students at most {MAX_STUDENTS:,}")
        if days > settings.RETENTION_EVENTS_DAYS:
            raise CommandError(f"--days beyond retention ({settings.RETENTION_EVENTS_DAYS})")
        width = max(3, len(str(students)))
        student_ids = [f"s-{n:0{width}d}" for n in range(1, students + 1)]
        topics = list(Topic.objects.values_list("slug", flat=True)) or DEFAULT_TOPICS
        now = timezone.now()
        generate = session_events if mode == "sessions" else synthetic_events
        events = generate(
            student_ids=student_ids,
            topics=topics,
            start=now - timedelta(days=days),
            end=now - timedelta(seconds=1),
            count=count,
            rng=random.Random(seed),
        )
        producer = Producer(
            {
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                "enable.idempotence": True,
                "linger.ms": 20,
                "batch.num.messages": 10000,
                "queue.buffering.max.messages": 500000,
            }
        )
        failures = []
        started = time.monotonic()
        for sent, event in enumerate(events, start=1):
            while True:
                try:
                    producer.produce(
                        settings.KAFKA_EVENTS_TOPIC,
                        key=event["student_id"].encode(),
                        value=orjson.dumps(event),
                        on_delivery=lambda err, _msg: err and failures.append(err),
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            if rate is not None:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    producer.poll(0)
                    time.sleep(ahead)
            elif sent % 10000 == 0:
                producer.poll(0)
        producer.flush(60)
        elapsed = time.monotonic() - started
        if failures:
            raise CommandError(f"{len(failures)} events not delivered: {failures[0]}")
        self.stdout.write(f"produced {count} events in {elapsed:.1f}s ({count / elapsed:.0f}/s)")
