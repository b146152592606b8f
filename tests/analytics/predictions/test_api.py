"""The prediction endpoints (SPEC §3, §3.1): who may ask what, every refusal in the
envelope, the audit, the record of served predictions, and the cache against the real
Redis: a hit, its invalidation by an ingested event, and a Redis that is down."""

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.models.predictions import BacktestReport, FlagFeedback, PredictionRecord
from analytics.services.predictions import prediction_cache_reset, today_utc
from compliance.models import AuditLog
from tests.analytics.predictions.support import LOOPS, quizzes, seed

pytestmark = pytest.mark.django_db

NEXT_WEEK = "/api/v1/predictions/next-week"
TRAJECTORY = "/api/v1/predictions/trajectory"
INTERVENTION = "/api/v1/predictions/intervention"
FEEDBACK = "/api/v1/predictions/intervention/feedback"

# (role, endpoint, body) -> status. The `student` login is s-a1; `teacher` teaches
# cohort-a (s-a1, s-a2); s-b1 is in cohort-b.
MATRIX = {
    ("student", "next-week", "own"): 200,
    ("student", "next-week", "other"): 404,
    ("teacher", "next-week", "own"): 200,
    ("teacher", "next-week", "other"): 404,
    ("admin", "next-week", "other"): 200,
    ("service", "next-week", "other"): 200,
    ("student", "trajectory", "own"): 200,
    ("student", "trajectory", "other"): 404,
    ("teacher", "trajectory", "own"): 200,
    ("teacher", "trajectory", "other"): 404,
    ("admin", "trajectory", "other"): 200,
    ("service", "trajectory", "other"): 200,
    ("student", "intervention", "own"): 403,
    ("service", "intervention", "own"): 403,
    ("teacher", "intervention", "own"): 200,
    ("teacher", "intervention", "other"): 404,
    ("admin", "intervention", "other"): 200,
    ("student", "feedback", "own"): 403,
    ("service", "feedback", "own"): 403,
    ("teacher", "feedback", "own"): 201,
    ("teacher", "feedback", "other"): 404,
    ("admin", "feedback", "other"): 201,
}
PATHS = {
    "next-week": NEXT_WEEK,
    "trajectory": TRAJECTORY,
    "intervention": INTERVENTION,
    "feedback": FEEDBACK,
}


def body_for(endpoint: str, whose: str) -> dict:
    student = "s-a1" if whose == "own" else "s-b1"
    if endpoint == "intervention":
        return {"cohort_id": "cohort-a" if whose == "own" else "cohort-b"}
    if endpoint == "feedback":
        return {"student_id": student, "verdict": "useful"}
    return {"student_id": student}


@pytest.mark.parametrize(("role", "endpoint", "whose"), list(MATRIX))
def test_role_endpoint_matrix(school, client_for, role, endpoint, whose):
    response = client_for(school.users[role]).post(
        PATHS[endpoint], body_for(endpoint, whose), format="json"
    )
    assert response.status_code == MATRIX[(role, endpoint, whose)], response.content
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}
        assert "s-b1" not in response.content.decode()


@pytest.mark.parametrize("path", list(PATHS.values()))
def test_no_token_is_401_in_the_envelope(school, api_client, path):
    response = api_client.post(path, {"student_id": "s-a1"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


INVALID = [
    (NEXT_WEEK, {}, 422, "validation_error"),
    (NEXT_WEEK, {"student_id": "s-a1", "extra": 1}, 422, "validation_error"),
    (NEXT_WEEK, {"student_id": "bad id!"}, 422, "validation_error"),
    (NEXT_WEEK, {"student_id": 12}, 422, "validation_error"),
    (NEXT_WEEK, {"student_id": "x" * 65}, 422, "validation_error"),
    (NEXT_WEEK, {"student_id": "s-a1", "topic": "Not A Slug"}, 422, "validation_error"),
    (NEXT_WEEK, {"student_id": "s-a1", "topic": "no.such.topic"}, 404, "topic_not_found"),
    (NEXT_WEEK, {"student_id": "nobody"}, 404, "student_not_found"),
    (NEXT_WEEK, ["s-a1"], 422, "validation_error"),
    (TRAJECTORY, {"student_id": "s-a1", "days": 0}, 422, "validation_error"),
    (TRAJECTORY, {"student_id": "s-a1", "days": 31}, 422, "validation_error"),
    (TRAJECTORY, {"student_id": "s-a1", "days": "14"}, 422, "validation_error"),
    (TRAJECTORY, {"student_id": "s-a1", "days": 14.0}, 422, "validation_error"),
    (TRAJECTORY, {"student_id": "s-a1", "days": True}, 422, "validation_error"),
    (TRAJECTORY, {"student_id": "s-a1", "days": 10**30}, 422, "validation_error"),
    (TRAJECTORY, {"student_id": "s-a1", "topic": "no.such.topic"}, 404, "topic_not_found"),
    (INTERVENTION, {}, 422, "validation_error"),
    (INTERVENTION, {"cohort_id": "cohort-a", "student_ids": ["s-a1"]}, 422, "validation_error"),
    (INTERVENTION, {"student_ids": []}, 422, "validation_error"),
    (INTERVENTION, {"student_ids": "s-a1"}, 422, "validation_error"),
    (INTERVENTION, {"student_ids": ["ok", "bad id!"]}, 422, "validation_error"),
    (INTERVENTION, {"student_ids": ["s"] * 1001}, 422, "validation_error"),
    (INTERVENTION, {"cohort_id": "no-such-cohort"}, 404, "cohort_not_found"),
    (INTERVENTION, {"cohort_id": "cohort-a", "topic": "no.such"}, 404, "topic_not_found"),
    (INTERVENTION, {"cohort_id": "cohort-a", "extra": True}, 422, "validation_error"),
    (FEEDBACK, {"student_id": "s-a1"}, 422, "validation_error"),
    (FEEDBACK, {"student_id": "s-a1", "verdict": "great"}, 422, "validation_error"),
    (FEEDBACK, {"student_id": "s-a1", "verdict": 1}, 422, "validation_error"),
    (FEEDBACK, {"student_id": "s-a1", "verdict": "acted", "comment": 5}, 422, "validation_error"),
    (FEEDBACK, {"student_id": "s-a1", "verdict": "acted", "comment": "x" * 2001}, 422, None),
    (FEEDBACK, {"student_id": "s-a1", "verdict": "acted", "topic": "no.such"}, 404, None),
    (FEEDBACK, {"student_id": "nobody", "verdict": "acted"}, 404, "student_not_found"),
]


@pytest.mark.parametrize(("path", "body", "status", "code"), INVALID)
def test_invalid_input_gets_the_envelope_never_a_500(school, client_for, path, body, status, code):
    response = client_for(school.users["admin"]).post(path, body, format="json")
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if code:
        assert error["code"] == code


@pytest.mark.parametrize("path", list(PATHS.values()))
def test_a_body_that_is_not_json_is_400(school, client_for, path):
    response = client_for(school.users["admin"]).post(
        path, b"{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_next_week_explains_a_declining_students_flag(school, client_for):
    response = client_for(school.users["teacher"]).post(
        NEXT_WEEK, {"student_id": "s-a1", "topic": LOOPS}, format="json"
    )
    body = response.json()
    assert (body["student_id"], body["topic"]) == ("s-a1", LOOPS)
    assert body["intervention_needed"] is True
    assert body["method"] == "linear"  # no back-test yet
    assert body["predicted_mastery"] < body["current_mastery"] < 0.5
    assert body["slope_per_day"] < 0
    assert 0 < body["confidence"] < 1
    assert (body["data_points"], body["stale"]) == (11, False)
    codes = [reason["code"] for reason in body["reasons"]]
    assert codes[0] == "predicted_below_threshold"
    assert "component_drop" in codes
    drop = next(r for r in body["reasons"] if r["code"] == "component_drop")
    assert drop["details"]["component"] == "quiz"
    assert drop["message"].startswith("quiz fell from 0.90 to ")


def test_the_trajectory_has_the_days_asked_for_each_inside_its_band(school, client_for):
    response = client_for(school.users["student"]).post(
        TRAJECTORY, {"student_id": "s-a1", "days": 30}, format="json"
    )
    points = response.json()["points"]
    assert len(points) == 30
    assert all(0 <= p["lower"] <= p["mastery"] <= p["upper"] <= 1 for p in points)
    default = client_for(school.users["student"]).post(
        TRAJECTORY, {"student_id": "s-a1"}, format="json"
    )
    assert len(default.json()["points"]) == 14
    assert default.json()["points"] == points[:14]


def test_the_intervention_list_is_worst_first_with_reasons_and_names_the_unseen(school, client_for):
    school.students["s-a2"].analytics_consent = False  # teaching, not statistics: still listed
    school.students["s-a2"].save()
    response = client_for(school.users["teacher"]).post(
        INTERVENTION, {"student_ids": ["s-b1", "s-a2", "s-a1", "s-a1", "ghost"]}, format="json"
    )
    body = response.json()
    assert body["evaluated"] == 2
    assert body["not_found"] == ["s-b1", "ghost"]
    assert [s["student_id"] for s in body["students"]] == ["s-a1"]  # s-a2 is rising
    assert body["students"][0]["reasons"][0]["code"] == "predicted_below_threshold"
    admin = client_for(school.users["admin"]).post(
        INTERVENTION, {"student_ids": ["s-a1", "s-b1", "s-a2"]}, format="json"
    )
    predicted = [s["predicted_mastery"] for s in admin.json()["students"]]
    assert len(predicted) == 2
    assert predicted == sorted(predicted)


def test_every_read_is_audited_and_a_refusal_too(school, client_for):
    teacher = client_for(school.users["teacher"])
    teacher.post(NEXT_WEEK, {"student_id": "s-a1"}, format="json")
    teacher.post(TRAJECTORY, {"student_id": "s-b1"}, format="json")
    teacher.post(INTERVENTION, {"cohort_id": "cohort-a"}, format="json")
    teacher.post(FEEDBACK, {"student_id": "s-a2", "verdict": "acted"}, format="json")
    entries = set(
        AuditLog.objects.filter(actor=school.users["teacher"]).values_list(
            "action", "student_ref", "outcome"
        )
    )
    assert entries == {
        ("prediction.next_week", "s-a1", "ok"),
        ("prediction.trajectory", "s-b1", "not_found"),
        ("prediction.intervention", "s-a1", "ok"),
        ("prediction.intervention", "s-a2", "ok"),
        ("prediction.feedback", "s-a2", "ok"),
    }


def test_feedback_is_stored_with_who_when_and_the_flag_it_judged(school, client_for):
    response = client_for(school.users["teacher"]).post(
        FEEDBACK,
        {"student_id": "s-a1", "topic": LOOPS, "verdict": "incorrectly_flagged", "comment": "ill"},
        format="json",
    )
    assert response.status_code == 201
    stored = FlagFeedback.objects.get(pk=response.json()["id"])
    assert (stored.student.student_id, stored.topic.slug, stored.verdict, stored.comment) == (
        "s-a1",
        LOOPS,
        "incorrectly_flagged",
        "ill",
    )
    assert (stored.author, stored.author_role) == (school.users["teacher"], "teacher")
    assert stored.flagged is True
    assert stored.reason_codes[0] == "predicted_below_threshold"
    assert response.json()["created_at"].startswith(str(stored.created_at.date()))


# --- the record of served predictions -------------------------------------------------------


def test_a_served_prediction_is_recorded_once_and_a_later_one_replaces_the_days(
    school, client_for, django_capture_on_commit_callbacks
):
    admin = client_for(school.users["admin"])
    first = admin.post(NEXT_WEEK, {"student_id": "s-a1"}, format="json").json()
    admin.post(NEXT_WEEK, {"student_id": "s-a1"}, format="json")
    [record] = PredictionRecord.objects.filter(student=school.students["s-a1"])
    today = today_utc()
    assert (record.topic, record.made_on, record.predicted) == (
        None,
        today,
        first["predicted_mastery"],
    )
    assert str(record.target_day) == first["target_date"]
    with django_capture_on_commit_callbacks(execute=True):
        seed(quizzes("s-a1", LOOPS, {0: 1.0}))
    second = admin.post(NEXT_WEEK, {"student_id": "s-a1"}, format="json").json()
    [record] = PredictionRecord.objects.filter(student=school.students["s-a1"])
    assert second["predicted_mastery"] != first["predicted_mastery"]
    assert record.predicted == second["predicted_mastery"]


def test_the_admin_and_list_reads_record_nothing_until_the_api_serves(school, client_for):
    client_for(school.users["admin"]).post(INTERVENTION, {"cohort_id": "cohort-a"}, format="json")
    assert not PredictionRecord.objects.exists()
    client_for(school.users["admin"]).post(NEXT_WEEK, {"student_id": "s-a1"}, format="json")
    assert PredictionRecord.objects.count() == 1  # the cached value, recorded on first serve


# --- the cache, against the real Redis -------------------------------------------------------


def snapshot_reads(run) -> int:
    with CaptureQueriesContext(connection) as queries:
        run()
    return sum('"mastery_snapshot"' in q["sql"] for q in queries.captured_queries)


def test_a_second_request_is_a_cache_hit_and_an_ingested_event_invalidates_it(
    school, client_for, django_capture_on_commit_callbacks
):
    teacher = client_for(school.users["teacher"])

    def ask():
        return teacher.post(NEXT_WEEK, {"student_id": "s-a2"}, format="json").json()

    assert snapshot_reads(ask) > 0
    before = ask()
    assert snapshot_reads(ask) == 0  # from Redis

    with django_capture_on_commit_callbacks(execute=True):
        seed(quizzes("s-a2", LOOPS, {0: 0.0}))  # a bad quiz today
    assert snapshot_reads(ask) > 0  # invalidated after the commit
    after = ask()
    assert after["current_mastery"] < before["current_mastery"]
    assert snapshot_reads(ask) == 0


def test_an_event_of_another_student_leaves_the_cache_alone(
    school, client_for, django_capture_on_commit_callbacks
):
    teacher = client_for(school.users["teacher"])
    teacher.post(NEXT_WEEK, {"student_id": "s-a2"}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        seed(quizzes("s-a1", LOOPS, {0: 0.5}))
    reads = snapshot_reads(lambda: teacher.post(NEXT_WEEK, {"student_id": "s-a2"}, format="json"))
    assert reads == 0


def test_with_redis_stopped_every_endpoint_still_answers(school, client_for, tmp_path, monkeypatch):
    from mastery_project import devservices

    monkeypatch.setattr(devservices, "STATE_DIR", tmp_path)
    url, started = devservices.redis_start()
    assert started
    caches = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    teacher = client_for(school.users["teacher"])
    try:
        with override_settings(CACHES=caches):
            warm = teacher.post(NEXT_WEEK, {"student_id": "s-a1"}, format="json")
            assert warm.status_code == 200
            devservices.redis_stop()
            cold = teacher.post(NEXT_WEEK, {"student_id": "s-a1"}, format="json")
            trajectory = teacher.post(TRAJECTORY, {"student_id": "s-a1"}, format="json")
            listed = teacher.post(INTERVENTION, {"cohort_id": "cohort-a"}, format="json")
            judged = teacher.post(
                FEEDBACK, {"student_id": "s-a1", "verdict": "useful"}, format="json"
            )
    finally:
        devservices.redis_stop()
    assert cold.status_code == 200, cold.content
    assert cold.json() == warm.json()
    assert (trajectory.status_code, listed.status_code, judged.status_code) == (200, 200, 201)


def test_predictions_share_the_mastery_endpoints_rate_limit(school, client_for):
    teacher = client_for(school.users["teacher"])
    with override_settings(RATE_LIMIT_MASTERY="3/m"):
        statuses = [
            teacher.post(path, {"student_id": "s-a1"}, format="json").status_code
            for path in ("/api/v1/mastery/query", NEXT_WEEK, TRAJECTORY, NEXT_WEEK)
        ]
        limited = teacher.post(INTERVENTION, {"cohort_id": "cohort-a"}, format="json")
    assert statuses == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1


@pytest.mark.parametrize("method", ["naive", "components"])
def test_the_forecaster_the_latest_backtest_chose_is_served_and_named(school, client_for, method):
    teacher = client_for(school.users["teacher"])
    assert teacher.post(NEXT_WEEK, {"student_id": "s-a1"}, format="json").json()["method"] == (
        "linear"
    )
    BacktestReport.objects.create(
        created_at=timezone.now(),
        horizon=7,
        report={},
        served={"overall": {"method": method, "shrinkage": None}},
    )
    prediction_cache_reset()  # what the back-test does once its report is committed
    overall = teacher.post(NEXT_WEEK, {"student_id": "s-a1"}, format="json").json()
    in_topic = teacher.post(NEXT_WEEK, {"student_id": "s-a1", "topic": LOOPS}, format="json")
    assert overall["method"] == method
    if method == "naive":
        assert overall["predicted_mastery"] == overall["current_mastery"]
    assert in_topic.json()["method"] == "linear"  # the topic scope was not chosen anew
