"""The predictions' background work: scoring served predictions once their target day has
passed (`mastery_prediction_abs_error`), run by the worker, never in a request.

Scheduling: after a commit that changed students (`students_changed`, sent by ingestion
and rescoring in whichever process wrote), their cached predictions are retired and the
scoring task is enqueued, at most once an hour (a Redis key taken with `add`). Scoring is
idempotent and cheap when nothing is due, so a missed or repeated run costs nothing; with
no ingestion at all nothing new is served either, and due predictions are scored at the
next commit.
"""

from django.core.cache import cache
from django.utils import timezone
from django_tasks import task

from analytics.services.predictions import (
    CACHE_DOWN,
    prediction_cache_invalidate,
    prediction_errors_score,
)

SCORING_EVERY_SECONDS = 3600
_SCORING_ENQUEUED = "predictions:scoring-enqueued"


@task()
def prediction_errors_score_task() -> int:
    """Score every recorded prediction that has come due; returns how many."""
    return prediction_errors_score(now=timezone.now())


def prediction_errors_score_soon() -> bool:
    """Enqueue the scoring task unless it was enqueued within the hour; True if enqueued."""
    try:
        due = cache.add(_SCORING_ENQUEUED, 1, timeout=SCORING_EVERY_SECONDS)
    except CACHE_DOWN:
        return False
    if due:
        prediction_errors_score_task.enqueue()
    return due


def predictions_on_students_changed(sender: object, *, student_ids, **kwargs) -> None:
    """Receiver of `mastery.signals.students_changed`."""
    prediction_cache_invalidate(student_ids)
    prediction_errors_score_soon()
