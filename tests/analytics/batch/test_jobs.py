"""A batch job from submission to its end, run in this process as the worker runs it:
what it rescores, what it stores, how it fails, and how a job whose worker died is reaped.
(The real worker is driven in tests/process/test_worker_batch.py.)"""

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from analytics.models.batch import BatchJob, BatchJobItem
from analytics.selectors.batch import batch_outcome_mastery
from analytics.services import batch as batch_service
from analytics.services.batch import batch_job_submit, batch_jobs_reap
from compliance.models import AuditLog
from mastery.models import MasteryRecord, Topic
from mastery.policy import current_policy
from mastery.serializers import MasteryQueryOutput
from mastery.signals import students_changed
from mastery_project.correlation import correlation_id
from mastery_project.errors import NotFound
from tests.analytics.batch.support import NEW_WEIGHTS, run_job

pytestmark = pytest.mark.django_db
IDS = ["s-a1", "s-a2", "s-b1", "s-none"]


def submit(user, student_ids, *, priority="normal", topic=None) -> BatchJob:
    return batch_job_submit(
        submitter=user, student_ids=student_ids, priority=priority, topic=topic, correlation="c-1"
    )


def outcomes(job: BatchJob) -> dict[str, BatchJobItem]:
    return {item.student_id: item for item in job.items.order_by("position")}


def rendered(item: BatchJobItem) -> dict:
    """The stored outcome as the status endpoint renders it."""
    return MasteryQueryOutput(batch_outcome_mastery(item.mastery)).data


def query(client_for, user, student_id, topic=None) -> dict:
    body = {"student_id": student_id, **({"topic": topic} if topic else {})}
    response = client_for(user).post("/api/v1/mastery/query", body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


@override_settings(MASTERY_WEIGHTS=NEW_WEIGHTS)
def test_a_job_brings_every_record_to_the_current_policy_and_stores_the_query_answer(
    school, client_for
):
    admin = school.users["admin"]
    job = run_job(submit(admin, IDS))

    assert (job.status, job.total, job.done, job.failed) == ("completed", 4, 4, 0)
    assert job.started_at is not None
    assert job.finished_at >= job.started_at
    policy = current_policy().policy_hash
    records = MasteryRecord.objects.filter(student__student_id__in=IDS)
    assert records.count() == 4
    assert set(records.values_list("policy_hash", flat=True)) == {policy}
    for record in records:
        expected = sum(
            NEW_WEIGHTS[name] * getattr(record, name)
            for name in ("completion", "quiz", "quality", "consistency")
        )
        assert record.mastery == round(expected, 4)
    stored = outcomes(job)
    assert list(stored) == IDS
    for student_id in IDS:
        assert stored[student_id].error_code == ""
        assert rendered(stored[student_id]) == query(client_for, admin, student_id)
    assert stored["s-none"].mastery["topics"] == []


def test_the_new_weights_change_the_stored_mastery(school):
    before = MasteryRecord.objects.get(student__student_id="s-a1", topic__slug="python.loops")
    with override_settings(MASTERY_WEIGHTS=NEW_WEIGHTS):
        run_job(submit(school.users["admin"], ["s-a1"]))
    after = MasteryRecord.objects.get(pk=before.pk)
    assert after.policy_hash != before.policy_hash
    assert after.mastery != before.mastery
    assert after.facts == before.facts


@override_settings(MASTERY_WEIGHTS=NEW_WEIGHTS)
def test_a_teachers_job_processes_only_its_students_the_others_are_not_found(school):
    teacher = school.users["teacher"]
    untouched = MasteryRecord.objects.get(student__student_id="s-b1")
    token = correlation_id.set("req-42")
    try:
        job = batch_job_submit(
            submitter=teacher,
            student_ids=["s-b1", "s-a1", "s-nobody"],
            priority="high",
            correlation="req-42",
        )
    finally:
        correlation_id.reset(token)
    job = run_job(job)

    assert (job.status, job.done, job.failed) == ("completed", 1, 2)
    stored = outcomes(job)
    assert {s: o.error_code for s, o in stored.items()} == {
        "s-b1": "not_found",
        "s-a1": "",
        "s-nobody": "not_found",
    }
    assert stored["s-b1"].mastery is None
    assert MasteryRecord.objects.get(pk=untouched.pk).policy_hash == untouched.policy_hash
    audited = AuditLog.objects.filter(action="batch.rescore").values_list(
        "student_ref", "outcome", "actor_id", "correlation_id", "resource"
    )
    resource = f"batch/{job.pk}"
    assert sorted(audited) == [
        ("s-a1", "ok", teacher.pk, "req-42", resource),
        ("s-b1", "not_found", teacher.pk, "req-42", resource),
        ("s-nobody", "not_found", teacher.pk, "req-42", resource),
    ]


@override_settings(MASTERY_WEIGHTS=NEW_WEIGHTS)
def test_a_topic_job_rescores_that_topic_only(school, client_for):
    admin = school.users["admin"]
    job = run_job(submit(admin, ["s-a1", "s-a2"], topic="python.lists"))
    policy = current_policy().policy_hash
    hashes = dict(
        MasteryRecord.objects.filter(student__student_id="s-a1").values_list(
            "topic__slug", "policy_hash"
        )
    )
    assert hashes["python.lists"] == policy
    assert hashes["python.loops"] != policy
    stored = outcomes(job)
    for student_id in ("s-a1", "s-a2"):
        assert rendered(stored[student_id]) == query(client_for, admin, student_id, "python.lists")
    # s-a2 has no record in the topic: 0.0, as mastery/query answers
    assert stored["s-a2"].mastery["topics"][0]["mastery"] == 0.0


@override_settings(BATCH_JOB_CHUNK=2)
def test_progress_is_committed_chunk_by_chunk(school, monkeypatch):
    job = submit(school.users["admin"], [*IDS, "s-x"])
    seen = []
    rescore = batch_service.students_rescore

    def observed(**kwargs):
        seen.append(BatchJob.objects.values_list("done", "failed", "next_position").get(pk=job.pk))
        return rescore(**kwargs)

    monkeypatch.setattr(batch_service, "students_rescore", observed)
    job = run_job(job)
    assert seen == [(0, 0, 0), (2, 0, 2), (4, 0, 4)]
    assert (job.done, job.failed, job.next_position) == (4, 1, 5)


def test_a_job_whose_topic_went_is_failed_with_the_code(school):
    job = submit(school.users["admin"], IDS, topic="python.lists")
    Topic.objects.filter(slug="python.lists").delete()
    with pytest.raises(NotFound):
        run_job(job)
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "topic_not_found")
    assert job.error_message == "No such topic."
    assert job.finished_at is not None
    assert job.items.count() == 0


@override_settings(BATCH_JOB_CHUNK=2)
def test_a_job_that_raises_is_failed_and_keeps_the_chunks_done_before(school, monkeypatch):
    job = submit(school.users["admin"], IDS)
    rescore, calls = batch_service.students_rescore, []

    def second_chunk_breaks(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return rescore(**kwargs)

    monkeypatch.setattr(batch_service, "students_rescore", second_chunk_breaks)
    with pytest.raises(RuntimeError):
        run_job(job)
    job.refresh_from_db()
    assert (job.status, job.error_code, job.done, job.next_position) == (
        "failed",
        "internal_error",
        2,
        2,
    )
    assert "boom" not in job.error_message  # no internals in what the API shows
    assert list(outcomes(job)) == ["s-a1", "s-a2"]


def test_a_run_that_no_longer_owns_its_job_writes_nothing(school):
    job = submit(school.users["admin"], IDS)
    stale_task = str(job.task_id)
    BatchJob.objects.filter(pk=job.pk).update(task_id=DBTaskResult.objects.create(
        args_kwargs={"args": [], "kwargs": {}}, task_path="x", backend_name="default",
        run_after=timezone.now(),
    ).pk)  # fmt: skip
    assert batch_service.batch_job_run(batch_id=str(job.pk), task_id=stale_task) == {"ran": False}
    job.refresh_from_db()
    assert (job.status, job.done, job.items.count()) == ("queued", 0, 0)


def test_priorities_map_to_the_queue_and_a_later_high_job_is_taken_first(school):
    admin = school.users["admin"]
    low = [submit(admin, ["s-a1"], priority="low") for _ in range(2)]
    normal = submit(admin, ["s-a1"], priority="normal")
    high = submit(admin, ["s-a1"], priority="high")
    rows = DBTaskResult.objects.ready()
    assert [str(r.pk) for r in rows] == [str(j.task_id) for j in (high, normal, *low)]
    assert [r.priority for r in rows] == [10, 0, -10, -10]
    # the task names the job only, never a student
    assert rows[0].args_kwargs == {"args": [str(high.pk)], "kwargs": {}}


# --- the reaper ---------------------------------------------------------------------------


def lease_later(moment) -> timezone.datetime:
    return moment + timedelta(seconds=settings.BATCH_JOB_LEASE_SECONDS + 1)


@override_settings(BATCH_JOB_CHUNK=2)
def test_a_job_whose_worker_died_mid_run_is_requeued_and_resumes_where_it_stopped(
    school, monkeypatch
):
    job = submit(school.users["admin"], IDS, priority="high")
    first_task = job.task_id
    DBTaskResult.objects.filter(pk=first_task).update(
        status=TaskResultStatus.RUNNING, started_at=timezone.now()
    )
    rescore, calls = batch_service.students_rescore, []

    def worker_dies_in_second_chunk(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # not an Exception: nothing records the failure
        return rescore(**kwargs)

    monkeypatch.setattr(batch_service, "students_rescore", worker_dies_in_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        run_job(job)
    job.refresh_from_db()
    assert (job.status, job.next_position) == ("running", 2)

    assert batch_jobs_reap(now=timezone.now()) == batch_service.Reaped(0, 0)  # lease not over
    reaped = batch_jobs_reap(now=lease_later(job.heartbeat_at))
    assert reaped == batch_service.Reaped(requeued=1, failed=0)
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("queued", 2)
    assert job.task_id != first_task
    old, new = DBTaskResult.objects.get(pk=first_task), DBTaskResult.objects.get(pk=job.task_id)
    assert (old.status, old.exception_class_path) == ("FAILED", batch_service.WORKER_LOST_CLASS)
    assert (new.status, new.priority, new.run_after) == ("READY", 10, job.submitted_at)

    monkeypatch.setattr(batch_service, "students_rescore", rescore)
    job = run_job(job)
    assert (job.status, job.done, job.failed) == ("completed", 4, 0)
    assert list(outcomes(job)) == IDS


def test_a_job_lost_too_often_is_failed_worker_lost(school):
    job = submit(school.users["admin"], IDS)
    now = timezone.now()
    BatchJob.objects.filter(pk=job.pk).update(
        status="running", heartbeat_at=now, attempts=settings.BATCH_JOB_MAX_ATTEMPTS
    )
    assert batch_jobs_reap(now=lease_later(now)) == batch_service.Reaped(requeued=0, failed=1)
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "worker_lost")
    assert job.finished_at == lease_later(now)
    assert DBTaskResult.objects.get(pk=job.task_id).status == "FAILED"
    assert not DBTaskResult.objects.ready().exists()


@pytest.mark.parametrize(
    "task_state",
    ["taken_and_dropped", "failed_before_the_job_started", "gone"],
)
def test_a_queued_job_whose_task_ended_without_it_is_requeued(school, task_state):
    job = submit(school.users["admin"], IDS)
    task = DBTaskResult.objects.filter(pk=job.task_id)
    now = timezone.now()
    if task_state == "taken_and_dropped":
        task.update(status=TaskResultStatus.RUNNING, started_at=now)
        now = lease_later(now)
    elif task_state == "failed_before_the_job_started":
        task.update(status=TaskResultStatus.FAILED, finished_at=now)
    else:
        task.delete()
    assert batch_jobs_reap(now=now).requeued == 1
    job.refresh_from_db()
    assert job.status == "queued"
    assert DBTaskResult.objects.get(pk=job.task_id).status == "READY"


def test_jobs_in_good_health_are_left_alone(school):
    admin = school.users["admin"]
    queued = submit(admin, IDS)
    running = submit(admin, IDS)
    now = timezone.now()
    BatchJob.objects.filter(pk=running.pk).update(status="running", heartbeat_at=now)
    # a long job: its task started long ago, its heartbeat is fresh
    long_ago = now - timedelta(hours=1)
    DBTaskResult.objects.filter(pk=running.task_id).update(status="RUNNING", started_at=long_ago)
    done = run_job(submit(admin, IDS))
    assert batch_jobs_reap(now=now + timedelta(seconds=5)) == batch_service.Reaped(0, 0)
    for job, status in ((queued, "queued"), (running, "running"), (done, "completed")):
        job_then = job.task_id
        job.refresh_from_db()
        assert (job.status, job.task_id) == (status, job_then)


# --- one rescoring code ---------------------------------------------------------------------


def test_rescore_mastery_and_a_batch_job_rescore_alike(school):
    with override_settings(MASTERY_WEIGHTS=NEW_WEIGHTS):
        call_command("rescore_mastery", "--all", stdout=StringIO())
        by_command = dict(MasteryRecord.objects.values_list("pk", "mastery"))
        MasteryRecord.objects.update(mastery=0.0, policy_hash="before")
        run_job(submit(school.users["admin"], IDS))
        by_job = dict(MasteryRecord.objects.values_list("pk", "mastery"))
    assert by_job == by_command
    assert len(set(by_job.values())) > 1


def test_a_job_tells_the_caches_which_students_changed(school, django_capture_on_commit_callbacks):
    told = []

    def receiver(sender, student_ids, **kwargs):
        told.append(set(student_ids))

    students_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run_job(
                batch_job_submit(
                    submitter=school.users["teacher"],
                    student_ids=["s-a1", "s-b1", "s-none"],
                    priority="normal",
                )
            )
    finally:
        students_changed.disconnect(receiver)
    assert told == [{"s-a1"}]  # s-none has no record; s-b1 is not the teacher's
