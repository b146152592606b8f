"""`/metrics` shows the batch jobs by status and priority, and how long finished ones ran,
from the jobs' table: the same in every web process, multiprocess mode included."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from analytics.models.batch import BatchJob
from analytics.services.batch import batch_job_submit
from tests.analytics.batch.support import run_job

pytestmark = pytest.mark.django_db


def scrape(client) -> dict[str, dict[tuple, float]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.fixture
def jobs(school) -> None:
    admin = school.users["admin"]

    def submit(priority: str) -> BatchJob:
        return batch_job_submit(submitter=admin, student_ids=["s-a1"], priority=priority)

    run_job(submit("high"))
    submit("low")
    submit("low")
    running = submit("normal")
    BatchJob.objects.filter(pk=running.pk).update(status="running")
    failed = submit("low")
    now = timezone.now()
    BatchJob.objects.filter(pk=failed.pk).update(
        status="failed", started_at=now - timedelta(seconds=40), finished_at=now
    )


@pytest.mark.parametrize("multiprocess", [False, True], ids=["one-process", "gunicorn-mode"])
def test_jobs_by_status_and_priority_and_their_durations(
    jobs, client, monkeypatch, tmp_path, multiprocess
):
    if multiprocess:
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics = scrape(client)
    jobs_by = {
        (labels[0][1], labels[1][1]): value
        for labels, value in metrics["mastery_batch_jobs"].items()
    }  # (priority, status)
    assert len(jobs_by) == 12  # every status x priority, zeros included
    assert {key: n for key, n in jobs_by.items() if n} == {
        ("high", "completed"): 1,
        ("low", "queued"): 2,
        ("normal", "running"): 1,
        ("low", "failed"): 1,
    }
    buckets = metrics["mastery_batch_job_duration_seconds_bucket"]
    failed_low = {dict(k)["le"]: v for k, v in buckets.items() if ("status", "failed") in k}
    assert (failed_low["30.0"], failed_low["60.0"], failed_low["+Inf"]) == (0, 1, 1)
    completed = {dict(k)["le"]: v for k, v in buckets.items() if ("status", "completed") in k}
    assert completed["+Inf"] == 1
    sums = metrics["mastery_batch_job_duration_seconds_gsum"]
    assert sums[(("priority", "low"), ("status", "failed"))] == pytest.approx(40)
