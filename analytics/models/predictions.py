"""Tables of the predictions (SPEC §3.1): what the API served, teachers' verdicts on flags,
the latest back-test, and the running histogram of the served predictions' errors."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now

from mastery.models import Student, Topic


class PredictionRecord(models.Model):
    """A next-week prediction served by the API, kept to measure its error once the target
    day has passed. One per (student, topic or overall, day made): a prediction served again
    the same day after new events replaces the day's row."""

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="+")
    # None: the student's overall mastery.
    topic = models.ForeignKey(Topic, null=True, on_delete=models.CASCADE, related_name="+")
    made_on = models.DateField()
    target_day = models.DateField()
    predicted = models.FloatField()
    method = models.CharField(max_length=16)
    created_at = models.DateTimeField(db_default=Now())
    # Filled in by the worker once the target day has passed (`prediction_errors_score`).
    actual = models.FloatField(null=True, blank=True)
    abs_error = models.FloatField(null=True, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["student", "topic", "made_on"],
                name="uniq_prediction_student_topic_day",
                nulls_distinct=False,
            )
        ]
        indexes = [
            models.Index(
                fields=["target_day"],
                name="prediction_unscored",
                condition=models.Q(scored_at__isnull=True),
            ),
            models.Index(fields=["made_on"], name="prediction_made_on"),
        ]

    def __str__(self) -> str:
        return f"{self.student_id}/{self.topic_id or 'overall'} {self.made_on} → {self.predicted}"


class FlagFeedback(models.Model):
    """A teacher's (or an admin's) verdict on a flag, with the flag as it then stood."""

    class Verdict(models.TextChoices):
        USEFUL = "useful", "Useful"
        NOT_USEFUL = "not_useful", "Not useful"
        INCORRECTLY_FLAGGED = "incorrectly_flagged", "Incorrectly flagged"
        ACTED = "acted", "Acted on it"

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="+")
    topic = models.ForeignKey(Topic, null=True, on_delete=models.CASCADE, related_name="+")
    verdict = models.CharField(max_length=24, choices=Verdict.choices)
    comment = models.TextField(blank=True, max_length=2000)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_username = models.CharField(max_length=150, blank=True)
    author_role = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    # The prediction the verdict judged.
    flagged = models.BooleanField()
    predicted = models.FloatField()
    method = models.CharField(max_length=16)
    reason_codes = ArrayField(models.CharField(max_length=32), default=list, blank=True)

    class Meta:
        indexes = [models.Index(fields=["student", "created_at"], name="flagfeedback_student")]

    def __str__(self) -> str:
        return f"{self.student_id}/{self.topic_id or 'overall'}: {self.verdict}"


class BacktestReport(models.Model):
    """The latest back-test (one row): its table, and the forecasters served since.

    `served` maps each scope (`topic`, `overall`) to `{method, shrinkage}`. Only a run at the
    served horizon (7 days) chooses them; a run at another horizon keeps the previous
    choice, so it can be studied without changing what the API serves."""

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON)
    created_at = models.DateTimeField()
    horizon = models.PositiveSmallIntegerField()
    cohort_id = models.CharField(max_length=64, blank=True)
    since = models.DateField(null=True, blank=True)
    report = models.JSONField()
    served = models.JSONField(default=dict)
    duration_seconds = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"back-test of {self.created_at:%Y-%m-%d %H:%M}, {self.horizon}-day horizon"


class PredictionErrorTally(models.Model):
    """The `mastery_prediction_abs_error` histogram, per method and scope: cumulative counts
    the worker adds to as it scores predictions, which `/metrics` reads in any process.
    Kept apart from the records (which are purged and erased) so that it only ever grows,
    as a Prometheus histogram must."""

    method = models.CharField(max_length=16)
    scope = models.CharField(max_length=8)
    # Observations per bucket of `ERROR_BUCKETS` (not cumulative), then above the last.
    bucket_counts = ArrayField(models.BigIntegerField())
    error_sum = models.FloatField(default=0.0)
    observations = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["method", "scope"], name="uniq_error_tally_method")
        ]

    def __str__(self) -> str:
        return f"{self.method}/{self.scope}: {self.observations}"
