"""Realistic synthetic learning events: demo data (`seed_demo`) and load (`produce_events`).

Each student gets a steady ability, so scores differ between students but stay plausible;
ids are random, so every call produces new events.
"""

import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

EVENT_TYPE_WEIGHTS = (
    ("exercise.completed", 0.4),
    ("quiz.submitted", 0.25),
    ("code.reviewed", 0.2),
    ("session.completed", 0.15),
)
EXERCISES_PER_TOPIC = 12


def synthetic_events(
    *,
    student_ids: Sequence[str],
    topics: Sequence[str],
    start: datetime,
    end: datetime,
    count: int,
    rng: random.Random,
) -> Iterator[dict]:
    """`count` events spread uniformly over [start, end), in no particular order."""
    ability = {s: rng.uniform(0.25, 0.98) for s in student_ids}
    types, weights = zip(*EVENT_TYPE_WEIGHTS, strict=True)
    span = (end - start).total_seconds()
    for _ in range(count):
        student = rng.choice(student_ids)
        skill = ability[student]
        event_type = rng.choices(types, weights)[0]
        if event_type == "exercise.completed":
            payload = {"exercise_id": f"ex-{rng.randint(1, EXERCISES_PER_TOPIC)}"}
            if rng.random() < 0.1:
                payload["exercises_total"] = EXERCISES_PER_TOPIC
        elif event_type == "quiz.submitted":
            max_score = 10
            score = min(max_score, max(0, round(rng.gauss(skill * max_score, 1.5))))
            payload = {"quiz_id": f"q-{rng.randint(1, 20)}", "score": score, "max_score": max_score}
        elif event_type == "code.reviewed":
            quality = min(1.0, max(0.0, rng.gauss(skill, 0.1)))
            payload = {
                "submission_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                "quality_score": round(quality, 3),
            }
        else:
            payload = {"duration_minutes": rng.randint(5, 90)}
        occurred = start + timedelta(seconds=rng.uniform(0, span))
        yield {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "event_type": event_type,
            "student_id": student,
            "topic": rng.choice(topics),
            "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
            "payload": payload,
        }
