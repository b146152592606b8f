"""`POST /api/v1/process` (SPEC §3.5): each intent answers what its endpoint answers, for
every role, with the endpoint's status, audit and rate limit, inside one envelope."""

import dataclasses
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from django_ratelimit import core as ratelimit_core
from rest_framework.test import APIClient

from analytics.models.batch import BatchJob
from compliance.models import AuditLog
from mastery_project.process import INTENTS
from tests.factories import (
    StudentFactory,
    TopicFactory,
    event_document,
    ingest_all,
    two_cohort_school,
)

pytestmark = pytest.mark.django_db
PROCESS = "/api/v1/process"
ROLES = ("student", "teacher", "admin", "service")


@pytest.fixture(autouse=True)
def one_rate_window(monkeypatch):
    """django-ratelimit counts in fixed windows of the wall clock; held still, a test's
    calls share one window whatever the second they run at."""
    held = time.time()
    monkeypatch.setattr(ratelimit_core, "time", SimpleNamespace(time=lambda: held))


@pytest.fixture
def school(db):
    """Cohort A (s-a1, s-a2, taught by `teacher`), cohort B (s-b1, by another teacher),
    each student with a few days of events in two topics; the `student` login is s-a1."""
    students = {sid: StudentFactory(student_id=sid) for sid in ("s-a1", "s-a2", "s-b1")}
    loops, lists = TopicFactory(slug="python.loops"), TopicFactory(slug="python.lists")
    lists.prerequisites.add(loops)
    users, _ = two_cohort_school(students)
    now = timezone.now()
    events = []
    for n, student_id in enumerate(students):
        for day in range(4):
            at = now - timedelta(days=day, hours=1)
            events += [
                event_document(
                    "quiz.submitted",
                    student_id=student_id,
                    topic=topic,
                    occurred_at=at,
                    score=4 + n + day,
                )
                for topic in ("python.loops", "python.lists")
            ]
            events.append(
                event_document(
                    "exercise.completed",
                    student_id=student_id,
                    topic="python.loops",
                    occurred_at=at,
                    exercise_id=f"ex-{day}",
                )
            )
    ingest_all(events)
    return SimpleNamespace(students=students, users=users, today=now.date())


def as_role(school, role: str, client_for) -> APIClient:
    return APIClient() if role == "anonymous" else client_for(school.users[role])


def history(school, student_id="s-a1") -> dict:
    return {
        "student_id": student_id,
        "start_date": str(school.today - timedelta(days=6)),
        "end_date": str(school.today),
        "granularity": "daily",
    }


# (case, intent, data, the endpoint's path, the endpoint's body)
CASES = [
    (
        "calculate",
        "mastery_calculation",
        lambda s: {"completion": 1, "quiz": 0.5, "quality": 0.5, "consistency": 0.2},
        "/api/v1/mastery/calculate",
        None,
    ),
    (
        "calculate-invalid",
        "mastery_calculation",
        lambda s: {"completion": 2, "quiz": "x", "quality": 0.5, "consistency": 0.2},
        "/api/v1/mastery/calculate",
        None,
    ),
    ("query-own", "mastery_calculation", lambda s: {"student_id": "s-a1"}, "/api/v1/mastery/query",
     None),
    ("query-other-cohort", "mastery_calculation", lambda s: {"student_id": "s-b1"},
     "/api/v1/mastery/query", None),
    ("query-topic", "mastery_calculation",
     lambda s: {"student_id": "s-a1", "topic": "python.lists"}, "/api/v1/mastery/query", None),
    ("query-unknown-topic", "mastery_calculation",
     lambda s: {"student_id": "s-a1", "topic": "no.such"}, "/api/v1/mastery/query", None),
    ("prediction", "get_prediction", lambda s: {"student_id": "s-a1"},
     "/api/v1/predictions/next-week", None),
    ("prediction-topic", "get_prediction",
     lambda s: {"student_id": "s-a2", "topic": "python.loops"},
     "/api/v1/predictions/next-week", None),
    ("prediction-other-cohort", "get_prediction", lambda s: {"student_id": "s-b1"},
     "/api/v1/predictions/next-week", None),
    ("path", "generate_path", lambda s: {"student_id": "s-a1"},
     "/api/v1/recommendations/learning-path", None),
    ("path-other-cohort", "generate_path", lambda s: {"student_id": "s-b1"},
     "/api/v1/recommendations/learning-path", None),
    ("history", "analytics_query", lambda s: {"kind": "history", **history(s)},
     "/api/v1/analytics/history", lambda s: history(s)),
    ("history-other-cohort", "analytics_query", lambda s: {"kind": "history", **history(s, "s-b1")},
     "/api/v1/analytics/history", lambda s: history(s, "s-b1")),
    ("compare-own", "analytics_query",
     lambda s: {"kind": "compare", "cohort_ids": ["cohort-a", "cohort-a"]},
     "/api/v1/analytics/cohorts/compare", lambda s: {"cohort_ids": ["cohort-a", "cohort-a"]}),
    ("compare-other-cohort", "analytics_query",
     lambda s: {"kind": "compare", "cohort_ids": ["cohort-a", "cohort-b"]},
     "/api/v1/analytics/cohorts/compare", lambda s: {"cohort_ids": ["cohort-a", "cohort-b"]}),
]  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("intent", "data", "path", "body"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_each_intent_answers_as_its_endpoint_for_each_role(
    school, client_for, role, intent, data, path, body
):
    client = as_role(school, role, client_for)
    audit_before = set(AuditLog.objects.values_list("pk", flat=True))
    direct = client.post(path, (body or data)(school), format="json")
    audit_direct = AuditLog.objects.exclude(pk__in=audit_before)
    direct_audit = sorted(audit_direct.values_list("action", "student_ref", "outcome"))
    seen = set(AuditLog.objects.values_list("pk", flat=True))

    routed = client.post(PROCESS, {"intent": intent, "data": data(school)}, format="json")
    routed_audit = sorted(
        AuditLog.objects.exclude(pk__in=seen).values_list("action", "student_ref", "outcome")
    )

    envelope = routed.json()
    assert routed.status_code == direct.status_code, envelope
    assert envelope["metadata"]["intent"] == intent
    if direct.status_code < 400:
        assert (envelope["success"], envelope["error"]) == (True, None)
        assert envelope["data"] == direct.json()
    else:
        assert (envelope["success"], envelope["data"]) == (False, None)
        assert envelope["error"] == direct.json()["error"]
    assert routed_audit == direct_audit


EXPECTED = {  # what the matrix above must cover: not every answer may be the same
    ("teacher", "compare-other-cohort"): (404, "cohort_not_found"),
    ("student", "compare-own"): (403, "forbidden"),
    ("service", "compare-own"): (403, "forbidden"),
    ("student", "query-other-cohort"): (404, "student_not_found"),
    ("teacher", "path-other-cohort"): (404, "student_not_found"),
    ("student", "prediction-other-cohort"): (404, "student_not_found"),
    ("admin", "query-unknown-topic"): (404, "topic_not_found"),
    ("admin", "calculate-invalid"): (422, "validation_error"),
    ("service", "history-other-cohort"): (200, None),
}


@pytest.mark.parametrize(("role", "case"), list(EXPECTED), ids=lambda v: str(v))
def test_the_matrix_includes_refusals_inside_the_envelope(school, client_for, role, case):
    _, intent, data, _, _ = next(c for c in CASES if c[0] == case)
    response = as_role(school, role, client_for).post(
        PROCESS, {"intent": intent, "data": data(school)}, format="json"
    )
    status, code = EXPECTED[(role, case)]
    assert response.status_code == status
    error = response.json()["error"]
    assert (error or {}).get("code") == code


@pytest.mark.parametrize(
    ("role", "status"), [("teacher", 202), ("admin", 202), ("student", 403), ("service", 403)]
)
def test_batch_process_submits_as_batch_mastery_does(school, client_for, role, status):
    client = as_role(school, role, client_for)
    data = {"student_ids": ["s-a1", "s-b1"], "priority": "high"}
    direct = client.post("/api/v1/batch/mastery", data, format="json")
    routed = client.post(PROCESS, {"intent": "batch_process", "data": data}, format="json")
    assert (direct.status_code, routed.status_code) == (status, status)
    envelope = routed.json()
    if status == 403:
        assert envelope["error"] == direct.json()["error"]
        assert not BatchJob.objects.exists()
        return
    assert envelope["data"]["status"] == direct.json()["status"] == "queued"
    jobs = BatchJob.objects.order_by("submitted_at")
    assert [str(j.pk) for j in jobs] == [direct.json()["batch_id"], envelope["data"]["batch_id"]]
    assert {(j.submitted_by.username, j.priority, tuple(j.student_ids)) for j in jobs} == {
        (school.users[role].username, "high", ("s-a1", "s-b1"))
    }


def test_an_invalid_batch_is_refused_as_the_endpoint_refuses_it(school, client_for):
    client = client_for(school.users["admin"])
    data = {"student_ids": ["s-a1", "s-a1"]}
    direct = client.post("/api/v1/batch/mastery", data, format="json")
    routed = client.post(PROCESS, {"intent": "batch_process", "data": data}, format="json")
    assert routed.status_code == direct.status_code == 422
    assert routed.json()["error"] == direct.json()["error"]


# --- the envelope itself ------------------------------------------------------------------


def assert_refused(response, status: int, code: str, intent=None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"success", "data", "error", "metadata"}
    assert (body["success"], body["data"], body["metadata"]["intent"]) == (False, None, intent)
    assert body["error"]["code"] == code
    return body["error"]


def test_an_unknown_intent_is_422_listing_the_known_ones(school, client_for):
    response = client_for(school.users["service"]).post(
        PROCESS, {"intent": "make_coffee", "data": {}}, format="json"
    )
    error = assert_refused(response, 422, "unknown_intent", intent="make_coffee")
    assert error["details"] == {"intent": "make_coffee", "known": list(INTENTS)}
    assert set(error["details"]["known"]) == {
        "mastery_calculation",
        "get_prediction",
        "generate_path",
        "batch_process",
        "analytics_query",
    }


@pytest.mark.parametrize(
    ("body", "field", "intent"),
    [
        ({"intent": "mastery_calculation"}, "data", "mastery_calculation"),
        ({"intent": "mastery_calculation", "data": [1, 2]}, "data", "mastery_calculation"),
        ({"intent": "mastery_calculation", "data": "x"}, "data", "mastery_calculation"),
        ({"data": {}}, "intent", None),
        ({"intent": 7, "data": {}}, "intent", None),
        ({"intent": "get_prediction", "data": {}, "extra": 1}, "extra", "get_prediction"),
        ({"intent": "analytics_query", "data": {"student_id": "s-a1"}}, "kind", "analytics_query"),
        ({"intent": "analytics_query", "data": {"kind": "gossip"}}, "kind", "analytics_query"),
        ({"intent": "analytics_query", "data": {"kind": ["history"]}}, "kind", "analytics_query"),
    ],
    ids=["no-data", "data-list", "data-string", "no-intent", "intent-number", "extra-key",
         "no-kind", "unknown-kind", "kind-list"],
)  # fmt: skip
def test_a_malformed_request_is_422_in_the_envelope(school, client_for, body, field, intent):
    response = client_for(school.users["admin"]).post(PROCESS, body, format="json")
    error = assert_refused(response, 422, "validation_error", intent=intent)
    assert field in error["details"]


def test_a_body_that_is_not_an_object_or_not_json_is_refused_in_the_envelope(school, client_for):
    client = client_for(school.users["admin"])
    assert_refused(client.post(PROCESS, [1], format="json"), 422, "validation_error")
    not_json = client.post(PROCESS, b"{oops", content_type="application/json")
    assert_refused(not_json, 400, "malformed_request")


def test_no_token_is_401_in_the_envelope(school):
    response = APIClient().post(
        PROCESS, {"intent": "mastery_calculation", "data": {}}, format="json"
    )
    assert_refused(response, 401, "not_authenticated")


def test_the_correlation_id_is_the_requests_x_request_id(school, client_for):
    client = client_for(school.users["service"])
    ok = client.post(
        PROCESS,
        {"intent": "mastery_calculation", "data": {"student_id": "s-a1"}},
        format="json",
        HTTP_X_REQUEST_ID="lms-req-0042",
    )
    refused = client.post(
        PROCESS, {"intent": "nope", "data": {}}, format="json", HTTP_X_REQUEST_ID="lms-req-0043"
    )
    assert ok.json()["metadata"]["correlation_id"] == ok["X-Request-ID"] == "lms-req-0042"
    assert refused.json()["metadata"]["correlation_id"] == "lms-req-0043"
    assert ok.json()["metadata"]["duration_ms"] >= 0
    # the endpoint's audit entry carries it too
    assert AuditLog.objects.filter(action="mastery.query", correlation_id="lms-req-0042").exists()


@override_settings(RATE_LIMIT_MASTERY="2/m")
def test_an_intent_spends_its_endpoints_rate_limit_budget(school, client_for):
    client = client_for(school.users["teacher"])
    query = client.post("/api/v1/mastery/query", {"student_id": "s-a1"}, format="json")
    assert query.status_code == 200
    calculate = {"completion": 1, "quiz": 1, "quality": 1, "consistency": 1}
    routed = client.post(
        PROCESS, {"intent": "mastery_calculation", "data": calculate}, format="json"
    )
    assert routed.status_code == 200
    limited = client.post(
        PROCESS, {"intent": "mastery_calculation", "data": calculate}, format="json"
    )
    assert_refused(limited, 429, "rate_limited", intent="mastery_calculation")
    assert limited["Retry-After"].isdigit()
    # analytics history has no rate limit: still answered
    data = {"kind": "history", **history(school)}
    answered = client.post(PROCESS, {"intent": "analytics_query", "data": data}, format="json")
    assert answered.status_code == 200


def test_an_unexpected_failure_is_500_in_the_envelope(school, client_for, monkeypatch):
    intent = INTENTS["mastery_calculation"]

    def breaks(request, data):
        raise RuntimeError("boom")

    route = dataclasses.replace(intent.routes["calculate"], answer=breaks)
    monkeypatch.setitem(intent.routes, "calculate", route)
    response = client_for(school.users["admin"]).post(
        PROCESS, {"intent": "mastery_calculation", "data": {}}, format="json"
    )
    error = assert_refused(response, 500, "server_error", intent="mastery_calculation")
    assert "boom" not in str(error)


def test_with_redis_stopped_each_intent_answers_as_its_endpoint(
    school, client_for, tmp_path, monkeypatch
):
    """Every endpoint keeps answering without Redis (the rate limit fails open, unmetered),
    through /process alike, with the same document."""
    from mastery_project import devservices

    monkeypatch.setattr(devservices, "STATE_DIR", tmp_path)
    url, started = devservices.redis_start()
    assert started
    caches = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    client = client_for(school.users["teacher"])
    asks = {
        "get_prediction": ("/api/v1/predictions/next-week", {"student_id": "s-a1"}),
        "mastery_calculation": ("/api/v1/mastery/query", {"student_id": "s-a1"}),
    }
    answers = {}
    try:
        with override_settings(CACHES=caches):
            devservices.redis_stop()
            for intent, (path, data) in asks.items():
                direct = client.post(path, data, format="json")
                routed = client.post(PROCESS, {"intent": intent, "data": data}, format="json")
                answers[intent] = (direct.status_code, routed.status_code)
                if routed.status_code == 200:
                    assert routed.json()["data"] == direct.json()
                else:
                    assert routed.json()["error"] == direct.json()["error"]
    finally:
        devservices.redis_stop()
    assert answers == {"get_prediction": (200, 200), "mastery_calculation": (200, 200)}
