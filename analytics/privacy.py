"""What analytics stores about a student (see `mastery_project.privacy`).

The batch jobs (django-tasks keeps each job's arguments and result, and a batch names its
students by their external ids), and each feature's tables.
"""

from django.db.models import (
    BooleanField,
    Exists,
    F,
    Func,
    JSONField,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from analytics.models.batch import BatchJob, BatchJobItem
from analytics.models.predictions import FlagFeedback, PredictionRecord
from analytics.models.recommendations import Recommendation, RecommendationFeedback
from analytics.services.batch import batch_jobs_forget_student
from mastery_project.privacy import Export, StudentData


def _holds(column: str, value: str) -> Func:
    """True where the JSON column holds `value` as a string anywhere in its document."""
    return Func(
        F(column),
        Value("$.** ? (@ == $value)"),
        Value({"value": value}, output_field=JSONField()),
        function="jsonb_path_exists",
        output_field=BooleanField(),
    )


def _flag_feedback_row(row: dict) -> dict:
    """A verdict on a flag beside the feedback on recommendations, marked as such."""
    topic = row.pop("topic__slug")
    return {"about": "flag", "topic": topic, **row}


def _jobs_naming(student: Model) -> QuerySet:
    return DBTaskResult.objects.filter(
        _holds("args_kwargs", student.student_id) | _holds("return_value", student.student_id)
    )


STUDENT_DATA = (
    # Erased whole, queued ones too: a job run after the erasure would name the student
    # again in its result. Not exported: what a job computed is in the records exported.
    StudentData(
        kind="batch_jobs",
        model=DBTaskResult,
        student_field="args_kwargs",
        rows=_jobs_naming,
        retention_setting="RETENTION_BATCH_JOBS_DAYS",
        retention_field="finished_at",
        retention_filter=Q(status__in=[TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED]),
    ),
    # A batch job's outcome for one student (its mastery then, or `not_found`), purged
    # with its finished job: an outcome is written before its job finishes, so one
    # written before the cutoff belongs to a job finished before it too. Not exported,
    # like the queue's rows: what a job computed is in the records exported.
    StudentData(
        kind="batch_job_outcomes",
        model=BatchJobItem,
        student_field="student_id",
        rows=lambda student: BatchJobItem.objects.filter(student_id=student.student_id),
        retention_setting="RETENTION_BATCH_JOBS_DAYS",
        retention_field="created_at",
        retention_filter=Q(job__status__in=BatchJob.FINISHED),
    ),
    # The jobs that asked for the student: erasure takes the student out of each (the job
    # stays for its other students); a finished job goes after its window, once its
    # outcomes have gone (the purge deletes in SQL, which cascades nothing).
    StudentData(
        kind="batch_job_requests",
        model=BatchJob,
        student_field="student_ids",
        rows=lambda student: BatchJob.objects.filter(student_ids__contains=[student.student_id]),
        erase=batch_jobs_forget_student,
        retention_setting="RETENTION_BATCH_JOBS_DAYS",
        retention_field="finished_at",
        retention_filter=Q(~Exists(BatchJobItem.objects.filter(job=OuterRef("pk")))),
    ),
    # Recommendations: a current one is the student's present state (kept, like a mastery
    # record); a superseded one goes a retention window after it was superseded, once its
    # feedback has gone (the purge deletes in SQL, which cascades nothing).
    StudentData(
        kind="recommendations",
        model=Recommendation,
        student_field="student",
        export=Export(
            "derived.recommendations",
            lambda rows: rows.order_by("created_at", "id").values(
                "id",
                "topic__slug",
                "component",
                "score",
                "action",
                "priority",
                "impact",
                "steps",
                "target",
                "estimated_minutes",
                "message",
                "created_at",
                "superseded_at",
            ),
        ),
        retention_setting="RETENTION_RECOMMENDATIONS_DAYS",
        retention_field="superseded_at",
        retention_filter=Q(
            ~Exists(RecommendationFeedback.objects.filter(recommendation=OuterRef("pk")))
        ),
    ),
    StudentData(
        kind="recommendation_feedback",
        model=RecommendationFeedback,
        student_field="recommendation",
        rows=lambda student: RecommendationFeedback.objects.filter(recommendation__student=student),
        export=Export(
            "derived.feedback",
            lambda rows: rows.order_by("created_at", "id").values(
                "recommendation_id",
                "author_role",
                "helpful",
                "completed",
                "comment",
                "created_at",
                "updated_at",
                topic=F("recommendation__topic__slug"),
            ),
            shape=lambda row: {"about": "recommendation", **row},
        ),
        retention_setting="RETENTION_RECOMMENDATIONS_DAYS",
        retention_field="updated_at",
    ),
    # Predictions served by the API, kept to measure their error (SPEC §3.1, §6: 180 days).
    StudentData(
        kind="predictions",
        model=PredictionRecord,
        student_field="student",
        export=Export(
            "derived.predictions",
            lambda rows: rows.order_by("made_on", "topic__slug", "id").values(
                "topic__slug",
                "made_on",
                "target_day",
                "predicted",
                "method",
                "actual",
                "abs_error",
            ),
        ),
        retention_setting="RETENTION_PREDICTIONS_DAYS",
        retention_field="made_on",
    ),
    # Teachers' verdicts on the student's flags: exported with the author's role, not name
    # (the teacher's identity is the teacher's data).
    StudentData(
        kind="flag_feedback",
        model=FlagFeedback,
        student_field="student",
        export=Export(
            "derived.feedback",
            lambda rows: rows.order_by("created_at", "id").values(
                "verdict",
                "comment",
                "author_role",
                "created_at",
                "flagged",
                "predicted",
                "method",
                "reason_codes",
                "topic__slug",
            ),
            shape=_flag_feedback_row,
        ),
        retention_setting="RETENTION_FLAG_FEEDBACK_DAYS",
        retention_field="created_at",
    ),
)
