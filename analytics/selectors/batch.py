"""Reads of batch jobs: a job as its submitter or an admin sees it, its outcomes in order,
and the figures `/metrics` shows."""

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime

from django.db import DatabaseError, connection
from django.db.models import Count, QuerySet
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily

from analytics.models.batch import BatchJob, BatchJobItem
from mastery.models import User
from mastery.selectors import StudentMastery, TopicMastery
from mastery_project.errors import NotFound

logger = logging.getLogger(__name__)

# Seconds from a job's start to its end (SPEC §8: 10,000 students in under 5 s).
DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


def batch_jobs_visible_to(user: User) -> QuerySet[BatchJob]:
    """An admin sees every job; anyone else the jobs it submitted."""
    jobs = BatchJob.objects.select_related("submitted_by")
    if user.role == User.Role.ADMIN:
        return jobs
    return jobs.filter(submitted_by=user)


def batch_job_get(user: User, batch_id: str) -> BatchJob:
    """The job, or NotFound when it does not exist *or* the caller may not see it."""
    try:
        key = uuid.UUID(batch_id)
    except ValueError:
        key = None
    job = batch_jobs_visible_to(user).filter(pk=key).first() if key else None
    if job is None:
        raise NotFound("No such batch job.", code="batch_not_found")
    return job


def batch_job_outcomes(job: BatchJob) -> QuerySet[BatchJobItem]:
    """The job's outcomes so far, in the order the students were asked for."""
    return job.items.order_by("position").only("student_id", "error_code", "mastery")


def batch_outcome_mastery(stored: dict) -> StudentMastery:
    """A student's mastery as the job stored it (`StudentMastery` as JSON), ready to be
    rendered as `mastery/query` renders it."""
    topics = [
        TopicMastery(
            **{**t, "updated_at": t["updated_at"] and datetime.fromisoformat(t["updated_at"])}
        )
        for t in stored["topics"]
    ]
    return StudentMastery(**{**stored, "topics": topics})


class BatchJobCollector:
    """`/metrics`: jobs by status and priority, and how long finished ones ran, read from
    the jobs' table at each scrape, so every web process shows the worker's figures.

    Finished jobs count while they are kept (RETENTION_BATCH_JOBS_DAYS), so the figures
    are gauges: the purge lowers them."""

    def collect(self) -> Iterable:
        try:
            counts, durations = _job_counts(), _job_durations()
        except DatabaseError as exc:
            logger.warning("batch job figures unavailable: %s", exc)
            return []
        jobs = GaugeMetricFamily(
            "mastery_batch_jobs",
            "Batch jobs by status (queued, running, completed, failed) and priority.",
            labels=["status", "priority"],
        )
        for status in BatchJob.Status.values:
            for priority in BatchJob.Priority.values:
                jobs.add_metric([status, priority], counts.get((status, priority), 0))
        duration = GaugeHistogramMetricFamily(
            "mastery_batch_job_duration_seconds",
            "Seconds from start to end of the finished batch jobs kept, by priority and status.",
            labels=["priority", "status"],
        )
        for (priority, status), (buckets, total) in sorted(durations.items()):
            bounds = [str(b) for b in DURATION_BUCKETS] + ["+Inf"]
            duration.add_metric(
                [priority, status], list(zip(bounds, buckets, strict=True)), gsum_value=total
            )
        return [jobs, duration]


def _job_counts() -> dict[tuple[str, str], int]:
    rows = BatchJob.objects.order_by().values("status", "priority").annotate(n=Count("pk"))
    return {(row["status"], row["priority"]): row["n"] for row in rows}


def _job_durations() -> dict[tuple[str, str], tuple[list[int], float]]:
    """Per (priority, status) of finished jobs: the cumulative count at each bucket bound
    (the last is every job) and the sum of their durations, in one aggregate."""
    table = connection.ops.quote_name(BatchJob._meta.db_table)
    per_bucket = ", ".join(
        f"count(*) FILTER (WHERE seconds <= {float(bound)})" for bound in DURATION_BUCKETS
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT priority, status, {per_bucket}, count(*), coalesce(sum(seconds), 0)
                FROM (SELECT priority, status,
                        extract(epoch FROM finished_at - started_at) AS seconds
                      FROM {table}
                      WHERE finished_at IS NOT NULL AND started_at IS NOT NULL) AS finished
                GROUP BY priority, status"""  # noqa: S608 (names from _meta, constant bounds)
        )
        return {
            (priority, status): (list(counts[:-1]), float(counts[-1]))
            for priority, status, *counts in cursor.fetchall()
        }
