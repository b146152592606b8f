"""TASKS_BACKEND: with `rq`, the tasks of the default backend go to RQ over the real Redis
and an RQ worker runs them; batch jobs stay on the database backend, with their priority,
and `run_worker` runs them; the settings each value gives, and a value that is neither."""

import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import django_rq
import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from django_tasks import TaskResultStatus, task_backends
from django_tasks_db.models import DBTaskResult
from django_tasks_rq.backend import Job
from rq import SimpleWorker

from analytics.models.batch import BatchJob
from analytics.models.predictions import PredictionRecord
from analytics.services.batch import batch_job_submit
from analytics.tasks.predictions import prediction_errors_score_task
from mastery.models import User
from tests.analytics.history.support import put_snapshots
from tests.factories import StudentFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


@pytest.fixture
def rq_mode():
    """The settings TASKS_BACKEND=rq gives, on a queue of this test's own (the embedded Redis
    is shared with other test runs); its keys are deleted afterwards."""
    queue = f"test-tasks-{uuid.uuid4().hex[:12]}"
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with override_settings(
        TASKS={
            "default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": [queue]},
            "batch": {"BACKEND": "django_tasks_db.DatabaseBackend"},
        },
        BATCH_TASKS_BACKEND="batch",
        # get_result() reads through the "default" queue's connection, whatever the queue.
        RQ_QUEUES={name: {"URL": settings.REDIS_URL} for name in ("default", queue)},
    ):
        yield queue
        connection = django_rq.get_connection(queue)
        stale = list(connection.scan_iter(f"rq:*{queue}*"))
        stale += [f"rq:job:{job_id}" for job_id in django_rq.get_queue(queue).job_ids]
        if stale:
            connection.delete(*stale)
    for sig, handler in handlers.items():  # the RQ worker installs its own
        signal.signal(sig, handler)


def run_rq_worker(queue: str) -> None:
    """An RQ worker in this process (no fork, so it shares the test's transaction), until
    the queue is empty."""
    rq_queue = django_rq.get_queue(queue, job_class=Job)
    worker = SimpleWorker([rq_queue], connection=rq_queue.connection, job_class=Job)
    assert worker.work(burst=True)


def test_with_rq_a_task_goes_through_redis_and_an_rq_worker_runs_it(rq_mode, pinned_clock):
    student = StudentFactory(student_id="s-rq")
    today = timezone.now().date()
    put_snapshots(student, [("python.loops", today - timedelta(days=2), 0.6)])
    record = PredictionRecord.objects.create(
        student=student,
        made_on=today - timedelta(days=9),
        target_day=today - timedelta(days=2),
        predicted=0.5,
        method="linear",
    )
    result = prediction_errors_score_task.using(queue_name=rq_mode).enqueue()
    assert result.backend == "default"
    assert type(task_backends["default"]).__name__ == "RQBackend"
    assert django_rq.get_queue(rq_mode).job_ids == [result.id]
    assert not DBTaskResult.objects.exists()  # in Redis, not in the database

    run_rq_worker(rq_mode)

    record.refresh_from_db()
    assert record.actual == 0.6
    assert record.abs_error == pytest.approx(0.1)
    finished = task_backends["default"].get_result(result.id)
    assert finished.status == TaskResultStatus.SUCCESSFUL
    assert finished.return_value == 1
    assert django_rq.get_queue(rq_mode).job_ids == []


@pytest.mark.django_db(transaction=True)
def test_with_rq_batch_jobs_stay_on_the_database_backend_and_run_worker_runs_them(rq_mode):
    submitter = UserFactory(username="admin-rq", role=User.Role.ADMIN)
    StudentFactory(student_id="s-rq1")
    job = batch_job_submit(submitter=submitter, student_ids=["s-rq1", "s-gone"], priority="high")
    queued = DBTaskResult.objects.get(id=job.task_id)
    assert (queued.backend_name, queued.priority) == ("batch", 10)
    assert django_rq.get_queue(rq_mode).job_ids == []

    # `run_worker` under TASKS_BACKEND=rq, on this test's database, until nothing is left.
    database_url = urlunsplit(
        urlsplit(os.environ["DATABASE_URL"])._replace(
            path=f"/{settings.DATABASES['default']['NAME']}"
        )
    )
    worker = run(
        ["manage.py", "run_worker", "--batch", "--no-startup-delay", "--no-reload"],
        DJANGO_SETTINGS_MODULE="mastery_project.settings.test",
        DATABASE_URL=database_url,
        TASKS_BACKEND="rq",
    )
    assert worker.returncode == 0, worker.stderr
    assert "rqworker default --with-scheduler" in worker.stderr  # says who runs the rest

    job.refresh_from_db()
    assert job.status == BatchJob.Status.COMPLETED
    assert (job.done, job.failed) == (1, 1)  # s-gone does not exist: not_found
    assert DBTaskResult.objects.get(id=job.task_id).status == TaskResultStatus.SUCCESSFUL


# --- the settings of each value (their own processes) ------------------------------------

PRINT_TASKS = (
    "import json, django; django.setup(); from django.conf import settings;"
    " print(json.dumps({'tasks': {k: v['BACKEND'] for k, v in settings.TASKS.items()},"
    " 'batch': settings.BATCH_TASKS_BACKEND, 'rq_installed': 'django_rq' in"
    " settings.INSTALLED_APPS, 'rq_queues': sorted(settings.RQ_QUEUES)}))"
)


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "TASKS_BACKEND"}
    environment.update({"DJANGO_SETTINGS_MODULE": "mastery_project.settings.local", **env})
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def tasks_settings(**env: str) -> dict:
    result = run(["-c", PRINT_TASKS], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_database_backend_is_the_default():
    assert tasks_settings() == {
        "tasks": {"default": "django_tasks_db.DatabaseBackend"},
        "batch": "default",
        "rq_installed": False,
        "rq_queues": ["default"],
    }


def test_tasks_backend_rq_switches_the_default_backend_and_its_worker_exists():
    assert tasks_settings(TASKS_BACKEND="rq") == {
        "tasks": {
            "default": "django_tasks_rq.RQBackend",
            "batch": "django_tasks_db.DatabaseBackend",
        },
        "batch": "batch",
        "rq_installed": True,
        "rq_queues": ["default"],
    }
    # The RQ backend's own checks (django_rq installed, its queues configured, rq's version).
    checked = run(["manage.py", "check"], TASKS_BACKEND="rq")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    worker = run(["manage.py", "rqworker", "--help"], TASKS_BACKEND="rq")
    assert worker.returncode == 0, worker.stderr
    assert "--with-scheduler" in worker.stdout


def test_an_unknown_tasks_backend_refuses_to_start():
    result = run(["manage.py", "check"], TASKS_BACKEND="celery")
    assert result.returncode != 0
    assert "TASKS_BACKEND must be db or rq" in result.stderr
