"""Builders for the history and cohort tests: snapshots and records written directly (the
selectors only read these tables; the pipeline that fills them has its own tests)."""

from collections.abc import Iterable
from datetime import date

from django.utils import timezone

from mastery.models import MasteryRecord, Snapshot, Student, Topic
from tests.factories import TopicFactory


def topic_named(slug: str) -> Topic:
    return TopicFactory(slug=slug)


def put_snapshots(student: Student, rows: Iterable[tuple[str, date, float]]) -> None:
    """One snapshot per (topic, day, mastery); the components are set to the mastery."""
    Snapshot.objects.bulk_create(
        Snapshot(
            student=student,
            topic=topic_named(slug),
            day=day,
            completion=mastery,
            quiz=mastery,
            quality=mastery,
            consistency=mastery,
            mastery=mastery,
        )
        for slug, day, mastery in rows
    )


def put_record(
    student: Student,
    slug: str,
    mastery: float,
    *,
    completion: float = 0.0,
    quiz: float = 0.0,
    quality: float = 0.0,
    consistency: float = 0.0,
) -> MasteryRecord:
    """A mastery record with the given figures."""
    return MasteryRecord.objects.create(
        student=student,
        topic=topic_named(slug),
        mastery=mastery,
        completion=completion,
        quiz=quiz,
        quality=quality,
        consistency=consistency,
        policy_hash="test",
        updated_at=timezone.now(),
    )
