"""Writes of recommendations (SPEC §3.2): bringing a student's stored recommendations in
line with its scores, and recording feedback on them.

Recommendations are derived state, stored so that feedback can name them. Each read
(`recommendations_current`, `learning_path_current`) syncs them in one transaction: a
recommendation whose component still has the same score (under the same rules) is given
back as it is, id and all; one whose score changed, or reached the threshold, is marked
superseded (kept, so its feedback keeps meaning) and the new one is written. Syncs of one
student are serialized by a transaction-scoped advisory lock, taken before the scores are
read, so a request that read older scores can never supersede what a later one wrote; the
partial unique index on current rows holds the invariant whatever happens.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

from analytics.domain.recommendations import (
    LearningPath,
    RecommendationRules,
    learning_path,
    recommendations_for,
)
from analytics.models.recommendations import Recommendation, RecommendationFeedback
from analytics.selectors import recommendations as selectors
from analytics.selectors.recommendations import TopicProgress
from mastery.domain.formula import COMPONENTS
from mastery.models import Student, Topic, User
from mastery_project.errors import NotFound


def _lock(student: Student) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"analytics.recommendations:{student.pk}"],
        )


def _ordered(rows: list[Recommendation]) -> list[Recommendation]:
    return sorted(rows, key=lambda r: (-r.impact, r.topic.slug, COMPONENTS.index(r.component)))


def _synced(
    student: Student,
    progress: dict[str, TopicProgress],
    rules: RecommendationRules,
    now: datetime,
) -> dict[str, list[Recommendation]]:
    """The current recommendations of `progress`'s topics (slug -> by impact), after
    superseding the stale ones and writing the missing ones. Runs under the lock."""
    today = now.astimezone(UTC).date()
    stored = selectors.current_recommendations(student, [p.topic for p in progress.values()])
    kept: dict[tuple[int, str], Recommendation] = {}
    created: list[Recommendation] = []
    for item in progress.values():
        for wanted in recommendations_for(item.progress, rules, today=today):
            key = (item.topic.pk, wanted.component)
            row = stored.get(key)
            if row is not None and row.score == wanted.score and row.rules_hash == rules.rules_hash:
                kept[key] = row
                continue
            created.append(
                Recommendation(
                    student=student,
                    topic=item.topic,
                    component=wanted.component,
                    score=wanted.score,
                    action=wanted.action,
                    impact=wanted.impact,
                    priority=wanted.priority,
                    steps=wanted.steps,
                    target=wanted.target,
                    mastery_gain=wanted.mastery_gain,
                    estimated_minutes=wanted.estimated_minutes,
                    message=wanted.message,
                    rules_hash=rules.rules_hash,
                    created_at=now,
                )
            )
    stale = [row.pk for key, row in stored.items() if key not in kept]
    if stale:
        Recommendation.objects.filter(pk__in=stale).update(superseded_at=now)
    if created:
        Recommendation.objects.bulk_create(created)
    by_topic: dict[str, list[Recommendation]] = {slug: [] for slug in progress}
    for row in [*kept.values(), *created]:
        by_topic[row.topic.slug].append(row)
    return {slug: _ordered(rows) for slug, rows in by_topic.items()}


@transaction.atomic
def recommendations_current(
    *, student: Student, topic: str | None = None, now: datetime | None = None
) -> list[Recommendation]:
    """The student's current recommendations, by impact: of one topic (a known topic the
    student has not started gets those of a start from zero), else of every topic it has
    a mastery record in."""
    now = now or timezone.now()
    if topic is not None:
        topics = Topic.objects.filter(slug=topic)
        if not topics.exists():
            raise NotFound("No such topic.", code="topic_not_found")
    else:
        topics = selectors.student_topics(student)
    _lock(student)
    progress = selectors.student_progress(student, topics)
    rows = _synced(student, progress, selectors.recommendation_rules(), now)
    return _ordered([row for topic_rows in rows.values() for row in topic_rows])


@dataclass(frozen=True)
class StudentPath:
    """The learning path, the current recommendations (slug -> by impact) of its unlocked
    topics and of the topics the student has started, and every topic's name."""

    path: LearningPath
    threshold: float
    recommendations: dict[str, list[Recommendation]]
    started: frozenset[str]
    names: dict[str, str]

    @property
    def of_started_topics(self) -> list[Recommendation]:
        """What `recommendations_current` gives for all topics, by impact."""
        return _ordered([r for slug in self.started for r in self.recommendations[slug]])


@transaction.atomic
def learning_path_current(*, student: Student, now: datetime | None = None) -> StudentPath:
    """The student's learning path over the whole catalogue (SPEC §3.2), with the current
    recommendations of each unlocked topic and of each topic the student has started (the
    admin shows both; they are synced together, under one lock)."""
    now = now or timezone.now()
    rules = selectors.recommendation_rules()
    _lock(student)
    progress = selectors.student_progress(student, Topic.objects.all())
    path = learning_path(
        selectors.topic_nodes(progress, selectors.prerequisite_graph()), rules.threshold
    )
    wanted = set(path.unlocked) | {slug for slug, item in progress.items() if item.started}
    rows = _synced(student, {s: p for s, p in progress.items() if s in wanted}, rules, now)
    return StudentPath(
        path=path,
        threshold=rules.threshold,
        recommendations=rows,
        started=frozenset(slug for slug, item in progress.items() if item.started),
        names={slug: item.topic.name for slug, item in progress.items()},
    )


@transaction.atomic
def recommendation_feedback_save(
    *,
    recommendation: Recommendation,
    author: User,
    helpful: bool,
    completed: bool | None = None,
    comment: str = "",
    now: datetime | None = None,
) -> tuple[RecommendationFeedback, bool]:
    """Records what `author` thinks of the recommendation, replacing what they said of it
    before (each person counts once). Returns the feedback and whether it is new."""
    now = now or timezone.now()
    return RecommendationFeedback.objects.update_or_create(
        recommendation=recommendation,
        author=author,
        defaults={
            "author_role": author.role,
            "helpful": helpful,
            "completed": completed,
            "comment": comment,
            "updated_at": now,
        },
        create_defaults={
            "author_role": author.role,
            "helpful": helpful,
            "completed": completed,
            "comment": comment,
            "created_at": now,
            "updated_at": now,
        },
    )
