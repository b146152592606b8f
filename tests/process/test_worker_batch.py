"""Batch jobs through the real worker (`manage.py run_worker`, a subprocess on this test
run's database): 10,000 students end to end, priorities as the worker observes them, and
a worker SIGKILLed in the middle of a job, then restarted."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from analytics.models.batch import BatchJob
from analytics.services.batch import WORKER_LOST_CLASS
from mastery.models import MasteryRecord, User
from mastery.policy import current_policy
from tests.analytics.batch.support import NEW_WEIGHTS, learning_events
from tests.factories import UserFactory, ingest_all

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)
STUDENTS = 10_000


def worker_env(**settings_env: str) -> dict[str, str]:
    database_url = urlunsplit(
        urlsplit(os.environ["DATABASE_URL"])._replace(
            path=f"/{settings.DATABASES['default']['NAME']}"
        )
    )
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mastery_project.settings.test",
        "DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
        "MASTERY_WEIGHTS": json.dumps(NEW_WEIGHTS),
        **settings_env,
    }


@contextmanager
def worker(log: Path, **settings_env: str) -> Iterator[subprocess.Popen]:
    """`run_worker` as the Procfile runs it (a short poll interval, for speed)."""
    command = [sys.executable, "manage.py", "run_worker", "--interval", "0.1", "--no-reload"]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [*command, "--no-startup-delay"],
            cwd=ROOT,
            env=worker_env(**settings_env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(condition, *, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} within {timeout} s; worker log:\n{log.read_text()[-3000:]}")


def finished(job_ids) -> bool:
    jobs = BatchJob.objects.filter(pk__in=job_ids)
    return all(status in BatchJob.FINISHED for status in jobs.values_list("status", flat=True))


@pytest.fixture
def admin(db) -> User:
    return UserFactory(username="admin", role=User.Role.ADMIN)


@pytest.fixture
def many_students(db) -> list[str]:
    """10,000 students with a record each, through the real pipeline."""
    ids = [f"s-{n:05d}" for n in range(STUDENTS)]
    events = [e for n, s in enumerate(ids) for e in learning_events(s, "t.loops", score=n % 11)]
    for start in range(0, len(events), 5000):
        ingest_all(events[start : start + 5000])
    return ids


def submit(client, ids, priority="normal") -> str:
    response = client.post(
        "/api/v1/batch/mastery", {"student_ids": ids, "priority": priority}, format="json"
    )
    assert response.status_code == 202, response.json()
    return response.json()["batch_id"]


def test_ten_thousand_students_complete_and_equal_mastery_query(
    many_students, admin, client_for, tmp_path
):
    client = client_for(admin)
    asked = [*many_students[:-1], "s-nobody"]  # 10,000 ids, one of them unknown
    batch_id = submit(client, asked, priority="high")
    log = tmp_path / "worker.log"
    with worker(log):
        wait_for(lambda: finished([batch_id]), timeout=120, what="the job finished", log=log)
    job = BatchJob.objects.get(pk=batch_id)
    assert (job.status, job.total, job.done, job.failed) == ("completed", STUDENTS, STUDENTS - 1, 1)
    with override_settings(MASTERY_WEIGHTS=NEW_WEIGHTS):
        policy = current_policy().policy_hash
    records = MasteryRecord.objects.values_list("policy_hash", flat=True)
    left_out = many_students[-1]
    assert set(records.exclude(student__student_id=left_out)) == {policy}
    assert records.get(student__student_id=left_out) != policy

    page_size = settings.BATCH_RESULTS_PAGE_SIZE
    positions = [*random.Random(13).sample(range(STUDENTS - 1), 25), 0, STUDENTS - 2]
    for position in positions:
        page = client.get(f"/api/v1/batch/status/{batch_id}?page={position // page_size + 1}")
        student_id = asked[position]
        [result] = [r for r in page.json()["results"] if r["student_id"] == student_id]
        query = client.post("/api/v1/mastery/query", {"student_id": student_id}, format="json")
        assert result == query.json()
    last = client.get(f"/api/v1/batch/status/{batch_id}?page={STUDENTS // page_size}")
    assert last.json()["errors"] == [{"student_id": "s-nobody", "code": "not_found"}]


def test_the_worker_takes_a_later_high_job_before_the_queued_low_ones(admin, client_for, tmp_path):
    ingest_all([e for s in ("s-1", "s-2") for e in learning_events(s, "t.loops", score=5)])
    client = client_for(admin)
    low = [submit(client, ["s-1", "s-2"], priority="low") for _ in range(3)]
    normal = submit(client, ["s-1"], priority="normal")
    high = submit(client, ["s-2"], priority="high")
    log = tmp_path / "worker.log"
    with worker(log):
        wait_for(lambda: finished([*low, normal, high]), timeout=60, what="all ran", log=log)
    started = BatchJob.objects.order_by("started_at").values_list("pk", flat=True)
    assert [str(pk) for pk in started] == [high, normal, *low]
    assert set(BatchJob.objects.values_list("status", flat=True)) == {"completed"}


def test_a_worker_killed_mid_job_is_recovered_by_the_restarted_worker(
    many_students, admin, client_for, tmp_path
):
    lease, reap = 2, 1
    timing = {
        "BATCH_JOB_LEASE_SECONDS": str(lease),
        "BATCH_JOB_REAP_SECONDS": str(reap),
        "BATCH_JOB_CHUNK": "100",
    }
    batch_id = submit(client_for(admin), many_students)
    job = BatchJob.objects.filter(pk=batch_id)
    log = tmp_path / "worker.log"
    with worker(log, **timing) as first:
        wait_for(lambda: job.get().done >= 300, timeout=60, what="the job got going", log=log)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    killed = job.get()
    assert killed.status == "running"
    assert 0 < killed.done < STUDENTS
    first_task = killed.task_id
    assert DBTaskResult.objects.get(pk=first_task).status == "RUNNING"  # as django-tasks left it

    restarted_at = time.monotonic()
    with worker(log, **timing):
        requeued = wait_for(
            lambda: job.get().task_id != first_task, timeout=30, what="re-queued", log=log
        )
        assert requeued
        recovered_after = time.monotonic() - restarted_at
        wait_for(lambda: finished([batch_id]), timeout=120, what="the job finished", log=log)
    # a restarted worker reaps at once; a dead lease is over `lease` after its heartbeat
    assert recovered_after < lease + reap + 5
    done = job.get()
    assert (done.status, done.done, done.failed, done.attempts) == ("completed", STUDENTS, 0, 2)
    positions = sorted(done.items.values_list("position", flat=True))
    assert positions == list(range(STUDENTS))  # each student once, none lost, none twice
    lost = DBTaskResult.objects.get(pk=first_task)
    assert (lost.status, lost.exception_class_path) == ("FAILED", WORKER_LOST_CLASS)
