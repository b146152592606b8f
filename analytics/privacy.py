"""What analytics stores about a student (see `mastery_project.privacy`).

For now only the batch jobs: django-tasks keeps each job's arguments and result, and a
batch names its students by their external ids. Predictions, recommendations and
feedback add their lines here with their tables.
"""

from django.db.models import BooleanField, F, Func, JSONField, Model, Q, QuerySet, Value
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from mastery_project.privacy import StudentData


def _holds(column: str, value: str) -> Func:
    """True where the JSON column holds `value` as a string anywhere in its document."""
    return Func(
        F(column),
        Value("$.** ? (@ == $value)"),
        Value({"value": value}, output_field=JSONField()),
        function="jsonb_path_exists",
        output_field=BooleanField(),
    )


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
)
