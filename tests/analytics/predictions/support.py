"""Builders for the prediction tests: snapshots for the pure tests, and day-by-day work of
a student for the tests that seed the database through the real pipeline."""

import uuid
from datetime import date, timedelta

from django.utils import timezone

from analytics.domain.forecast import PairHistory, Snap
from mastery.domain.formula import DEFAULT_WEIGHTS, Components, mastery_score
from tests.factories import event_document, ingest_all

TODAY = date(2026, 5, 30)
LOOPS, BASICS = "python.loops", "python.basics"


def snap(days_ago: int, *, today: date = TODAY, done: int = 0, **components: float) -> Snap:
    """A snapshot `days_ago` days before `today`, its mastery from the real formula."""
    values = {"completion": 0.0, "quiz": 0.0, "quality": 0.0, "consistency": 0.0, **components}
    return Snap(
        day=today - timedelta(days=days_ago),
        mastery=mastery_score(Components(**values), DEFAULT_WEIGHTS),
        exercises_done=done,
        **values,
    )


def mastery_snap(days_ago: int, mastery: float, *, today: date = TODAY) -> Snap:
    """A snapshot that carries only a mastery value (its components are not looked at)."""
    return Snap(today - timedelta(days=days_ago), mastery, 0.0, 0.0, 0.0, 0.0, 0)


def pair(*snaps: Snap, topic: str = LOOPS, total: int = 10) -> PairHistory:
    return PairHistory(topic, total, tuple(snaps))


def event(student_id: str, topic: str, event_type: str, *, days_ago: int, **payload) -> dict:
    """One event `days_ago` whole days before now (the tests pin now at noon UTC)."""
    return event_document(
        event_type,
        student_id=student_id,
        topic=topic,
        occurred_at=timezone.now() - timedelta(days=days_ago),
        event_id=f"pred-{uuid.uuid4().hex}",
        payload=payload,
    )


def quizzes(student_id: str, topic: str, scores: dict[int, float]) -> list[dict]:
    """A quiz on each `days_ago` of `scores`, at that ratio."""
    return [
        event(
            student_id,
            topic,
            "quiz.submitted",
            days_ago=days_ago,
            quiz_id=f"q{days_ago}",
            score=round(ratio * 10, 2),
            max_score=10,
        )
        for days_ago, ratio in scores.items()
    ]


def exercises(student_id: str, topic: str, days: list[int], *, total: int = 10) -> list[dict]:
    """One new distinct exercise on each of `days` (days ago)."""
    return [
        event(
            student_id,
            topic,
            "exercise.completed",
            days_ago=days_ago,
            exercise_id=f"ex{n}",
            exercises_total=total,
        )
        for n, days_ago in enumerate(days)
    ]


def declining(student_id: str, topic: str = LOOPS) -> list[dict]:
    """Quizzes every other day over 20 days falling from 0.9 to 0.1 (mastery falls)."""
    return quizzes(student_id, topic, {d: round(0.1 + 0.04 * d, 2) for d in range(20, -1, -2)})


def rising(student_id: str, topic: str = LOOPS) -> list[dict]:
    """Good quizzes and an exercise a day over 10 days (mastery rises)."""
    return quizzes(student_id, topic, dict.fromkeys(range(10), 0.9)) + exercises(
        student_id, topic, list(range(9, -1, -1))
    )


def seed(events: list[dict]) -> None:
    ingest_all(events)
