"""Batch jobs in the admin: admins only, read-only, the job's state and its `not_found`
students, that read audited."""

import pytest
from django.test import Client
from django.urls import reverse

from analytics.models.batch import BatchJob
from analytics.services.batch import batch_job_submit
from compliance.models import AuditLog
from tests.analytics.batch.support import run_job

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:analytics_batchjob_changelist")


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def job(school) -> BatchJob:
    return run_job(
        batch_job_submit(
            submitter=school.users["teacher"],
            student_ids=["s-a1", "s-b1", "s-ghost"],
            priority="high",
        )
    )


def change_url(job: BatchJob) -> str:
    return reverse("admin:analytics_batchjob_change", args=[job.pk])


def test_an_admin_sees_the_jobs_with_their_progress_and_submitter(school, job):
    response = client_of(school.users["admin"]).get(CHANGELIST)
    assert response.status_code == 200
    page = response.content.decode()
    assert str(job.pk) in page
    assert "1 done, 2 failed, of 3" in page
    assert "teacher-a" in page
    assert "s-b1" not in page  # the list names no student
    assert not AuditLog.objects.filter(action__startswith="admin.batch").exists()


def test_a_jobs_page_lists_the_students_not_processed_and_audits_the_read(school, job):
    response = client_of(school.users["admin"]).get(change_url(job))
    assert response.status_code == 200
    page = response.content.decode()
    assert "<li>s-b1 (not_found)</li>" in page
    assert "<li>s-ghost (not_found)</li>" in page
    assert "s-a1" not in page  # a result is not shown, only that it was done
    assert 'name="_save"' not in page  # read-only
    audited = AuditLog.objects.filter(action="admin.batch.view")
    assert sorted(audited.values_list("student_ref", "actor__username")) == [
        ("s-b1", "admin"),
        ("s-ghost", "admin"),
    ]


def test_a_failed_job_shows_why(school, job):
    BatchJob.objects.filter(pk=job.pk).update(
        status="failed", error_code="worker_lost", error_message="The worker stopped, 3 times."
    )
    page = client_of(school.users["admin"]).get(change_url(job)).content.decode()
    assert "worker_lost" in page
    assert "The worker stopped, 3 times." in page


@pytest.mark.parametrize("role", ["teacher", "other_teacher"])
def test_teachers_have_no_batch_admin(school, job, role):
    client = client_of(school.users[role])
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(change_url(job)).status_code == 403


def test_nobody_changes_adds_or_deletes_a_job(school, job):
    client = client_of(school.users["admin"])
    assert client.post(change_url(job), {"status": "completed"}).status_code == 403
    assert client.get(reverse("admin:analytics_batchjob_add")).status_code == 403
    delete = reverse("admin:analytics_batchjob_delete", args=[job.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert BatchJob.objects.filter(pk=job.pk).exists()
