"""Reads behind recommendations and the learning path (SPEC §3.2): the rules from
settings, a student's progress per topic, the prerequisite graph, stored recommendations
and the feedback shares. Visibility is the caller's business (`student_read`)."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Q, QuerySet

from analytics.domain.recommendations import (
    ACTIONS,
    PairProgress,
    RecommendationRules,
    TopicNode,
)
from analytics.models.recommendations import Recommendation, RecommendationFeedback
from mastery.domain.facts import PairFacts, facts_from_record
from mastery.domain.formula import COMPONENTS
from mastery.models import MasteryRecord, Student, Topic
from mastery.policy import current_policy
from mastery.selectors import topic_exercises_total

# The setting holding the minutes of one step of each action.
MINUTES_SETTINGS = {
    "practice": "RECOMMENDATION_MINUTES_PER_EXERCISE",
    "review": "RECOMMENDATION_MINUTES_PER_QUIZ",
    "refactor": "RECOMMENDATION_MINUTES_PER_REVIEW",
    "schedule": "RECOMMENDATION_MINUTES_PER_SESSION",
}


@lru_cache(maxsize=4)
def _rules(threshold: float, minutes: tuple[tuple[str, int], ...], policy) -> RecommendationRules:
    return RecommendationRules(
        threshold=threshold,
        weights=policy.weights,
        minutes=dict(minutes),
        recent_window=policy.recent_window,
        consistency_days=policy.consistency_days,
    )


def recommendation_rules() -> RecommendationRules:
    """The rules in force: RECOMMENDATION_* settings and the scoring policy's weights and
    windows. Cached per distinct settings, so `override_settings` takes effect."""
    minutes = tuple((action, getattr(settings, name)) for action, name in MINUTES_SETTINGS.items())
    return _rules(settings.RECOMMENDATION_THRESHOLD, minutes, current_policy())


def recommendation_rules_check() -> None:
    """Bad RECOMMENDATION_* settings stop every process at start-up, not the first request."""
    try:
        recommendation_rules()
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"RECOMMENDATION_*: {exc}") from exc


@dataclass(frozen=True)
class TopicProgress:
    """A topic and one student's progress in it (`started`: it has a mastery record)."""

    topic: Topic
    mastery: float
    started: bool
    progress: PairProgress


def _facts(raw: dict) -> PairFacts:
    return facts_from_record(raw) if raw else PairFacts.empty()


def student_progress(student: Student, topics: QuerySet[Topic]) -> dict[str, TopicProgress]:
    """Per topic of `topics` (by slug): the student's components and the facts they come
    from; a topic without a record yet is all zeros. Two reads, whatever the number."""
    topics = {topic.pk: topic for topic in topics}
    records = MasteryRecord.objects.filter(student=student, topic_id__in=list(topics)).only(
        "topic_id", "mastery", "facts", *COMPONENTS
    )
    found = {record.topic_id: record for record in records}
    progress = {}
    for pk, topic in sorted(topics.items(), key=lambda item: item[1].slug):
        total = topic_exercises_total(topic)
        record = found.get(pk)
        if record is None:
            pair = PairProgress(topic=topic.slug, exercises_total=total)
        else:
            facts = _facts(record.facts)
            pair = PairProgress(
                topic=topic.slug,
                **{name: getattr(record, name) for name in COMPONENTS},
                exercises_done=len(facts.exercise_ids),
                exercises_total=total,
                quiz_recent=tuple(ratio for _, _, ratio in facts.quiz_recent),
                quality_recent=tuple(ratio for _, _, ratio in facts.quality_recent),
                active_days=facts.active_days,
            )
        progress[topic.slug] = TopicProgress(
            topic=topic,
            mastery=record.mastery if record is not None else 0.0,
            started=record is not None,
            progress=pair,
        )
    return progress


def student_topics(student: Student) -> QuerySet[Topic]:
    """The topics the student has a mastery record in (those `mastery/query` lists)."""
    return Topic.objects.filter(
        pk__in=MasteryRecord.objects.filter(student=student).values("topic_id")
    )


def prerequisite_graph() -> dict[str, list[str]]:
    """Every topic's slug -> the slugs of its direct prerequisites, in one read."""
    graph: dict[str, list[str]] = {
        slug: [] for slug in Topic.objects.values_list("slug", flat=True)
    }
    edges = Topic.prerequisites.through.objects.values_list("from_topic__slug", "to_topic__slug")
    for topic, prerequisite in edges.order_by("from_topic__slug", "to_topic__slug"):
        graph.setdefault(topic, []).append(prerequisite)
    return graph


def topic_nodes(progress: dict[str, TopicProgress], graph: dict[str, list[str]]) -> list[TopicNode]:
    """The catalogue as the learning path reads it."""
    return [
        TopicNode(slug, item.mastery, tuple(graph.get(slug, ()))) for slug, item in progress.items()
    ]


def current_recommendations(
    student: Student, topics: Iterable[Topic]
) -> dict[tuple[int, str], Recommendation]:
    """(topic pk, component) -> the current (not superseded) recommendation, with its
    `topic` set from `topics` (already read)."""
    by_pk = {topic.pk: topic for topic in topics}
    rows = Recommendation.objects.filter(
        student=student, topic_id__in=list(by_pk), superseded_at__isnull=True
    )
    found = {}
    for row in rows:
        row.topic = by_pk[row.topic_id]
        found[(row.topic_id, row.component)] = row
    return found


def recommendation_student_pk(recommendation_id: object) -> int | None:
    """Whose recommendation this is (its student's primary key), or None if none has it."""
    return (
        Recommendation.objects.filter(pk=recommendation_id)
        .values_list("student_id", flat=True)
        .first()
    )


def recommendation_get(recommendation_id: object, student: Student) -> Recommendation:
    """The student's recommendation (the caller has looked its student up)."""
    return Recommendation.objects.select_related("topic").get(pk=recommendation_id, student=student)


@dataclass(frozen=True)
class FeedbackShare:
    action: str
    count: int
    helpful: int

    @property
    def share(self) -> float | None:
        """The share of feedback that found the action helpful; None before any."""
        return round(self.helpful / self.count, 4) if self.count else None


def feedback_shares() -> list[FeedbackShare]:
    """Per action, how much feedback there is and how much of it found it helpful, over
    students with analytics consent (as every statistic across students), in one query."""
    counts = defaultdict(lambda: (0, 0))
    rows = (
        RecommendationFeedback.objects.filter(recommendation__student__analytics_consent=True)
        .values("recommendation__action")
        .annotate(count=Count("id"), helpful=Count("id", filter=Q(helpful=True)))
        .order_by()
    )
    for row in rows:
        counts[row["recommendation__action"]] = (row["count"], row["helpful"])
    return [FeedbackShare(action, *counts[action]) for action in ACTIONS.values()]
