"""Served predictions measured once their target day has passed (SPEC §3.1): the worker's
scoring, the `mastery_prediction_abs_error` histogram in `/metrics`, how the scoring gets
scheduled, and the retention of what is kept (SPEC §6)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from analytics.models.predictions import FlagFeedback, PredictionErrorTally, PredictionRecord
from analytics.selectors.predictions import ERROR_BUCKETS
from analytics.services.predictions import prediction_errors_score
from compliance.services.retention import expired_purge
from tests.analytics.predictions.support import BASICS, LOOPS, quizzes, seed

pytestmark = pytest.mark.django_db

NEXT_WEEK = "/api/v1/predictions/next-week"
TASK_PATH = "analytics.tasks.predictions.prediction_errors_score_task"


@pytest.fixture
def served(school, client_for):
    """Three predictions served today: s-a1 and s-a2 overall, s-a1 in a topic it never
    touched (no value on any day)."""
    admin = client_for(school.users["admin"])
    bodies = [{"student_id": "s-a1"}, {"student_id": "s-a2"}]
    answers = [admin.post(NEXT_WEEK, body, format="json").json() for body in bodies]
    admin.post(NEXT_WEEK, {"student_id": "s-a1", "topic": BASICS}, format="json")
    return answers


def metric_lines(client, name: str) -> dict[str, float]:
    text = client.get("/metrics").content.decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name)
    }


def test_nothing_is_scored_before_its_target_day_has_passed(served):
    assert prediction_errors_score(now=timezone.now() + timedelta(days=7)) == 0
    assert not PredictionRecord.objects.filter(scored_at__isnull=False).exists()


def test_scoring_measures_each_against_the_series_on_its_target_day(served, client):
    later = timezone.now() + timedelta(days=8)
    assert prediction_errors_score(now=later) == 3
    # Nothing happened since: the series on the target day is today's value.
    expected = {s["student_id"]: abs(s["predicted_mastery"] - s["current_mastery"]) for s in served}
    scored = PredictionRecord.objects.filter(topic=None).select_related("student")
    for record in scored:
        assert record.abs_error == pytest.approx(expected[record.student.student_id], abs=1e-6)
    untouched = PredictionRecord.objects.get(topic__slug=BASICS)
    assert (untouched.actual, untouched.abs_error) == (None, None)
    assert untouched.scored_at is not None  # closed, not looked at again

    lines = metric_lines(client, "mastery_prediction_abs_error")
    labels = 'method="linear",scope="overall"'
    assert lines[f"mastery_prediction_abs_error_count{{{labels}}}"] == 2
    assert lines[f"mastery_prediction_abs_error_sum{{{labels}}}"] == pytest.approx(
        sum(expected.values()), abs=1e-5
    )
    cumulative = [
        lines[f'mastery_prediction_abs_error_bucket{{le="{bound}",{labels}}}']
        for bound in (*map(str, ERROR_BUCKETS), "+Inf")
    ]
    assert cumulative == sorted(cumulative)
    assert cumulative[-1] == 2
    for bound, count in zip(ERROR_BUCKETS, cumulative, strict=False):
        assert count == sum(1 for error in expected.values() if error <= bound)


def test_scoring_twice_counts_each_prediction_once(served):
    later = timezone.now() + timedelta(days=9)
    prediction_errors_score(now=later)
    before = list(PredictionErrorTally.objects.values_list("bucket_counts", "observations"))
    assert prediction_errors_score(now=later) == 0
    after = list(PredictionErrorTally.objects.values_list("bucket_counts", "observations"))
    assert after == before


def test_the_tally_outlives_the_records_it_counted(served, client):
    later = timezone.now() + timedelta(days=8)
    prediction_errors_score(now=later)
    PredictionRecord.objects.all().delete()  # purged or erased
    lines = metric_lines(client, "mastery_prediction_abs_error_count")
    assert lines['mastery_prediction_abs_error_count{method="linear",scope="overall"}'] == 2


def test_a_commit_that_changes_students_enqueues_the_scoring_at_most_once_an_hour(
    school, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        seed(quizzes("s-a1", LOOPS, {0: 0.7}))
    with django_capture_on_commit_callbacks(execute=True):
        seed(quizzes("s-a2", LOOPS, {0: 0.7}))
    assert DBTaskResult.objects.filter(task_path=TASK_PATH).count() == 1


def test_predictions_go_after_180_days_and_verdicts_after_365(served, school, client_for):
    client_for(school.users["teacher"]).post(
        "/api/v1/predictions/intervention/feedback",
        {"student_id": "s-a1", "verdict": "acted"},
        format="json",
    )
    now = timezone.now()
    assert expired_purge(dry_run=True, now=now + timedelta(days=180))["predictions"] == 0
    counts = expired_purge(now=now + timedelta(days=181))
    assert counts["predictions"] == 3
    assert counts["flag_feedback"] == 0
    # The verdict is stamped by the database's clock (db_default=Now()), not the pinned one
    # the predictions are dated by: its window is measured from its own stamp.
    verdict_at = FlagFeedback.objects.get().created_at
    assert (
        expired_purge(dry_run=True, now=verdict_at + timedelta(days=365, seconds=-1))[
            "flag_feedback"
        ]
        == 0
    )
    assert expired_purge(now=verdict_at + timedelta(days=365, seconds=1))["flag_feedback"] == 1
