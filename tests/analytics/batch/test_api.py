"""`POST /batch/mastery` and `GET /batch/status/{id}`: the role matrix, every refusal in
the envelope, and the paged outcomes."""

import uuid

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from analytics.models.batch import BatchJob
from compliance.models import AuditLog
from tests.analytics.batch.support import run_job

pytestmark = pytest.mark.django_db
SUBMIT = "/api/v1/batch/mastery"
IDS = ["s-a1", "s-a2", "s-b1", "s-none"]


def status_url(batch_id) -> str:
    return f"/api/v1/batch/status/{batch_id}"


def client(school, role, client_for) -> APIClient:
    return APIClient() if role == "anonymous" else client_for(school.users[role])


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [
        ("anonymous", 401, "not_authenticated"),
        ("student", 403, "forbidden"),
        ("service", 403, "forbidden"),
        ("teacher", 202, None),
        ("admin", 202, None),
    ],
)
def test_who_may_submit(school, client_for, role, status, code):
    response = client(school, role, client_for).post(
        SUBMIT, {"student_ids": IDS, "priority": "high"}, format="json"
    )
    if code is not None:
        assert_error(response, status, code)
        assert not BatchJob.objects.exists()
        return
    assert response.status_code == 202
    body = response.json()
    assert body == {"batch_id": body["batch_id"], "status": "queued"}
    job = BatchJob.objects.get(pk=body["batch_id"])
    assert (job.submitted_by, job.priority, job.student_ids, job.total) == (
        school.users[role],
        "high",
        IDS,
        4,
    )


def test_priority_defaults_to_normal_and_a_topic_narrows_the_job(school, client_for):
    response = client_for(school.users["admin"]).post(
        SUBMIT, {"student_ids": ["s-a1"], "topic": "python.lists"}, format="json"
    )
    job = BatchJob.objects.get(pk=response.json()["batch_id"])
    assert (job.priority, job.topic) == ("normal", "python.lists")


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("teacher", 200),  # the submitter
        ("admin", 200),
        ("other_teacher", 404),
        ("student", 404),
        ("service", 404),
        ("anonymous", 401),
    ],
)
def test_who_may_read_a_teachers_job(school, client_for, role, status):
    job = run_job(
        BatchJob.objects.get(
            pk=client_for(school.users["teacher"])
            .post(SUBMIT, {"student_ids": IDS}, format="json")
            .json()["batch_id"]
        )
    )
    response = client(school, role, client_for).get(status_url(job.pk))
    assert response.status_code == status, response.content
    if status == 404:
        assert_error(response, 404, "batch_not_found")


@pytest.mark.parametrize("batch_id", [uuid.uuid4(), "not-a-uuid", "1"])
def test_an_unknown_batch_is_404(school, client_for, batch_id):
    response = client_for(school.users["admin"]).get(status_url(batch_id))
    assert_error(response, 404, "batch_not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"student_ids": []}, "student_ids"),
        ({"student_ids": [f"s-{n}" for n in range(10_001)]}, "student_ids"),
        ({"student_ids": ["s-a1", "s-a2", "s-a1"]}, "student_ids"),
        ({"student_ids": ["s-a1", "not an id!"]}, "student_ids"),
        ({"student_ids": ["s-a1", 7]}, "student_ids"),
        ({"student_ids": ["x" * 65]}, "student_ids"),
        ({"student_ids": "s-a1"}, "student_ids"),
        ({"student_ids": {"s-a1": 1}}, "student_ids"),
        ({}, "student_ids"),
        ({"student_ids": ["s-a1"], "priority": "urgent"}, "priority"),
        ({"student_ids": ["s-a1"], "priority": 1}, "priority"),
        ({"student_ids": ["s-a1"], "topic": "Not A Slug"}, "topic"),
        ({"student_ids": ["s-a1"], "priorty": "high"}, "priorty"),
    ],
    ids=[
        "none", "10001", "duplicates", "invalid-id", "not-a-string", "too-long", "a-string",
        "an-object", "missing", "unknown-priority", "number-priority", "bad-topic", "unknown-key",
    ],
)  # fmt: skip
def test_an_invalid_batch_is_422_naming_the_field(school, client_for, body, field):
    response = client_for(school.users["admin"]).post(SUBMIT, body, format="json")
    error = assert_error(response, 422, "validation_error")
    assert field in error["details"]
    assert not BatchJob.objects.exists()


def test_the_error_names_the_duplicates_and_the_invalid_ids_position(school, client_for):
    admin = client_for(school.users["admin"])
    duplicates = admin.post(SUBMIT, {"student_ids": ["b", "a", "b", "a", "c"]}, format="json")
    assert duplicates.json()["error"]["details"] == {
        "student_ids": ["Ids given more than once: a, b."]
    }
    invalid = admin.post(SUBMIT, {"student_ids": ["s-a1", "no spaces"]}, format="json")
    assert list(invalid.json()["error"]["details"]["student_ids"]) == ["1"]


def test_ten_thousand_students_is_the_most_accepted(school, client_for):
    ids = [f"s-{n:05d}" for n in range(10_000)]
    response = client_for(school.users["admin"]).post(SUBMIT, {"student_ids": ids}, format="json")
    assert response.status_code == 202
    assert BatchJob.objects.get().total == 10_000


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_request"),
        (b'["s-a1"]', 422, "validation_error"),
    ],
)
def test_a_body_that_is_not_an_object_is_refused(school, client_for, body, status, code):
    response = client_for(school.users["admin"]).post(SUBMIT, body, content_type="application/json")
    assert_error(response, status, code)


def test_an_unknown_topic_is_404(school, client_for):
    response = client_for(school.users["admin"]).post(
        SUBMIT, {"student_ids": ["s-a1"], "topic": "no.such.topic"}, format="json"
    )
    assert_error(response, 404, "topic_not_found")


@override_settings(BATCH_JOB_OPEN_PER_SUBMITTER=1)
def test_a_submitter_with_too_many_unfinished_jobs_is_told_to_wait(school, client_for):
    teacher = client_for(school.users["teacher"])
    assert teacher.post(SUBMIT, {"student_ids": ["s-a1"]}, format="json").status_code == 202
    refused = teacher.post(SUBMIT, {"student_ids": ["s-a1"]}, format="json")
    error = assert_error(refused, 429, "too_many_open_batches")
    assert error["details"] == {"unfinished": 1, "limit": 1}
    assert refused["Retry-After"] == "10"
    # another submitter has a budget of its own
    other = client_for(school.users["admin"]).post(SUBMIT, {"student_ids": ["s-a1"]}, format="json")
    assert other.status_code == 202


# --- the status ---------------------------------------------------------------------------


def submitted(school, client_for, role="teacher", ids=("s-a1", "s-b1", "s-a2", "s-none")):
    response = client_for(school.users[role]).post(
        SUBMIT, {"student_ids": list(ids)}, format="json"
    )
    return BatchJob.objects.get(pk=response.json()["batch_id"])


def test_a_queued_job_shows_its_state_and_no_outcomes_yet(school, client_for):
    job = submitted(school, client_for)
    body = client_for(school.users["teacher"]).get(status_url(job.pk)).json()
    assert body | {"submitted_at": None} == {
        "batch_id": str(job.pk),
        "status": "queued",
        "priority": "normal",
        "topic": None,
        "total": 4,
        "done": 0,
        "failed": 0,
        "submitted_at": None,
        "started_at": None,
        "finished_at": None,
        "error": None,
        "page": 1,
        "pages": 1,
        "next": None,
        "previous": None,
        "results": [],
        "errors": [],
    }


@override_settings(BATCH_RESULTS_PAGE_SIZE=2)
def test_outcomes_are_paged_in_the_order_asked(school, client_for):
    job = run_job(submitted(school, client_for))
    teacher = client_for(school.users["teacher"])
    first = teacher.get(status_url(job.pk)).json()
    assert (first["status"], first["done"], first["failed"], first["pages"]) == (
        "completed",
        3,
        1,
        2,
    )
    assert [r["student_id"] for r in first["results"]] == ["s-a1"]
    assert first["errors"] == [{"student_id": "s-b1", "code": "not_found"}]
    assert first["previous"] is None
    assert first["next"].endswith(f"{status_url(job.pk)}?page=2")
    second = teacher.get(first["next"]).json()
    assert [r["student_id"] for r in second["results"]] == ["s-a2", "s-none"]
    assert (second["errors"], second["next"], second["page"]) == ([], None, 2)
    assert (
        second["results"][0]
        == teacher.post("/api/v1/mastery/query", {"student_id": "s-a2"}, format="json").json()
    )


@override_settings(BATCH_RESULTS_PAGE_SIZE=2)
@pytest.mark.parametrize(
    ("query", "status", "code"),
    [("page=3", 404, "not_found"), ("page=0", 422, "validation_error"),
     ("page=x", 422, "validation_error"), ("page=1&page=2", 422, "validation_error")],
)  # fmt: skip
def test_a_page_that_is_not_there_is_refused(school, client_for, query, status, code):
    job = run_job(submitted(school, client_for))
    response = client_for(school.users["teacher"]).get(f"{status_url(job.pk)}?{query}")
    assert_error(response, status, code)


def test_reading_the_outcomes_is_audited_for_the_students_shown(school, client_for):
    job = run_job(submitted(school, client_for))
    assert not AuditLog.objects.filter(action="batch.status").exists()
    client_for(school.users["admin"]).get(status_url(job.pk))
    rows = AuditLog.objects.filter(action="batch.status").order_by("student_ref")
    assert list(rows.values_list("student_ref", "actor__username")) == [
        ("s-a1", "admin"),
        ("s-a2", "admin"),
        ("s-none", "admin"),
    ]


def test_a_failed_job_shows_its_error(school, client_for):
    job = submitted(school, client_for)
    BatchJob.objects.filter(pk=job.pk).update(
        status="failed", error_code="worker_lost", error_message="The worker stopped."
    )
    body = client_for(school.users["teacher"]).get(status_url(job.pk)).json()
    assert (body["status"], body["error"]) == (
        "failed",
        {"code": "worker_lost", "message": "The worker stopped."},
    )
