"""Realistic synthetic learning events: demo data (`seed_demo`), load (`produce_events`) and
the ingestion benchmark (`bench/ingest.py`).

Each student gets a steady ability, so scores differ between students but stay plausible;
ids are random, so every call produces new events. Two shapes:

- `synthetic_events`: uniform over time, students and topics, in no order. Nearly every
  event opens a new (student, topic) record and a new daily snapshot: the worst case.
- `session_events`: what platforms send. Each student works on a few topics of its own,
  in sessions of 5-15 events on one topic within an hour, during the school day; the
  stream comes in `occurred_at` order, so each pair gets many events a day.
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
SESSION_EVENTS = (5, 15)  # events in one session, inclusive
SESSION_MINUTES = 60  # a session's events all occur within this long of its start
SCHOOL_DAY_HOURS = (8, 18)  # UTC hours in which sessions start
TOPICS_PER_STUDENT = 3


def _payload(event_type: str, skill: float, rng: random.Random) -> dict:
    if event_type == "exercise.completed":
        payload = {"exercise_id": f"ex-{rng.randint(1, EXERCISES_PER_TOPIC)}"}
        if rng.random() < 0.1:
            payload["exercises_total"] = EXERCISES_PER_TOPIC
        return payload
    if event_type == "quiz.submitted":
        max_score = 10
        score = min(max_score, max(0, round(rng.gauss(skill * max_score, 1.5))))
        return {"quiz_id": f"q-{rng.randint(1, 20)}", "score": score, "max_score": max_score}
    if event_type == "code.reviewed":
        quality = min(1.0, max(0.0, rng.gauss(skill, 0.1)))
        return {
            "submission_id": uuid.UUID(int=rng.getrandbits(128)).hex,
            "quality_score": round(quality, 3),
        }
    return {"duration_minutes": rng.randint(5, 90)}


def _document(
    event_type: str, student: str, topic: str, occurred: datetime, payload: dict, event_id: str
) -> dict:
    return {
        "event_id": event_id,
        "event_type": event_type,
        "student_id": student,
        "topic": topic,
        "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
        "payload": payload,
    }


def _event_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


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
        event_type = rng.choices(types, weights)[0]
        payload = _payload(event_type, ability[student], rng)
        occurred = start + timedelta(seconds=rng.uniform(0, span))
        event_id = _event_id(rng)
        yield _document(event_type, student, rng.choice(topics), occurred, payload, event_id)


def session_events(
    *,
    student_ids: Sequence[str],
    topics: Sequence[str],
    start: datetime,
    end: datetime,
    count: int,
    rng: random.Random,
    topics_per_student: int = TOPICS_PER_STUDENT,
) -> list[dict]:
    """`count` events in sessions, sorted by `occurred_at`, all within [start, end).

    A session is one student on one of its `topics_per_student` topics, on a random day,
    starting in the school day (UTC), with 5-15 events within the hour. The number of
    sessions follows from `count`, so a larger count means more sessions a student-day.
    The last session may be cut short to give exactly `count` events.
    """
    if end <= start:
        raise ValueError("end must be after start")
    ability = {s: rng.uniform(0.25, 0.98) for s in student_ids}
    per_student = min(topics_per_student, len(topics))
    studies = {s: rng.sample(list(topics), per_student) for s in student_ids}
    types, weights = zip(*EVENT_TYPE_WEIGHTS, strict=True)
    session = timedelta(minutes=SESSION_MINUTES)
    opens, closes = SCHOOL_DAY_HOURS
    first_day = datetime.combine(start.date(), datetime.min.time(), tzinfo=start.tzinfo)
    windows = []  # per day, when a session may start and still end inside [start, end)
    for n in range((end - first_day).days + 1):
        day = first_day + timedelta(days=n)
        earliest = max(start, day + timedelta(hours=opens))
        latest = min(end - session, day + timedelta(hours=closes))
        if earliest < latest:
            windows.append((earliest, (latest - earliest).total_seconds()))
    if not windows:
        raise ValueError("no school-day hour fits between start and end")
    timed: list[tuple[datetime, dict]] = []
    while len(timed) < count:
        student = rng.choice(student_ids)
        topic = rng.choice(studies[student])
        earliest, room = rng.choice(windows)
        begin = earliest + timedelta(seconds=rng.uniform(0, room))
        size = min(rng.randint(*SESSION_EVENTS), count - len(timed))
        offsets = sorted(rng.uniform(0, session.total_seconds()) for _ in range(size))
        moments = [begin + timedelta(seconds=offset) for offset in offsets]
        for at in moments:
            event_type = rng.choices(types, weights)[0]
            payload = _payload(event_type, ability[student], rng)
            timed.append((at, _document(event_type, student, topic, at, payload, _event_id(rng))))
    timed.sort(key=lambda item: item[0])  # by instant: the text form drops zero microseconds
    return [document for _, document in timed]
