"""POST /api/v1/mastery/query: shape and values from state built by the real pipeline."""

from datetime import UTC, datetime, timedelta

import pytest

from ingest.models import InboxEvent
from mastery.models import MasteryRecord, Student
from tests.mastery.api.support import learning_event, seed

pytestmark = pytest.mark.django_db

QUERY = "/api/v1/mastery/query"
# Noon two days ago: inside the retention window, never in the future, one UTC day.
DAY = (datetime.now(UTC) - timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
ONE_DAY = round(1 / 14, 4)  # consistency with activity on a single day


@pytest.fixture
def admin_client(world, client_for):
    return client_for(world.users["admin"])


def exercise(student_id, topic, exercise_id, *, total=None, at=DAY):
    payload = {"exercise_id": exercise_id}
    if total is not None:
        payload["exercises_total"] = total
    return learning_event(student_id, topic, "exercise.completed", payload=payload, occurred_at=at)


def quiz(student_id, topic, score, max_score, *, at=DAY):
    payload = {"quiz_id": f"q-{score}-{max_score}", "score": score, "max_score": max_score}
    return learning_event(student_id, topic, "quiz.submitted", payload=payload, occurred_at=at)


def review(student_id, topic, quality, *, at=DAY):
    payload = {"submission_id": f"sub-{quality}", "quality_score": quality}
    return learning_event(student_id, topic, "code.reviewed", payload=payload, occurred_at=at)


def session(student_id, topic, *, at=DAY):
    return learning_event(student_id, topic, "session.completed", occurred_at=at)


def by_topic(body: dict) -> dict[str, dict]:
    return {item["topic"]: item for item in body["topics"]}


def test_query_returns_components_mastery_and_level_per_topic(admin_client):
    seed(
        exercise("s-a1", "python.loops", "ex-1", total=4),
        exercise("s-a1", "python.loops", "ex-2", at=DAY - timedelta(days=1)),
        quiz("s-a1", "python.loops", 8, 10),
        review("s-a1", "python.loops", 0.6),
        exercise("s-a1", "python.functions", "ex-1"),
    )
    response = admin_client.post(QUERY, {"student_id": "s-a1"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"student_id", "overall_mastery", "level", "topics"}
    assert body["student_id"] == "s-a1"
    # Topics come in slug order.
    assert [item["topic"] for item in body["topics"]] == ["python.functions", "python.loops"]
    loops, functions = by_topic(body)["python.loops"], by_topic(body)["python.functions"]
    assert set(loops) == {"topic", "mastery", "level", "components", "updated_at"}
    # 2 of 4 exercises, one quiz 8/10, one review 0.6, activity on 2 of 14 days.
    assert loops["components"] == {
        "completion": 0.5,
        "quiz": 0.8,
        "quality": 0.6,
        "consistency": round(2 / 14, 4),
    }
    assert loops["mastery"] == round(0.4 * 0.5 + 0.3 * 0.8 + 0.2 * 0.6 + 0.1 * 2 / 14, 4)
    assert loops["mastery"] == 0.5743
    assert loops["level"] == "developing"
    # No reported total: the default of 10 exercises.
    assert functions["components"] == {
        "completion": 0.1,
        "quiz": 0.0,
        "quality": 0.0,
        "consistency": ONE_DAY,
    }
    assert functions["mastery"] == 0.0471
    assert functions["level"] == "beginner"
    assert body["overall_mastery"] == round((0.5743 + 0.0471) / 2, 4) == 0.3107
    assert body["level"] == "beginner"
    assert datetime.fromisoformat(loops["updated_at"]).tzinfo is not None


def test_levels_follow_the_bands_and_overall_is_the_mean_over_topics(admin_client):
    seed(
        session("s-a1", "t.beginner"),
        exercise("s-a1", "t.developing", "ex-1", total=1),
        review("s-a1", "t.developing", 0.5),
        exercise("s-a1", "t.proficient", "ex-1", total=1),
        quiz("s-a1", "t.proficient", 10, 10),
        exercise("s-a1", "t.mastered", "ex-1", total=1),
        quiz("s-a1", "t.mastered", 10, 10),
        review("s-a1", "t.mastered", 1.0),
    )
    body = admin_client.post(QUERY, {"student_id": "s-a1"}, format="json").json()
    topics = by_topic(body)
    assert {slug: (t["mastery"], t["level"]) for slug, t in topics.items()} == {
        "t.beginner": (0.0071, "beginner"),
        "t.developing": (0.5071, "developing"),
        "t.proficient": (0.7071, "proficient"),
        "t.mastered": (0.9071, "mastered"),
    }
    assert body["overall_mastery"] == round((0.0071 + 0.5071 + 0.7071 + 0.9071) / 4, 4)
    assert body["overall_mastery"] == 0.5321
    assert body["level"] == "developing"


def test_quiz_component_averages_the_five_most_recent_quizzes(admin_client):
    # The oldest of six quizzes (0/10) falls out of the window.
    seed(
        quiz("s-a1", "python.loops", 0, 10, at=DAY - timedelta(hours=6)),
        *(quiz("s-a1", "python.loops", s, 10, at=DAY + timedelta(minutes=s)) for s in (6, 7, 8, 9)),
        quiz("s-a1", "python.loops", 5, 5, at=DAY + timedelta(hours=1)),
    )
    body = admin_client.post(QUERY, {"student_id": "s-a1"}, format="json").json()
    assert body["topics"][0]["components"]["quiz"] == round((0.6 + 0.7 + 0.8 + 0.9 + 1) / 5, 4)


def test_topic_filter_returns_only_that_topic(admin_client):
    seed(
        exercise("s-a1", "python.loops", "ex-1", total=1),
        session("s-a1", "python.functions"),
    )
    response = admin_client.post(
        QUERY, {"student_id": "s-a1", "topic": "python.loops"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert [item["topic"] for item in body["topics"]] == ["python.loops"]
    assert body["overall_mastery"] == body["topics"][0]["mastery"] == 0.4071
    assert body["level"] == "beginner"


def test_unknown_topic_is_404_topic_not_found(admin_client):
    seed(session("s-a1", "python.loops"))
    response = admin_client.post(
        QUERY, {"student_id": "s-a1", "topic": "no.such.topic"}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "topic_not_found"


def test_known_topic_without_a_record_scores_zero_and_beginner(admin_client):
    seed(session("s-a2", "python.functions"))  # the topic exists through another student
    response = admin_client.post(
        QUERY, {"student_id": "s-a1", "topic": "python.functions"}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {
        "student_id": "s-a1",
        "overall_mastery": 0.0,
        "level": "beginner",
        "topics": [
            {
                "topic": "python.functions",
                "mastery": 0.0,
                "level": "beginner",
                "components": {"completion": 0.0, "quiz": 0.0, "quality": 0.0, "consistency": 0.0},
                "updated_at": None,
            }
        ],
    }
    assert not MasteryRecord.objects.filter(student__student_id="s-a1").exists()


def test_student_without_events_has_no_topics_and_zero_overall(admin_client):
    response = admin_client.post(QUERY, {"student_id": "s-a2"}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "student_id": "s-a2",
        "overall_mastery": 0.0,
        "level": "beginner",
        "topics": [],
    }


def test_student_reads_its_own_mastery(world, client_for):
    seed(exercise("s-a1", "python.loops", "ex-1", total=1))
    response = client_for(world.users["student"]).post(QUERY, {"student_id": "s-a1"}, format="json")
    assert response.status_code == 200
    assert response.json()["topics"][0]["mastery"] == 0.4071


def test_events_posted_over_http_show_up_in_the_query(world, client_for):
    service = client_for(world.users["service"])
    posted = service.post(
        "/api/v1/events",
        {"events": [quiz("s-new", "python.loops", 3, 4), review("s-new", "python.loops", 0.9)]},
        format="json",
    )
    assert posted.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    body = service.post(QUERY, {"student_id": "s-new"}, format="json").json()
    assert body["topics"][0]["components"] == {
        "completion": 0.0,
        "quiz": 0.75,
        "quality": 0.9,
        "consistency": ONE_DAY,
    }
    assert body["topics"][0]["mastery"] == round(0.3 * 0.75 + 0.2 * 0.9 + 0.1 / 14, 4)


# --- invalid input -----------------------------------------------------------------------

INVALID_BODIES = {
    "student_id too long": ({"student_id": "s" * 65}, "student_id"),
    "student_id with a space": ({"student_id": "s a1"}, "student_id"),
    "student_id with a slash": ({"student_id": "s/a1"}, "student_id"),
    "student_id with unicode": ({"student_id": "s-ä1"}, "student_id"),
    "student_id with a trailing newline": ({"student_id": "s-a1\n"}, "student_id"),
    "student_id with a leading space": ({"student_id": " s-a1"}, "student_id"),
    "student_id empty": ({"student_id": ""}, "student_id"),
    "student_id a number": ({"student_id": 12}, "student_id"),
    "student_id null": ({"student_id": None}, "student_id"),
    "student_id a list": ({"student_id": ["s-a1"]}, "student_id"),
    "student_id missing": ({}, "student_id"),
    "extra field": ({"student_id": "s-a1", "studentid": "s-a1"}, "studentid"),
    "topic with uppercase": ({"student_id": "s-a1", "topic": "Python.Loops"}, "topic"),
    "topic too long": ({"student_id": "s-a1", "topic": "t" * 101}, "topic"),
    "topic a number": ({"student_id": "s-a1", "topic": 3}, "topic"),
}


@pytest.mark.parametrize(("body", "field"), INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_invalid_query_is_422_naming_the_field(world, client_for, body, field):
    students_before = Student.objects.count()
    response = client_for(world.users["admin"]).post(QUERY, body, format="json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"]
    assert Student.objects.count() == students_before


def test_the_longest_valid_student_id_is_accepted_and_simply_not_found(world, client_for):
    response = client_for(world.users["admin"]).post(QUERY, {"student_id": "s" * 64}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "student_not_found"


@pytest.mark.parametrize(
    "raw",
    [b'["s-a1"]', b'"s-a1"', b"null", b"42", b'{"student_id": NaN}'],
    ids=["array", "string", "null", "number", "nan"],
)
def test_a_body_that_is_not_an_object_is_refused_without_a_500(world, client_for, raw):
    response = client_for(world.users["admin"]).post(
        QUERY, data=raw, content_type="application/json"
    )
    assert response.status_code in (400, 422)
    assert response.json()["error"]["code"] in ("validation_error", "malformed_request")


def test_malformed_json_query_is_400(world, client_for):
    response = client_for(world.users["admin"]).post(
        QUERY, data=b'{"student_id": "s-a1"', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_a_non_json_content_type_is_415(world, client_for):
    response = client_for(world.users["admin"]).post(
        QUERY, data="student_id=s-a1", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_no_event_is_written_by_a_query(world, client_for):
    client_for(world.users["admin"]).post(QUERY, {"student_id": "s-a1"}, format="json")
    assert InboxEvent.objects.count() == 0
