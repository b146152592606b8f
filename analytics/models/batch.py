"""Batch jobs (SPEC §3.4): a request to bring many students up to date, run by the worker.

django-tasks queues and runs the job (`analytics.tasks.batch`); these tables hold what the
queue does not: who asked, the students asked for, progress, and one outcome per student.
The queue's own row (`DBTaskResult`) carries only the job's id, so it names no student.
"""

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now

from mastery.models import STUDENT_ID_VALIDATOR


class BatchJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    class Priority(models.TextChoices):
        HIGH = "high", "High"
        NORMAL = "normal", "Normal"
        LOW = "low", "Low"

    FINISHED = (Status.COMPLETED, Status.FAILED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    priority = models.CharField(max_length=8, choices=Priority.choices)
    # One topic's records only, or every topic's ("").
    topic = models.CharField(max_length=100, blank=True)
    # The ids asked for, in order: a position is a student's place in the job. An erased
    # student's id becomes NULL, so that the positions after it stay where they were.
    student_ids = ArrayField(
        models.CharField(max_length=64, null=True, validators=[STUDENT_ID_VALIDATOR])
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField()
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # The first position not processed yet: a re-queued job resumes there.
    next_position = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The django-tasks result that owns the job now. A run whose id is not this one has
    # been superseded (its worker was presumed dead) and may write nothing.
    task_id = models.UUIDField(null=True)
    correlation_id = models.CharField(max_length=128, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    submitted_at = models.DateTimeField(db_default=Now())
    started_at = models.DateTimeField(null=True)
    # Written with every chunk of progress: a running job whose heartbeat is older than
    # BATCH_JOB_LEASE_SECONDS has lost its worker.
    heartbeat_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["submitted_by", "-submitted_at"], name="batch_job_submitter"),
            models.Index(
                fields=["status"],
                name="batch_job_open",
                condition=models.Q(status__in=["queued", "running"]),
            ),
            models.Index(fields=["finished_at"], name="batch_job_finished"),
        ]

    def __str__(self) -> str:
        return f"batch {self.id} ({self.status})"


class BatchJobItem(models.Model):
    """The outcome for one student of a job: its mastery as `mastery/query` answers it, or
    an error code (`not_found`)."""

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    student_id = models.CharField(max_length=64)
    error_code = models.CharField(max_length=32, blank=True)
    mastery = models.JSONField(null=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="uniq_batch_item_position")
        ]
        indexes = [models.Index(fields=["student_id"], name="batch_item_student")]

    def __str__(self) -> str:
        return f"{self.job_id}#{self.position} {self.student_id}"
