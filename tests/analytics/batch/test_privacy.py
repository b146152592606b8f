"""Batch jobs name students: erasure takes a student out of every job (the jobs stay for
the others), and finished jobs go after their retention window (SPEC §5, §6)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from analytics.models.batch import BatchJob, BatchJobItem
from analytics.services.batch import batch_job_submit
from compliance.services.erasure import student_erase
from compliance.services.retention import expired_purge
from tests.analytics.batch.support import run_job
from tests.compliance.support import rows_naming

pytestmark = pytest.mark.django_db
IDS = ["s-a2", "s-a1", "s-b1", "s-none"]


def submit(school, ids=IDS) -> BatchJob:
    return batch_job_submit(submitter=school.users["admin"], student_ids=ids, priority="low")


def test_erasure_takes_the_student_out_of_a_finished_job(school):
    job = run_job(submit(school))
    other = run_job(submit(school, ["s-b1"]))
    counts = student_erase(student_id="s-a1", actor=school.users["admin"])
    assert (counts["batch_job_requests"], counts["batch_job_outcomes"]) == (1, 1)

    job.refresh_from_db()
    assert job.student_ids == ["s-a2", None, "s-b1", "s-none"]
    assert (job.total, job.done, job.failed) == (3, 3, 0)
    assert list(job.items.order_by("position").values_list("position", "student_id")) == [
        (0, "s-a2"),
        (2, "s-b1"),
        (3, "s-none"),
    ]
    assert other.items.count() == 1
    assert [hit for hit in rows_naming("s-a1") if hit[0].startswith("analytics_batch")] == []


def test_an_erased_student_is_skipped_by_a_job_queued_before(school):
    job = submit(school)
    student_erase(student_id="s-a1", actor=school.users["admin"])
    job = run_job(job)
    assert (job.status, job.total, job.done, job.failed) == ("completed", 3, 3, 0)
    assert not BatchJobItem.objects.filter(student_id="s-a1").exists()
    assert job.items.count() == job.total


def test_erasure_counts_a_not_found_outcome_out_of_the_failures(school):
    job = run_job(
        batch_job_submit(
            submitter=school.users["teacher"], student_ids=["s-a1", "s-b1"], priority="normal"
        )
    )
    assert (job.done, job.failed) == (1, 1)
    student_erase(student_id="s-b1", actor=school.users["admin"])
    job.refresh_from_db()
    assert (job.total, job.done, job.failed) == (1, 1, 0)


def test_finished_jobs_go_after_their_window_with_their_outcomes(school):
    window = timedelta(days=settings.RETENTION_BATCH_JOBS_DAYS)
    now = timezone.now()
    expired, kept = run_job(submit(school)), run_job(submit(school))
    unfinished = submit(school)
    for job, age in ((expired, window + timedelta(days=1)), (kept, window - timedelta(days=1))):
        BatchJob.objects.filter(pk=job.pk).update(
            submitted_at=now - age, finished_at=now - age + timedelta(seconds=2)
        )
        job.items.update(created_at=now - age + timedelta(seconds=1))
    BatchJob.objects.filter(pk=unfinished.pk).update(submitted_at=now - 2 * window)

    counts = expired_purge(now=now)
    assert (counts["batch_job_outcomes"], counts["batch_job_requests"]) == (4, 1)
    assert set(BatchJob.objects.values_list("pk", flat=True)) == {kept.pk, unfinished.pk}
    assert BatchJobItem.objects.filter(job=kept).count() == 4
    assert expired_purge(now=now)["batch_job_requests"] == 0
