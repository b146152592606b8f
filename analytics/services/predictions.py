"""Serving predictions, and the writes around them: served predictions recorded, teachers'
verdicts, back-test reports, and the served predictions' errors once their day has passed.

Serving is one path for the API, the admin and the intervention lists: the forecast is
computed from the snapshots (`selectors.student_histories`, `analytics.domain.forecast`)
with the forecaster the latest back-test chose, and cached in Redis per (student, topic,
day) for PREDICTION_CACHE_SECONDS.

The cache is invalidated by generations: each entry carries the student's generation token
(and a global one) as it stood before the entry was computed, and is served only while
they are unchanged. `students_changed` (sent after a commit that changed students) gives
those students new tokens in one round trip; a back-test gives a new global one, stored
with the forecasters it chose (so that a miss need not read them) for as long as an entry
lives. A student's token lives longer than any entry (a day against an hour), so an entry
cannot outlive the token that retired it. Keys and values hold no student id (a hash of it
names the student), and an entry is gone an hour after it was written. A cache that is
down only costs speed: every read then computes, and the rate limit steps aside.
"""

import hashlib
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from analytics.domain.backtest import backtest
from analytics.domain.forecast import (
    HORIZON_DAYS,
    NAIVE,
    Forecaster,
    Outlook,
    PairHistory,
    Prediction,
    confidence,
    outlook,
    predict,
    series_value,
    trajectory,
)
from analytics.models.predictions import (
    BacktestReport,
    FlagFeedback,
    PredictionErrorTally,
    PredictionRecord,
)
from analytics.selectors.predictions import (
    ERROR_BUCKETS,
    served_forecasters,
    student_histories,
    window_start,
)
from mastery.models import Cohort, Student, Topic, User
from mastery.policy import current_policy
from mastery_project.db_router import replica_reads

logger = logging.getLogger(__name__)

CACHE_DOWN = (ConnectionInterrupted, RedisError, OSError)
GENERATION_SECONDS = 24 * 3600
TRAJECTORY_DAYS = 30
NEXT_WEEK = "next-week"
TRAJECTORY = "trajectory"
_GLOBAL_GENERATION = "predictions:generation"

StudentRef = tuple[int, str]  # (pk, external id)


def today_utc(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(UTC).date()


def scope_of(topic: Topic | None) -> str:
    return "topic" if topic is not None else "overall"


# --- the cache ---------------------------------------------------------------------------


def _hashed(student_id: str) -> str:
    return hashlib.blake2b(student_id.encode(), digest_size=10).hexdigest()


def _generation_key(student_id: str) -> str:
    return f"predictions:generation:{_hashed(student_id)}"


def _entry_key(student_id: str, topic: Topic | None, day: date, kind: str) -> str:
    # "*" is no topic slug: the overall prediction.
    return f"predictions:{_hashed(student_id)}:{topic.slug if topic else '*'}:{day}:{kind}"


def _cache_down(doing: str, exc: Exception) -> None:
    logger.warning("prediction cache unavailable (%s): %s", doing, type(exc).__name__)


@dataclass(frozen=True)
class Subject:
    """What one prediction is about: a student, and a topic or (None) its overall mastery."""

    pk: int
    student_id: str
    topic: Topic | None = None

    @property
    def scope(self) -> str:
        return scope_of(self.topic)


@dataclass
class _Entry:
    key: str
    stamp: tuple
    payload: dict | None = None
    recorded: bool = False


Compute = Callable[[list[Subject], dict[str, Forecaster]], list[dict]]


def _cached(
    subjects: Sequence[Subject], *, today: date, kind: str, compute: Compute
) -> list[_Entry]:
    """Each subject's entry, from the cache where its stamp still holds, else computed (in
    one pass for all the misses, with the forecasters served) and stored. One round trip to
    read, one to store."""
    entries = [_Entry(_entry_key(s.student_id, s.topic, today, kind), ()) for s in subjects]
    generations = [_generation_key(s.student_id) for s in subjects]
    try:
        found = cache.get_many(
            list(dict.fromkeys([_GLOBAL_GENERATION, *(e.key for e in entries), *generations]))
        )
        current = found.get(_GLOBAL_GENERATION) or _global_generation(replace=False)
    except CACHE_DOWN as exc:
        _cache_down("read", exc)
        computed = compute(list(subjects), served_forecasters())
        return [_Entry(e.key, (), payload) for e, payload in zip(entries, computed, strict=True)]
    missing = []
    for index, entry in enumerate(entries):
        entry.stamp = (current["token"], found.get(generations[index]))
        stored = found.get(entry.key)
        if stored is not None and stored[0] == entry.stamp:
            entry.payload, entry.recorded = stored[1], stored[2]
        else:
            missing.append(index)
    if missing:
        served = {scope: Forecaster.from_dict(f) for scope, f in current["served"].items()}
        computed = compute([subjects[i] for i in missing], served)
        for index, payload in zip(missing, computed, strict=True):
            entries[index].payload = payload
        _store([entries[i] for i in missing])
    return entries


def _store(entries: Iterable[_Entry]) -> None:
    values = {e.key: (e.stamp, e.payload, e.recorded) for e in entries}
    try:
        cache.set_many(values, timeout=settings.PREDICTION_CACHE_SECONDS)
    except CACHE_DOWN as exc:
        _cache_down("write", exc)


def prediction_cache_invalidate(student_ids: Iterable[str]) -> None:
    """Retire the students' cached predictions (after the commit that changed them)."""
    tokens = {_generation_key(sid): secrets.token_hex(8) for sid in student_ids}
    if not tokens:
        return
    try:
        cache.set_many(tokens, timeout=GENERATION_SECONDS)
    except CACHE_DOWN as exc:
        # Entries computed before the change then live out their hour.
        _cache_down("invalidate", exc)


def _global_generation(*, replace: bool) -> dict:
    """A new global generation with the forecasters now served; unless `replace`, only
    where none is stored, keeping the one that is. It lives as long as an entry, so a reset
    that failed (Redis down during a back-test) is made up for within that time."""
    value = {
        "token": secrets.token_hex(8),
        "served": {scope: f.as_dict() for scope, f in served_forecasters().items()},
    }
    timeout = settings.PREDICTION_CACHE_SECONDS
    if replace:
        cache.set(_GLOBAL_GENERATION, value, timeout=timeout)
    elif not cache.add(_GLOBAL_GENERATION, value, timeout=timeout):
        value = cache.get(_GLOBAL_GENERATION) or value
    return value


def prediction_cache_reset() -> None:
    """Retire every cached prediction (the forecasters served may have changed)."""
    try:
        _global_generation(replace=True)
    except CACHE_DOWN as exc:
        _cache_down("reset", exc)


# --- computing ---------------------------------------------------------------------------


def _histories(subjects: Sequence[Subject], *, today: date) -> dict[int, list[PairHistory]]:
    """The students' pairs over the window, in one read (of one topic if all ask for it)."""
    topics = {s.topic for s in subjects}
    topic = next(iter(topics)) if len(topics) == 1 else None
    pks = list(dict.fromkeys(s.pk for s in subjects))
    return dict(student_histories(pks, start=window_start(today), end=today, topic=topic))


def _next_week_payload(prediction: Prediction, topic: Topic | None, today: date) -> dict:
    return {
        "topic": topic.slug if topic else None,
        "predicted_mastery": prediction.predicted,
        "current_mastery": prediction.current,
        "confidence": prediction.confidence,
        "slope_per_day": prediction.slope_per_day,
        "method": prediction.method,
        "intervention_needed": prediction.intervention_needed,
        "reasons": [reason.as_dict() for reason in prediction.reasons],
        "data_points": prediction.data_points,
        "stale": prediction.stale,
        "target_date": (today + timedelta(days=HORIZON_DAYS)).isoformat(),
    }


def _trajectory_payload(view: Outlook, forecaster: Forecaster, topic: Topic | None) -> dict:
    return {
        "topic": topic.slug if topic else None,
        "method": forecaster.method if view.fit is not None else NAIVE,
        "confidence": round(confidence(view.fit), 4),
        "points": [
            {
                "date": point.day.isoformat(),
                "mastery": point.mastery,
                "lower": point.lower,
                "upper": point.upper,
            }
            for point in trajectory(view, forecaster, TRAJECTORY_DAYS)
        ],
    }


def _compute(
    subjects: Sequence[Subject], served: dict[str, Forecaster], *, today: date, kind: str
) -> list[dict]:
    policy = current_policy()
    threshold = settings.PREDICTION_INTERVENTION_BELOW
    histories = _histories(subjects, today=today)
    payloads = []
    for subject in subjects:
        pairs = histories.get(subject.pk, [])
        if subject.topic is not None:
            pairs = [pair for pair in pairs if pair.topic == subject.topic.slug]
        view = outlook(
            pairs, today=today, weights=policy.weights, activity_days=policy.consistency_days
        )
        forecaster = served[subject.scope]
        if kind == NEXT_WEEK:
            prediction = predict(view, forecaster, threshold=threshold)
            payloads.append(_next_week_payload(prediction, subject.topic, today))
        else:
            payloads.append(_trajectory_payload(view, forecaster, subject.topic))
    return payloads


def _served(subjects: Sequence[Subject], *, today: date, kind: str) -> list[_Entry]:
    return _cached(
        subjects,
        today=today,
        kind=kind,
        compute=lambda missing, served: _compute(missing, served, today=today, kind=kind),
    )


def predictions_next_week(
    refs: Sequence[StudentRef], *, topic: Topic | None, today: date
) -> dict[int, dict]:
    """The next-week prediction of each student (by pk), cached; nothing is recorded."""
    subjects = [Subject(pk, student_id, topic) for pk, student_id in refs]
    entries = _served(subjects, today=today, kind=NEXT_WEEK)
    return {s.pk: entry.payload for s, entry in zip(subjects, entries, strict=True)}


def predictions_by_topic(
    student: Student, *, topics: Sequence[Topic], today: date
) -> list[tuple[Topic, dict]]:
    """The student's next-week prediction in each of `topics`, from one read; cached."""
    subjects = [Subject(student.pk, student.student_id, topic) for topic in topics]
    entries = _served(subjects, today=today, kind=NEXT_WEEK)
    return [(s.topic, entry.payload) for s, entry in zip(subjects, entries, strict=True)]


def prediction_next_week_serve(*, student: Student, topic: Topic | None, today: date) -> dict:
    """The prediction the API serves, recorded (student, topic, day made, target day,
    predicted) so that its error can be measured once the target day has passed. Recorded
    once per cached value, so a cache hit writes nothing."""
    subject = Subject(student.pk, student.student_id, topic)
    [entry] = _served([subject], today=today, kind=NEXT_WEEK)
    if not entry.recorded:
        prediction_record(student=student, topic=topic, today=today, payload=entry.payload)
        entry.recorded = True
        if entry.stamp:
            _store([entry])
    return entry.payload


def prediction_trajectory(*, student: Student, topic: Topic | None, today: date, days: int) -> dict:
    """The forecast path of the next `days` days (1 to 30) with its 80 % band, cached."""
    subject = Subject(student.pk, student.student_id, topic)
    [entry] = _served([subject], today=today, kind=TRAJECTORY)
    return {**entry.payload, "points": entry.payload["points"][:days]}


def prediction_record(*, student: Student, topic: Topic | None, today: date, payload: dict) -> None:
    """Keep the day's served prediction; a later one the same day replaces it."""
    PredictionRecord.objects.bulk_create(
        [
            PredictionRecord(
                student=student,
                topic=topic,
                made_on=today,
                target_day=date.fromisoformat(payload["target_date"]),
                predicted=payload["predicted_mastery"],
                method=payload["method"],
            )
        ],
        update_conflicts=True,
        unique_fields=["student", "topic", "made_on"],
        update_fields=["target_day", "predicted", "method"],
    )


def students_needing_intervention(
    refs: Sequence[StudentRef], *, topic: Topic | None, today: date
) -> list[tuple[StudentRef, dict]]:
    """The students whose prediction needs intervention, worst first (lowest predicted)."""
    payloads = predictions_next_week(refs, topic=topic, today=today)
    flagged = [(ref, payloads[ref[0]]) for ref in refs if payloads[ref[0]]["intervention_needed"]]
    return sorted(flagged, key=lambda item: (item[1]["predicted_mastery"], item[0][1]))


# --- feedback on flags ---------------------------------------------------------------------


@transaction.atomic
def flag_feedback_record(
    *,
    student: Student,
    topic: Topic | None,
    verdict: str,
    comment: str,
    author: User,
    today: date,
) -> FlagFeedback:
    """A verdict on the student's flag, stored with the prediction it judged (as served
    now) and who gave it."""
    [flag] = predictions_next_week(
        [(student.pk, student.student_id)], topic=topic, today=today
    ).values()
    return FlagFeedback.objects.create(
        student=student,
        topic=topic,
        verdict=verdict,
        comment=comment,
        author=author,
        author_username=author.username,
        author_role=author.role,
        flagged=flag["intervention_needed"],
        predicted=flag["predicted_mastery"],
        method=flag["method"],
        reason_codes=[reason["code"] for reason in flag["reasons"]],
    )


# --- the back-test -------------------------------------------------------------------------


def backtest_run(
    *, horizon: int, cohort: Cohort | None = None, since: date | None = None, now: datetime
) -> BacktestReport:
    """Replay the stored history (consenting students only: this is statistics), keep the
    report as the latest, and, at the served horizon, serve what it found most accurate in
    each scope it had cases for."""
    started = timezone.now()
    students = Student.objects.filter(analytics_consent=True)
    if cohort is not None:
        students = students.filter(cohorts=cohort)
    policy = current_policy()
    today = today_utc(now)
    # The replay reads the stored history only (a replica's few seconds of lag change no
    # past day); the report is written to the primary below.
    with replica_reads():
        report = backtest(
            (pairs for _, pairs in student_histories(students, end=today)),
            end=today,
            horizon=horizon,
            weights=policy.weights,
            threshold=settings.PREDICTION_INTERVENTION_BELOW,
            since=since,
            activity_days=policy.consistency_days,
        )
    report["cohort"] = cohort.cohort_id if cohort is not None else None
    previous = BacktestReport.objects.filter(pk=BacktestReport.SINGLETON).first()
    served = dict(previous.served) if previous is not None else {}
    if horizon == HORIZON_DAYS:
        # A scope without a single case has no evidence: what was served stays.
        served.update(
            {scope: part["served"] for scope, part in report["scopes"].items() if part["cases"]}
        )
    saved, _ = BacktestReport.objects.update_or_create(
        pk=BacktestReport.SINGLETON,
        defaults={
            "created_at": now,
            "horizon": horizon,
            "cohort_id": cohort.cohort_id if cohort is not None else "",
            "since": since,
            "report": report,
            "served": served,
            "duration_seconds": (timezone.now() - started).total_seconds(),
        },
    )
    transaction.on_commit(prediction_cache_reset)
    return saved


# --- measured errors -------------------------------------------------------------------------


def _bucket(error: float) -> int:
    for index, bound in enumerate(ERROR_BUCKETS):
        if error <= bound:
            return index
    return len(ERROR_BUCKETS)


def prediction_errors_score(*, now: datetime, chunk: int = 1000) -> int:
    """Score the recorded predictions whose target day has passed: the actual value is the
    daily series on the target day; the absolute error goes to the record and to the
    histogram's tallies, in the same transaction (a prediction is counted exactly once,
    however many workers run this at once: rows are claimed with SKIP LOCKED).
    A prediction whose subject has no value on the target day is closed unscored."""
    today = today_utc(now)
    scored = 0
    while True:
        with transaction.atomic():
            due = list(
                PredictionRecord.objects.filter(scored_at__isnull=True, target_day__lt=today)
                .select_for_update(skip_locked=True)
                .order_by("target_day", "id")[:chunk]
            )
            if not due:
                return scored
            _score(due, now=now)
        scored += len(due)
        if len(due) < chunk:
            return scored


def _score(due: list[PredictionRecord], *, now: datetime) -> None:
    first = min(record.target_day for record in due)
    last = max(record.target_day for record in due)
    students = sorted({record.student_id for record in due})
    histories = dict(student_histories(students, start=first, end=last))
    topics = Topic.objects.filter(pk__in={record.topic_id for record in due})
    topic_slugs = dict(topics.values_list("pk", "slug"))
    additions: dict[tuple[str, str], list[float]] = defaultdict(list)
    for record in due:
        pairs = histories.get(record.student_id, [])
        if record.topic_id is not None:
            pairs = [p for p in pairs if p.topic == topic_slugs.get(record.topic_id)]
        actual = series_value(pairs, record.target_day)
        record.scored_at = now
        if actual is None:
            continue
        record.actual = actual
        record.abs_error = round(abs(record.predicted - actual), 6)
        scope = "topic" if record.topic_id is not None else "overall"
        additions[(record.method, scope)].append(record.abs_error)
    PredictionRecord.objects.bulk_update(due, ["actual", "abs_error", "scored_at"])
    for (method, scope), errors in sorted(additions.items()):
        tally, _ = PredictionErrorTally.objects.select_for_update().get_or_create(
            method=method,
            scope=scope,
            defaults={"bucket_counts": [0] * (len(ERROR_BUCKETS) + 1)},
        )
        if len(tally.bucket_counts) != len(ERROR_BUCKETS) + 1:
            tally.bucket_counts, tally.error_sum, tally.observations = (
                [0] * (len(ERROR_BUCKETS) + 1),
                0.0,
                0,
            )
        counts = list(tally.bucket_counts)
        for error in errors:
            counts[_bucket(error)] += 1
        tally.bucket_counts = counts
        tally.error_sum += sum(errors)
        tally.observations += len(errors)
        tally.save(update_fields=["bucket_counts", "error_sum", "observations"])
