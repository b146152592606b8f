"""Predictions (SPEC §3.1, §8): the latency of `POST /predictions/next-week` on a cache miss
and on a hit, and the back-test over three kinds of history.

- Latency: one student with `topics` topics and 30 days of snapshots; the request goes
  through Django's whole stack in this process (JWT, rate limit, the audited lookup, the
  prediction, its record on a miss), without a network; a miss is forced by retiring the
  student's cached entries first (what an ingested event does). SPEC §8: < 20 ms / < 3 ms.
- Back-test (`--backtest KIND`): a history of KIND is ingested through the real pipeline into
  a database of its own, then `manage.py backtest_predictions` prints its table:
  `demo` (`seed_demo`: 40 students, 3 weeks of uniform random events), `sessions` (the
  ingestion benchmark's sessions of 5-15 events per student and topic within an hour, in
  time order, over `--days` days), `steps` (an assignment every 10 days in each topic,
  nothing in between, each student's skill drifting up or down).

`predictions_bench()` needs Django set up on a migrated database; `make bench` can call it
after bench/run.py's set-up. Run alone, `python bench/predictions.py` uses a database of
its own (`<name>_bench_predictions[_KIND]`, recreated).
"""

import argparse
import io
import math
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_STUDENT = "bench-predictions"
EXERCISES_PER_TOPIC = 20


def _ms(call: Callable[[], object], repeat: int, before: Callable[[], object] | None = None):
    """Median and p95 wall time of `call` in milliseconds, after one warm-up call; `before`
    runs untimed ahead of each call."""
    if before:
        before()
    call()
    samples = []
    for _ in range(repeat):
        if before:
            before()
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[math.ceil(0.95 * len(samples)) - 1]


def _event(student: str, topic: str, at: datetime, event_type: str, payload: dict) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "student_id": student,
        "topic": topic,
        "occurred_at": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "payload": payload,
    }


def _ingest(events: list[dict]) -> int:
    from ingest.pipeline import ingest_batch

    accepted = 0
    events.sort(key=lambda e: e["occurred_at"])
    for start in range(0, len(events), 2000):
        accepted += ingest_batch(events[start : start + 2000], source="http").accepted
    return accepted


# --- histories -------------------------------------------------------------------------------


class Learner:
    """A student's state in one unit: exercises done, and a skill that drifts up or down."""

    def __init__(self, rng: random.Random):
        self.skill = rng.uniform(0.2, 0.8)
        self.growth = rng.uniform(-0.02, 0.1)  # per assignment; some get worse
        self.done = 0


def session_history(
    *, students: int, topics: int, days: int, now: datetime, rng: random.Random
) -> list[dict]:
    """The ingestion benchmark's realistic stream (`ingest.synthetic.session_events`: each
    student on a few topics of its own, in sessions of 5-15 events within the hour, in time
    order), about 8 events per student and day."""
    from ingest.synthetic import session_events

    return session_events(
        student_ids=[f"sess-{s:04d}" for s in range(students)],
        topics=[f"course.topic-{n}" for n in range(topics)],
        start=now - timedelta(days=days),
        end=now - timedelta(minutes=1),
        count=8 * students * days,
        rng=rng,
    )


def step_history(
    *, students: int, topics: int, days: int, now: datetime, rng: random.Random
) -> list[dict]:
    """An assignment every 10 days in each topic (exercises, a quiz, a review on that day),
    nothing in between: mastery moves in steps."""
    events = []
    for s in range(students):
        student = f"step-{s:04d}"
        offset = rng.randint(0, 9)
        for t in range(topics):
            topic = f"course.unit-{t}"
            learner = Learner(rng)
            for day in range(days - offset, 0, -10):
                at = (now - timedelta(days=day)).replace(hour=14, minute=0)
                for n in range(rng.randint(2, 4)):
                    if learner.done < EXERCISES_PER_TOPIC:
                        learner.done += 1
                        payload = {
                            "exercise_id": f"ex-{learner.done}",
                            "exercises_total": EXERCISES_PER_TOPIC,
                        }
                        events.append(
                            _event(
                                student,
                                topic,
                                at + timedelta(minutes=n),
                                "exercise.completed",
                                payload,
                            )
                        )
                learner.skill = min(0.98, max(0.05, learner.skill + learner.growth))
                score = min(10, max(0, round(rng.gauss(learner.skill * 10, 1.5))))
                quiz = {"quiz_id": f"a-{day}", "score": score, "max_score": 10}
                events.append(
                    _event(student, topic, at + timedelta(minutes=30), "quiz.submitted", quiz)
                )
                review = {
                    "submission_id": uuid.uuid4().hex,
                    "quality_score": round(learner.skill, 3),
                }
                events.append(
                    _event(student, topic, at + timedelta(minutes=40), "code.reviewed", review)
                )
    return events


def backtest_on(kind: str, *, students: int, days: int, seed: int) -> str:
    """Seed a history of `kind`, run `backtest_predictions`, return what it printed."""
    from django.core.management import call_command
    from django.utils import timezone

    rng = random.Random(seed)
    now = timezone.now()
    started = time.perf_counter()
    if kind == "demo":
        call_command("seed_demo", "--force", stdout=io.StringIO())
        accepted = None
    else:
        build = session_history if kind == "sessions" else step_history
        topics = 6 if kind == "sessions" else 4
        accepted = _ingest(build(students=students, topics=topics, days=days, now=now, rng=rng))
    seeded = time.perf_counter() - started
    out = io.StringIO()
    started = time.perf_counter()
    call_command("backtest_predictions", stdout=out)
    ran = time.perf_counter() - started
    what = "seed_demo" if accepted is None else f"{accepted} events ingested"
    return f"{out.getvalue()}\n\n({kind}: {what} in {seeded:.0f} s; back-test in {ran:.1f} s)"


# --- latency ----------------------------------------------------------------------------------


def seed_student(*, topics: int, days: int = 30) -> None:
    """One student in sessions on `topics` topics over the last `days` days."""
    from django.utils import timezone

    from ingest.synthetic import session_events

    now = timezone.now()
    _ingest(
        session_events(
            student_ids=[BENCH_STUDENT],
            topics=[f"bench.topic-{t}" for t in range(topics)],
            start=now - timedelta(days=days),
            end=now - timedelta(minutes=1),
            count=12 * topics * days // 2,
            rng=random.Random(7),
            topics_per_student=topics,
        )
    )


def predictions_bench(*, topics: int = 5, repeat: int = 200) -> list[dict]:
    """Seeds, measures, prints a table and returns the figures (for bench/results.json).

    Beside each request: `POST /mastery/query` of the same student through the same stack
    (authentication, rate limit, the audited lookup: what every read pays), and the
    prediction service alone (no request), which shows what the prediction itself costs.
    """
    from django.test import override_settings
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    from analytics.services.predictions import (
        prediction_cache_invalidate,
        prediction_next_week_serve,
        today_utc,
    )
    from mastery.models import Student, User

    seed_student(topics=topics)
    student = Student.objects.get(student_id=BENCH_STUDENT)
    admin, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"role": User.Role.ADMIN}
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(admin).access_token}")
    body = {"student_id": BENCH_STUDENT}

    def ask(path: str) -> Callable[[], None]:
        def call() -> None:
            response = client.post(path, body, format="json")
            assert response.status_code == 200, response.content

        return call

    def serve() -> None:
        prediction_next_week_serve(student=student, topic=None, today=today_utc())

    def retire() -> None:
        prediction_cache_invalidate([BENCH_STUDENT])

    with override_settings(RATE_LIMIT_MASTERY="100000000/m", ALLOWED_HOSTS=["testserver"]):
        miss = _ms(ask("/api/v1/predictions/next-week"), repeat, before=retire)
        hit = _ms(ask("/api/v1/predictions/next-week"), repeat)
        query = _ms(ask("/api/v1/mastery/query"), repeat)
        service_miss = _ms(serve, repeat, before=retire)
        service_hit = _ms(serve, repeat)
    reads = "POST /mastery/query of the same student, same stack"
    figures = [
        {"measure": f"next-week, cache miss ({topics} topics x 30 days)", "target_ms": 20,
         "median_ms": miss[0], "p95_ms": miss[1], "baseline_ms": query[0], "baseline": reads},
        {"measure": "next-week, cache hit", "target_ms": 3, "median_ms": hit[0],
         "p95_ms": hit[1], "baseline_ms": query[0], "baseline": reads},
        {"measure": "the prediction service alone, miss (compute and record)",
         "median_ms": service_miss[0], "p95_ms": service_miss[1]},
        {"measure": "the prediction service alone, hit (one Redis round trip)",
         "median_ms": service_hit[0], "p95_ms": service_hit[1]},
    ]  # fmt: skip
    print()
    print("| measure | median | p95 | target (SPEC §8) |")
    print("| --- | --- | --- | --- |")
    for f in figures:
        median, p95 = f"{f['median_ms']:.2f} ms", f"{f['p95_ms']:.2f} ms"
        target = f"< {f['target_ms']} ms" if "target_ms" in f else "—"
        print(f"| {f['measure']} | {median} | {p95} | {target} |")
    print(f"| {reads} | {query[0]:.2f} ms | {query[1]:.2f} ms | — |")
    print(
        f"\n({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {repeat} calls each, "
        "requests through Django's whole stack in one process, no network)"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--backtest", choices=("demo", "sessions", "steps"))
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    suffix = f"_{args.backtest}" if args.backtest else ""
    # A history longer than the events' retention (90 days) is only ingestible with more.
    os.environ["RETENTION_EVENTS_DAYS"] = str(max(90, args.days + 1))
    os.environ["CACHE_KEY_PREFIX"] = f"bench-predictions{suffix}"
    from bench.run import bench_database, setup_django

    setup_django(bench_database(os.environ["DATABASE_URL"], None, suffix=f"_predictions{suffix}"))
    if args.backtest:
        print(backtest_on(args.backtest, students=args.students, days=args.days, seed=args.seed))
    else:
        predictions_bench(topics=args.topics, repeat=args.repeat)


if __name__ == "__main__":
    main()
