"""Batch jobs (SPEC §3.4): submitted by the API, run by the worker in chunks, reaped when
their worker dies.

- **Priorities.** `high`, `normal` and `low` are django-tasks priorities (`TASK_PRIORITY`):
  the database worker takes the highest priority first, then the earliest queued.
- **Progress.** Each chunk of BATCH_JOB_CHUNK students is one transaction under the job's
  row lock: the students' records are rescored, their outcomes stored, the counts, the
  resume position and the heartbeat moved forward together. A chunk that fails leaves
  nothing half-written, and a resumed job starts at the first student not done.
- **Never stuck.** A running job whose heartbeat is older than BATCH_JOB_LEASE_SECONDS,
  or whose task ended without finishing it, has lost its worker: the reaper re-queues it
  under a new task (the job's `task_id` moves to it, so the old run, if it is in fact
  alive, can write nothing more), or fails it `worker_lost` once it has been queued
  BATCH_JOB_MAX_ATTEMPTS times. A chunk cannot outlast the lease (statement timeout), so a
  live worker is never mistaken for a dead one. A job that raises is failed with its code.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from analytics.models.batch import BatchJob, BatchJobItem
from analytics.tasks.batch import batch_mastery_run
from mastery.models import Topic, User
from mastery.selectors import students_visible_to
from mastery.services import students_rescore
from mastery_project.access import students_audit
from mastery_project.correlation import correlation_id
from mastery_project.errors import UNAVAILABLE, ApplicationError, NotFound
from mastery_project.privacy import Erasure

logger = logging.getLogger(__name__)

# django-tasks priorities run from -100 to 100; its worker takes the highest first.
TASK_PRIORITY = {
    BatchJob.Priority.HIGH: 10,
    BatchJob.Priority.NORMAL: 0,
    BatchJob.Priority.LOW: -10,
}
OPEN = (BatchJob.Status.QUEUED, BatchJob.Status.RUNNING)
UNFINISHED_TASK = (TaskResultStatus.READY, TaskResultStatus.RUNNING)
NOT_FOUND = "not_found"
WORKER_LOST = "worker_lost"


class TooManyOpenBatches(ApplicationError):
    status_code = 429
    code = "too_many_open_batches"


class SubmitterGone(ApplicationError):
    code = "submitter_not_found"


class Superseded(Exception):
    """This run no longer owns its job: the reaper handed it to another task, or it ended."""


class WorkerLost(Exception):
    """What the reaper records on a task whose worker stopped (django-tasks shows it)."""


WORKER_LOST_CLASS = f"{WorkerLost.__module__}.{WorkerLost.__qualname__}"


def batch_job_submit(
    *,
    submitter: User,
    student_ids: list[str],
    priority: str,
    topic: str | None = None,
    correlation: str = "",
) -> BatchJob:
    """Queue a job for these students (distinct ids, validated by the caller) at
    `priority`. Which of them the submitter may see is decided when the job runs: the
    others become `not_found` outcomes, never processed. Refused with 429 when the
    submitter already has BATCH_JOB_OPEN_PER_SUBMITTER unfinished jobs."""
    if topic is not None and not Topic.objects.filter(slug=topic).exists():
        raise NotFound("No such topic.", code="topic_not_found")
    with transaction.atomic():
        # One submission at a time per submitter, so that the cap holds.
        User.objects.select_for_update().filter(pk=submitter.pk).first()
        limit = settings.BATCH_JOB_OPEN_PER_SUBMITTER
        unfinished = BatchJob.objects.filter(submitted_by=submitter, status__in=OPEN).count()
        if unfinished >= limit:
            raise TooManyOpenBatches(
                f"{unfinished} of your batch jobs are unfinished; submit when one is done.",
                details={"unfinished": unfinished, "limit": limit},
                headers={"Retry-After": "10"},
            )
        job = BatchJob.objects.create(
            submitted_by=submitter,
            priority=priority,
            topic=topic or "",
            student_ids=list(student_ids),
            total=len(student_ids),
            attempts=1,
            correlation_id=correlation,
        )
        job.task_id = _enqueue(job)
        job.save(update_fields=["task_id"])
    job.refresh_from_db(fields=["submitted_at"])
    return job


def _enqueue(job: BatchJob, *, run_after: datetime | None = None) -> uuid.UUID:
    """Queue the job's task at its priority; the task's id, which then owns the job."""
    task = batch_mastery_run.using(
        backend=settings.BATCH_TASKS_BACKEND,  # the database backend, whatever TASKS_BACKEND
        priority=TASK_PRIORITY[job.priority],
        run_after=run_after,
    )
    return uuid.UUID(task.enqueue(str(job.pk)).id)


def batch_job_run(*, batch_id: str, task_id: str) -> dict:
    """The task's body: claim the job for this task, then process it chunk by chunk.

    A job this task does not own (re-queued under another task, finished, or gone) is
    left alone. A chunk that raises fails the job with the error's code, and the error
    goes on to django-tasks, which keeps its traceback."""
    now = timezone.now()
    claimed = BatchJob.objects.filter(
        pk=batch_id, task_id=task_id, status=BatchJob.Status.QUEUED
    ).update(
        status=BatchJob.Status.RUNNING,
        started_at=Coalesce(F("started_at"), Value(now)),
        heartbeat_at=now,
    )
    if not claimed:
        return {"ran": False}
    job = BatchJob.objects.only("correlation_id").get(pk=batch_id)
    # The job's audit entries carry the id of the request that submitted it.
    token = correlation_id.set(job.correlation_id or "-")
    try:
        while _chunk_run(batch_id=batch_id, task_id=task_id):
            pass
    except Superseded:
        return {"ran": False}
    except Exception as exc:
        _job_fail(batch_id=batch_id, task_id=task_id, error=exc)
        raise
    finally:
        correlation_id.reset(token)
    job = BatchJob.objects.only("total", "done", "failed").get(pk=batch_id)
    return {"ran": True, "total": job.total, "done": job.done, "failed": job.failed}


def _chunk_run(*, batch_id: str, task_id: str) -> bool:
    """One chunk, in one transaction under the job's lock. False once the job is done."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            # No chunk outlasts the lease: past it, the job counts as lost.
            timeout_ms = settings.BATCH_JOB_LEASE_SECONDS * 1000
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(timeout_ms)])
        job = (
            BatchJob.objects.select_for_update(of=("self",))
            .select_related("submitted_by")
            .filter(pk=batch_id, task_id=task_id, status=BatchJob.Status.RUNNING)
            .first()
        )
        if job is None:
            raise Superseded(batch_id)
        now = timezone.now()
        start = job.next_position
        ids = job.student_ids[start : start + settings.BATCH_JOB_CHUNK]
        if not ids:
            job.status = BatchJob.Status.COMPLETED
            job.finished_at = job.heartbeat_at = now
            job.save(update_fields=["status", "finished_at", "heartbeat_at"])
            return False
        if job.submitted_by is None:
            raise SubmitterGone("The login that submitted this job no longer exists.")
        asked = [s for s in ids if s is not None]  # None: erased since it was submitted
        visible = {
            s.student_id: s
            for s in students_visible_to(job.submitted_by).filter(student_id__in=asked)
        }
        mastery = students_rescore(students=list(visible.values()), topic=job.topic or None)
        outcomes, refused = [], []
        for position, student_id in enumerate(ids, start=start):
            if student_id is None:
                continue
            if student_id in visible:
                # What `mastery/query` reads, as data; the status renders it as the query does.
                stored = orjson.dumps(mastery[visible[student_id].pk]).decode()
                outcomes.append((job.pk, position, student_id, "", stored))
            else:
                refused.append(student_id)
                outcomes.append((job.pk, position, student_id, NOT_FOUND, None))
        _outcomes_write(outcomes)
        students_audit(
            actor=job.submitted_by,
            action="batch.rescore",
            student_refs=list(visible),
            refused_ids=refused,
            resource=f"batch/{job.pk}",
        )
        job.done += len(visible)
        job.failed += len(refused)
        job.next_position = start + len(ids)
        job.heartbeat_at = now
        job.save(update_fields=["done", "failed", "next_position", "heartbeat_at"])
    return True


def _outcomes_write(rows: list[tuple]) -> None:
    """The chunk's outcomes in one COPY (rows of job, position, student_id, error_code and
    the mastery document as JSON text)."""
    table = connection.ops.quote_name(BatchJobItem._meta.db_table)
    columns = "job_id, position, student_id, error_code, mastery"
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _job_fail(*, batch_id: str, task_id: str, error: Exception) -> None:
    if isinstance(error, ApplicationError):
        code, message = error.code, error.message
    elif isinstance(error, UNAVAILABLE):
        code, message = "service_unavailable", "A backing service was unavailable."
    else:
        code, message = "internal_error", f"The job stopped on a {type(error).__name__}."
    logger.warning("batch job %s failed: %s (%s)", batch_id, code, type(error).__name__)
    BatchJob.objects.filter(pk=batch_id, task_id=task_id, status__in=OPEN).update(
        status=BatchJob.Status.FAILED,
        error_code=code,
        error_message=message,
        finished_at=timezone.now(),
    )


@dataclass(frozen=True)
class Reaped:
    requeued: int
    failed: int


def batch_jobs_lost(*, now: datetime) -> QuerySet[BatchJob]:
    """Unfinished jobs that no live run holds: a running one whose heartbeat is older than
    the lease; a queued one whose task a worker took and never started (older than the
    lease); one whose task ended, or is gone, while the job is open."""
    cutoff = now - timedelta(seconds=settings.BATCH_JOB_LEASE_SECONDS)
    task = DBTaskResult.objects.filter(pk=OuterRef("task_id"))
    return (
        BatchJob.objects.filter(status__in=OPEN)
        .annotate(
            task_status=Subquery(task.values("status")),
            task_started_at=Subquery(task.values("started_at")),
        )
        .filter(
            Q(status=BatchJob.Status.RUNNING, heartbeat_at__lt=cutoff)
            | Q(
                status=BatchJob.Status.QUEUED,
                task_status=TaskResultStatus.RUNNING,
                task_started_at__lt=cutoff,
            )
            | Q(task_status__in=[TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED])
            | Q(task_status__isnull=True)
        )
    )


def batch_jobs_reap(*, now: datetime | None = None) -> Reaped:
    """Re-queue, or fail, the jobs whose worker died (see the module's docstring). A job a
    run is working on right now is locked, and skipped."""
    now = now or timezone.now()
    requeued = failed = 0
    with transaction.atomic():
        lost = batch_jobs_lost(now=now).select_for_update(skip_locked=True, of=("self",))
        for job in lost:
            # The lost task is over: no worker should take it up, nor show it running.
            DBTaskResult.objects.filter(pk=job.task_id, status__in=UNFINISHED_TASK).update(
                status=TaskResultStatus.FAILED,
                finished_at=now,
                exception_class_path=WORKER_LOST_CLASS,
                traceback="The worker running this task stopped; the batch job was reaped.",
            )
            if job.attempts >= settings.BATCH_JOB_MAX_ATTEMPTS:
                job.status = BatchJob.Status.FAILED
                job.error_code = WORKER_LOST
                job.error_message = (
                    f"The worker running this job stopped, {job.attempts} times in a row."
                )
                job.finished_at = now
                failed += 1
            else:
                job.status = BatchJob.Status.QUEUED
                job.attempts += 1
                # Back at the head of its priority: it was already running.
                job.task_id = _enqueue(job, run_after=job.submitted_at)
                requeued += 1
            job.save(
                update_fields=[
                    "status", "attempts", "task_id", "error_code", "error_message", "finished_at",
                ]
            )  # fmt: skip
    return Reaped(requeued=requeued, failed=failed)


def batch_jobs_forget_student(rows: QuerySet, erasure: Erasure) -> int:
    """How erasure treats the jobs that asked for the student (`analytics.privacy`): each
    job stays, for its other students; the student's id becomes NULL in its list (the
    positions after it keep their place) and leaves its counts; the outcome row goes next,
    by its own declaration. The jobs are locked first, as a running chunk locks its job,
    so that the counts include an outcome written just before. Returns the jobs changed."""
    student_id = erasure.student.student_id
    jobs = list(rows.select_for_update().values_list("pk", flat=True))
    if not jobs:
        return 0
    outcomes = BatchJobItem.objects.filter(job=OuterRef("pk"), student_id=student_id)

    def counted(condition: Q) -> Coalesce:
        tally = outcomes.filter(condition).order_by().values("job").annotate(n=Count("pk"))
        return Coalesce(Subquery(tally.values("n"), output_field=IntegerField()), 0)

    # Ids are distinct within a job: the student is there once.
    return BatchJob.objects.filter(pk__in=jobs).update(
        student_ids=Func(
            F("student_ids"),
            Value(student_id),
            Value(None),
            function="array_replace",
            output_field=BatchJob._meta.get_field("student_ids"),
        ),
        total=F("total") - 1,
        done=F("done") - counted(Q(error_code="")),
        failed=F("failed") - counted(~Q(error_code="")),
    )
