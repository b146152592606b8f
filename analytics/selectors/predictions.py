"""Reads of the predictions: the snapshots a forecast needs (one student's, or many at once
for the back-test and the intervention lists), the forecasters served, the latest back-test,
teachers' verdicts on flags, and the error histogram that `/metrics` shows."""

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, timedelta

from django.db import DatabaseError
from django.db.models import Count, Q, QuerySet
from prometheus_client.core import HistogramMetricFamily

from analytics.domain.backtest import SCOPES
from analytics.domain.forecast import (
    DEFAULT_FORECASTER,
    WINDOW_DAYS,
    Forecaster,
    PairHistory,
    Snap,
)
from analytics.models.predictions import (
    BacktestReport,
    FlagFeedback,
    PredictionErrorTally,
)
from mastery.models import Cohort, Snapshot, Student, Topic
from mastery.selectors import topic_exercises_total

logger = logging.getLogger(__name__)

_SNAPSHOT_FIELDS = (
    "student_id",
    "topic_id",
    "day",
    "mastery",
    "completion",
    "quiz",
    "quality",
    "consistency",
    "exercises_done",
)
# Up to this many students (by pk) are read in one go; more, or a queryset, are streamed.
_READ_AT_ONCE = 50
# The buckets of `mastery_prediction_abs_error` (upper bounds; +Inf follows).
ERROR_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0)


def window_start(today: date) -> date:
    """The first day of the window a forecast made on `today` reads (SPEC §3.1)."""
    return today - timedelta(days=WINDOW_DAYS - 1)


def _snap(row: tuple) -> Snap:
    return Snap(*row[2:])


def student_histories(
    students: QuerySet[Student] | Sequence[int],
    *,
    end: date,
    start: date | None = None,
    topic: Topic | None = None,
) -> Iterator[tuple[int, list[PairHistory]]]:
    """(student pk, its pairs) for each of `students` that has a snapshot on or before `end`.

    Without `start`, every snapshot up to `end` (the back-test); with it, those from `start`
    on plus each pair's latest before it, which carries into the window (a forecast). For a
    queryset or a long list, rows are streamed student by student (a server-side cursor),
    so memory holds one student's history at a time plus the pairs' carried values; a few
    students' rows are read at once. `topic` keeps that topic's pairs only.
    """
    snapshots = Snapshot.objects.filter(student__in=students, day__lte=end)
    if topic is not None:
        snapshots = snapshots.filter(topic=topic)
    topics = _Topics()
    carried: dict[int, dict[int, Snap]] = defaultdict(dict)
    inside = snapshots
    if start is not None:
        prior = (
            snapshots.filter(day__lt=start)
            .order_by("student_id", "topic_id", "-day")
            .distinct("student_id", "topic_id")
            .values_list(*_SNAPSHOT_FIELDS)
        )
        for row in prior:
            carried[row[0]][row[1]] = _snap(row)
        inside = snapshots.filter(day__gte=start)
    rows = inside.order_by("student_id", "topic_id", "day").values_list(*_SNAPSHOT_FIELDS)
    few = not isinstance(students, QuerySet) and len(students) <= _READ_AT_ONCE
    current: int | None = None
    pairs: dict[int, list[Snap]] = defaultdict(list)
    for row in rows if few else rows.iterator(chunk_size=5000):
        if row[0] != current:
            if current is not None:
                yield current, topics.pairs(pairs, carried.pop(current, {}))
            current, pairs = row[0], defaultdict(list)
        pairs[row[1]].append(_snap(row))
    if current is not None:
        yield current, topics.pairs(pairs, carried.pop(current, {}))
    for student_pk, only_carried in carried.items():
        yield student_pk, topics.pairs({}, only_carried)


class _Topics:
    """Slug and size of the topics met so far, read by primary key as they are met."""

    def __init__(self) -> None:
        self.known: dict[int, tuple[str, int]] = {}

    def pairs(self, inside: dict[int, list[Snap]], carried: dict[int, Snap]) -> list[PairHistory]:
        pks = set(inside) | set(carried)
        if missing := pks - set(self.known):
            for topic in Topic.objects.filter(pk__in=missing):
                self.known[topic.pk] = (topic.slug, topic_exercises_total(topic))
        found = []
        for topic_pk in sorted(pks, key=lambda pk: self.known[pk][0]):
            snaps = [carried[topic_pk]] if topic_pk in carried else []
            slug, size = self.known[topic_pk]
            found.append(PairHistory(slug, size, tuple(snaps + inside.get(topic_pk, []))))
        return found


def subject_pairs(student: Student, *, topic: Topic | None, today: date) -> list[PairHistory]:
    """What one prediction of `student` made on `today` reads (three queries)."""
    for _, pairs in student_histories(
        [student.pk], start=window_start(today), end=today, topic=topic
    ):
        return pairs
    return []


def served_forecasters() -> dict[str, Forecaster]:
    """Per scope, the forecaster the latest 7-day back-test chose; linear unshrunk before any."""
    served = BacktestReport.objects.filter(pk=BacktestReport.SINGLETON).values_list(
        "served", flat=True
    )
    chosen = served.first() or {}
    return {
        scope: Forecaster.from_dict(chosen[scope]) if scope in chosen else DEFAULT_FORECASTER
        for scope in SCOPES
    }


def latest_backtest() -> BacktestReport | None:
    return BacktestReport.objects.filter(pk=BacktestReport.SINGLETON).first()


def flag_feedback_of(student: Student, *, limit: int = 20) -> QuerySet[FlagFeedback]:
    """The student's latest verdicts, newest first."""
    return (
        FlagFeedback.objects.filter(student=student)
        .select_related("topic")
        .order_by("-created_at", "-id")[:limit]
    )


def flag_feedback_by_cohort(cohorts: QuerySet[Cohort]) -> dict[int, dict]:
    """Per cohort pk: how many flags of its students were judged, how many of them were
    judged `incorrectly_flagged`, and that share (None when none was judged)."""
    rows = (
        FlagFeedback.objects.filter(student__cohorts__in=cohorts)
        .values("student__cohorts")
        .annotate(
            judged=Count("id"),
            incorrect=Count("id", filter=Q(verdict=FlagFeedback.Verdict.INCORRECTLY_FLAGGED)),
        )
        .order_by()
    )
    summary = {}
    for row in rows:
        judged, incorrect = row["judged"], row["incorrect"]
        summary[row["student__cohorts"]] = {
            "judged": judged,
            "incorrectly_flagged": incorrect,
            "share": incorrect / judged if judged else None,
        }
    return summary


def prediction_error_tallies() -> list[PredictionErrorTally]:
    return list(PredictionErrorTally.objects.order_by("method", "scope"))


class PredictionErrorCollector:
    """`mastery_prediction_abs_error` for `/metrics`, from the tallies the worker keeps in
    the database: the same figures in every web process, however many there are."""

    def collect(self) -> Iterable[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "mastery_prediction_abs_error",
            "Absolute error of served next-week predictions, once their target day has passed.",
            labels=["method", "scope"],
        )
        try:
            tallies = prediction_error_tallies()
        except DatabaseError as exc:
            logger.warning("prediction error tallies unavailable: %s", exc)
            return []
        for tally in tallies:
            if len(tally.bucket_counts) != len(ERROR_BUCKETS) + 1:
                continue  # kept under other buckets; the worker starts it afresh
            cumulative, buckets = 0, []
            for bound, count in zip(
                (*ERROR_BUCKETS, float("inf")), tally.bucket_counts, strict=True
            ):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            family.add_metric([tally.method, tally.scope], buckets, tally.error_sum)
        return [family]
