"""The recommendation endpoints (SPEC §3, §3.2): the role matrix, every rejection in the
envelope, stable ids across calls and a new one after an event, feedback and its shares,
audit and the shared rate limit."""

import threading
import time
import uuid
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import override_settings
from django_ratelimit import core as ratelimit_core
from rest_framework.test import APIClient

from analytics.models.recommendations import Recommendation, RecommendationFeedback
from analytics.selectors.recommendations import recommendation_rules_check
from analytics.services.recommendations import recommendations_current
from compliance.models import AuditLog
from mastery.models import Student
from tests.analytics.recommendations.conftest import (
    BASICS,
    FUNCTIONS,
    LOOPS,
    ROLES,
    STRINGS,
    VISIBLE,
    event,
    seed,
    work,
)

pytestmark = pytest.mark.django_db

ADAPTIVE = "/api/v1/recommendations/adaptive"
PATH = "/api/v1/recommendations/learning-path"
CONFIG = "/api/v1/recommendations/config"
FEEDBACK = "/api/v1/recommendations/feedback"
STUDENTS = ("s-a1", "s-a2", "s-b1")


def post(client: APIClient, url: str, body) -> object:
    return client.post(url, body, format="json")


def ok(response, status: int = 200):
    assert response.status_code == status, response.content
    return response.json()


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert set(response.json()) == {"error"}
    if field is not None:
        assert field in error["details"], error
    return error


def adaptive(school, client_for, role: str = "admin", **body) -> list[dict]:
    return ok(post(school.client(role, client_for), ADAPTIVE, {"student_id": "s-a1", **body}))


def by_component(items: list[dict]) -> dict[str, dict]:
    return {item["component"]: item for item in items}


# --- the role matrix --------------------------------------------------------------------


@pytest.mark.parametrize("url", [ADAPTIVE, PATH])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("student_id", STUDENTS)
def test_a_caller_sees_the_students_it_may_see_and_404_for_the_others(
    school, client_for, url, role, student_id
):
    response = post(school.client(role, client_for), url, {"student_id": student_id})

    if student_id in VISIBLE[role]:
        assert response.status_code == 200, response.content
    else:
        assert_error(response, 404, "student_not_found")


@pytest.mark.parametrize("url", [ADAPTIVE, PATH])
def test_an_unknown_student_is_the_same_404_as_one_out_of_sight(school, client_for, url):
    teacher = school.client("teacher", client_for)

    unknown = assert_error(post(teacher, url, {"student_id": "s-nobody"}), 404, "student_not_found")
    hidden = assert_error(post(teacher, url, {"student_id": "s-b1"}), 404, "student_not_found")

    assert unknown == hidden


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("post", ADAPTIVE, {"student_id": "s-a1"}),
        ("post", PATH, {"student_id": "s-a1"}),
        ("get", CONFIG, None),
        ("post", FEEDBACK, {"recommendation_id": str(uuid.uuid4()), "helpful": True}),
    ],
)
def test_anonymous_callers_get_401(school, method, url, body):
    client = APIClient()
    response = client.post(url, body, format="json") if method == "post" else client.get(url)

    assert_error(response, 401, "not_authenticated")


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_config(school, client_for, role):
    config = ok(school.client(role, client_for).get(CONFIG))

    assert config["threshold"] == 0.7
    assert config["weights"] == {"completion": 0.4, "quiz": 0.3, "quality": 0.2, "consistency": 0.1}
    assert config["actions"] == {
        "completion": "practice",
        "quiz": "review",
        "quality": "refactor",
        "consistency": "schedule",
    }
    assert config["priorities"] == {"high": 0.08, "medium": 0.03}
    assert config["minutes"]["practice"] == {
        "per": "exercise",
        "minutes": 15,
        "setting": "RECOMMENDATION_MINUTES_PER_EXERCISE",
    }
    assert set(config["feedback"]) == {"practice", "review", "refactor", "schedule"}


@override_settings(RECOMMENDATION_MINUTES_PER_EXERCISE=4, RECOMMENDATION_THRESHOLD=0.8)
def test_the_config_and_the_recommendations_follow_the_settings(school, client_for):
    config = ok(school.client("student", client_for).get(CONFIG))
    found = by_component(adaptive(school, client_for, "student", topic=LOOPS))

    assert (config["threshold"], config["minutes"]["practice"]["minutes"]) == (0.8, 4)
    assert (found["completion"]["steps"], found["completion"]["estimated_minutes"]) == (4, 16)


# --- adaptive recommendations --------------------------------------------------------------


def test_recommendations_of_the_weak_topic_with_their_numbers(school, client_for):
    items = adaptive(school, client_for, "student")

    assert [item["topic"] for item in items] == [LOOPS] * 4  # basics is at or above 0.7
    assert [item["impact"] for item in items] == sorted(
        (item["impact"] for item in items), reverse=True
    )
    found = by_component(items)
    assert found["completion"] == {
        **found["completion"],
        "score": 0.4,
        "action": "practice",
        "priority": "high",
        "impact": 0.12,
        "steps": 3,
        "estimated_minutes": 45,
        "message": "3 more exercises in python.loops would lift completion from 0.40 to 0.70, "
        "+0.12 mastery.",
    }
    assert (found["quiz"]["action"], found["quiz"]["steps"], found["quiz"]["priority"]) == (
        "review",
        2,
        "medium",
    )
    assert (found["quality"]["action"], found["quality"]["steps"]) == ("refactor", 3)
    assert found["consistency"]["action"] == "schedule"
    assert set(found["completion"]) >= {
        "id",
        "topic",
        "component",
        "score",
        "action",
        "priority",
        "estimated_minutes",
        "message",
    }


def test_a_topic_narrows_the_recommendations_and_an_unstarted_one_starts_from_zero(
    school, client_for
):
    strings = adaptive(school, client_for, topic=STRINGS)
    basics = adaptive(school, client_for, topic=BASICS)

    assert {item["topic"] for item in strings} == {STRINGS}
    assert {item["component"]: item["score"] for item in strings} == {
        "completion": 0.0,
        "quiz": 0.0,
        "quality": 0.0,
        "consistency": 0.0,
    }
    assert basics == []


def test_the_same_scores_give_back_the_same_ids(school, client_for):
    first = adaptive(school, client_for, "student")
    second = adaptive(school, client_for, "teacher")
    path = ok(post(school.client("admin", client_for), PATH, {"student_id": "s-a1"}))

    assert [item["id"] for item in first] == [item["id"] for item in second]
    loops_step = next(step for step in path["steps"] if step["topic"] == LOOPS)
    assert {r["id"] for r in loops_step["recommendations"]} == {item["id"] for item in first}
    assert Recommendation.objects.filter(student__student_id="s-a1", topic__slug=LOOPS).count() == 4


def test_an_event_that_changes_a_score_gives_a_new_id_and_supersedes_the_old_one(
    school, client_for
):
    before = by_component(adaptive(school, client_for))
    seed([event("s-a1", LOOPS, "exercise.completed", exercise_id="ex-new")])

    after = by_component(adaptive(school, client_for))

    assert after["completion"]["score"] == 0.5
    assert after["completion"]["id"] != before["completion"]["id"]
    assert after["completion"]["steps"] == 2
    for unchanged in ("quiz", "quality", "consistency"):
        assert after[unchanged]["id"] == before[unchanged]["id"]
    old = Recommendation.objects.get(pk=before["completion"]["id"])
    assert old.superseded_at is not None
    assert (old.score, old.steps) == (0.4, 3)  # kept as it was, for its feedback
    current = Recommendation.objects.filter(superseded_at__isnull=True, student__student_id="s-a1")
    assert current.filter(topic__slug=LOOPS, component="completion").get().score == 0.5


def test_a_component_that_reaches_the_threshold_loses_its_recommendation(school, client_for):
    before = by_component(adaptive(school, client_for))
    seed([event("s-a1", LOOPS, "quiz.submitted", quiz_id=f"q-more-{n}", score=1, max_score=1)
          for n in range(2)])  # fmt: skip

    after = by_component(adaptive(school, client_for))

    assert "quiz" not in after
    assert Recommendation.objects.get(pk=before["quiz"]["id"]).superseded_at is not None


def test_two_requests_at_once_write_one_recommendation_per_component(
    transactional_db, school, client_for
):
    student = Student.objects.get(student_id="s-a1")
    barrier = threading.Barrier(4)
    results, errors = [], []

    def call() -> None:
        try:
            barrier.wait()
            results.append(sorted(str(r.pk) for r in recommendations_current(student=student)))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len({tuple(ids) for ids in results}) == 1
    assert Recommendation.objects.filter(student=student).count() == 4


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"student_id": "s-a1", "extra": 1}, 422, "validation_error", "extra"),
        ({}, 422, "validation_error", "student_id"),
        ({"student_id": 12}, 422, "validation_error", "student_id"),
        ({"student_id": "s a1"}, 422, "validation_error", "student_id"),
        ({"student_id": "s-a1", "topic": "Not A Slug"}, 422, "validation_error", "topic"),
        ({"student_id": "s-a1", "topic": "no.such.topic"}, 404, "topic_not_found", None),
        (["s-a1"], 422, "validation_error", None),
    ],
)
def test_bad_adaptive_input_gets_the_envelope(school, client_for, body, status, code, field):
    response = post(school.client("admin", client_for), ADAPTIVE, body)

    assert_error(response, status, code, field)


@pytest.mark.parametrize(
    "body",
    [{"student_id": "s-a1", "topic": LOOPS}, {"student_id": "s-a1", "x": 1}, {"student_id": None}],
)
def test_bad_learning_path_input_gets_the_envelope(school, client_for, body):
    response = post(school.client("admin", client_for), PATH, body)

    assert_error(response, 422, "validation_error")


def test_malformed_json_gets_the_envelope(school, client_for):
    response = school.client("admin", client_for).post(
        ADAPTIVE, b'{"student_id": ', content_type="application/json"
    )

    assert_error(response, 400, "malformed_request")


# --- the learning path ----------------------------------------------------------------------


def test_the_learning_path_lists_unlocked_topics_weakest_first_then_the_locked(school, client_for):
    path = ok(post(school.client("student", client_for), PATH, {"student_id": "s-a1"}))

    assert [(s["position"], s["topic"], s["status"]) for s in path["steps"]] == [
        (1, STRINGS, "unlocked"),
        (2, LOOPS, "unlocked"),
        (3, FUNCTIONS, "locked"),
    ]
    assert path["mastered"] == [BASICS]
    assert path["threshold"] == 0.7
    assert path["problems"] == []
    locked = path["steps"][2]
    assert locked["recommendations"] == []
    assert [b["topic"] for b in locked["blocked_by"]] == [LOOPS]
    assert locked["blocked_by"][0]["mastery"] == path["steps"][1]["mastery"]
    assert {r["action"] for r in path["steps"][0]["recommendations"]} == {
        "practice",
        "review",
        "refactor",
        "schedule",
    }
    assert path["steps"][0]["name"] == "Strings"


def test_a_student_who_has_not_mastered_basics_has_everything_else_locked(school, client_for):
    path = ok(post(school.client("teacher", client_for), PATH, {"student_id": "s-a2"}))

    order = [s["topic"] for s in path["steps"]]
    steps = {s["topic"]: s for s in path["steps"]}
    assert order[0] == BASICS
    assert steps[BASICS]["status"] == "unlocked"
    assert [b["topic"] for b in steps[STRINGS]["blocked_by"]] == [BASICS]
    assert [b["topic"] for b in steps[FUNCTIONS]["blocked_by"]] == [LOOPS]
    assert order.index(LOOPS) < order.index(FUNCTIONS)


def test_a_cycle_already_in_the_data_is_reported_not_looped_on(school, client_for):
    # Written past the admin form (which refuses it), as an old import might have.
    basics, functions = school.topics[BASICS], school.topics[FUNCTIONS]
    basics.prerequisites.add(functions)

    path = ok(post(school.client("admin", client_for), PATH, {"student_id": "s-a2"}))

    assert [(p["code"], p["topics"]) for p in path["problems"]] == [
        ("prerequisite_cycle", [BASICS, FUNCTIONS, LOOPS])
    ]
    assert sorted(s["topic"] for s in path["steps"]) == sorted([BASICS, STRINGS, LOOPS, FUNCTIONS])


# --- feedback ---------------------------------------------------------------------------------


def a_recommendation(school, client_for, component: str = "completion") -> str:
    return by_component(adaptive(school, client_for))[component]["id"]


@pytest.mark.parametrize("role", ["student", "teacher", "admin"])
def test_the_student_its_teacher_and_an_admin_give_feedback(school, client_for, role):
    target = a_recommendation(school, client_for)

    body = ok(
        post(
            school.client(role, client_for),
            FEEDBACK,
            {"recommendation_id": target, "helpful": True, "completed": False, "comment": "ok"},
        ),
        201,
    )

    assert body["recommendation_id"] == target
    assert (body["helpful"], body["completed"], body["comment"]) == (True, False, "ok")
    stored = RecommendationFeedback.objects.get()
    assert (stored.author, stored.author_role) == (school.users[role], role)
    assert stored.created_at is not None


@pytest.mark.parametrize("role", ["other_teacher", "student_b"])
def test_feedback_on_a_recommendation_out_of_sight_is_404(school, client_for, role):
    target = a_recommendation(school, client_for)

    response = post(
        school.client(role, client_for), FEEDBACK, {"recommendation_id": target, "helpful": True}
    )

    assert_error(response, 404, "recommendation_not_found")
    assert not RecommendationFeedback.objects.exists()
    refused = AuditLog.objects.get(action="recommendation.feedback")
    assert (refused.student_ref, refused.outcome) == ("s-a1", "not_found")


def test_a_service_may_not_give_feedback(school, client_for):
    target = a_recommendation(school, client_for)

    response = post(
        school.client("service", client_for), FEEDBACK, {"recommendation_id": target, "helpful": 1}
    )

    assert_error(response, 403, "forbidden")


def test_an_unknown_recommendation_is_404_like_one_out_of_sight(school, client_for):
    response = post(
        school.client("admin", client_for),
        FEEDBACK,
        {"recommendation_id": str(uuid.uuid4()), "helpful": True},
    )

    assert_error(response, 404, "recommendation_not_found")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"helpful": "yes"}, "helpful"),
        ({"helpful": 1}, "helpful"),
        ({"helpful": "true"}, "helpful"),
        ({"helpful": None}, "helpful"),
        ({"helpful": ...}, "helpful"),  # missing
        ({"completed": "no"}, "completed"),
        ({"comment": "x" * 2001}, "comment"),
        ({"comment": 5}, "comment"),
        ({"comment": "a\x00b"}, "comment"),
        ({"recommendation_id": "not-a-uuid"}, "recommendation_id"),
        ({"recommendation_id": 12345}, "recommendation_id"),
        ({"verdict": "useful"}, "verdict"),
    ],
)
def test_bad_feedback_gets_the_envelope(school, client_for, changes, field):
    body = {"recommendation_id": a_recommendation(school, client_for), "helpful": True}
    body.update(changes)
    body = {key: value for key, value in body.items() if value is not ...}

    response = post(school.client("student", client_for), FEEDBACK, body)

    assert_error(response, 422, "validation_error", field)
    assert not RecommendationFeedback.objects.exists()


def test_a_comment_of_the_maximum_length_is_kept(school, client_for):
    target = a_recommendation(school, client_for)

    ok(
        post(
            school.client("student", client_for),
            FEEDBACK,
            {"recommendation_id": target, "helpful": False, "comment": "é" * 2000},
        ),
        201,
    )

    assert RecommendationFeedback.objects.get().comment == "é" * 2000


def test_feedback_again_replaces_the_callers_earlier_feedback(school, client_for):
    target = a_recommendation(school, client_for)
    student = school.client("student", client_for)

    ok(post(student, FEEDBACK, {"recommendation_id": target, "helpful": False}), 201)
    again = ok(
        post(student, FEEDBACK, {"recommendation_id": target, "helpful": True, "completed": True}),
        200,
    )

    assert (again["helpful"], again["completed"]) == (True, True)
    assert RecommendationFeedback.objects.count() == 1


def test_feedback_on_a_superseded_recommendation_still_counts(school, client_for):
    old = a_recommendation(school, client_for)
    seed([event("s-a1", LOOPS, "exercise.completed", exercise_id="ex-later")])
    assert a_recommendation(school, client_for) != old

    ok(
        post(
            school.client("student", client_for),
            FEEDBACK,
            {"recommendation_id": old, "helpful": True},
        ),
        201,
    )

    assert RecommendationFeedback.objects.get().recommendation_id == uuid.UUID(old)


def test_feedback_is_counted_in_the_config(school, client_for):
    practice = a_recommendation(school, client_for, "completion")
    review = a_recommendation(school, client_for, "quiz")
    for role, target, helpful in [
        ("student", practice, True),
        ("teacher", practice, True),
        ("admin", practice, False),
        ("student", review, False),
    ]:
        body = {"recommendation_id": target, "helpful": helpful}
        ok(post(school.client(role, client_for), FEEDBACK, body), 201)

    feedback = ok(school.client("student", client_for).get(CONFIG))["feedback"]

    assert feedback["practice"] == {"count": 3, "helpful": 2, "helpful_share": 0.6667}
    assert feedback["review"] == {"count": 1, "helpful": 0, "helpful_share": 0.0}
    assert feedback["refactor"] == {"count": 0, "helpful": 0, "helpful_share": None}


def test_feedback_of_students_without_analytics_consent_is_left_out_of_the_shares(
    school, client_for
):
    target = a_recommendation(school, client_for)
    body = {"recommendation_id": target, "helpful": True}
    ok(post(school.client("student", client_for), FEEDBACK, body), 201)
    Student.objects.filter(student_id="s-a1").update(analytics_consent=False)

    feedback = ok(school.client("admin", client_for).get(CONFIG))["feedback"]

    assert feedback["practice"]["count"] == 0


# --- audit and rate limit -------------------------------------------------------------------


def test_reads_and_refusals_are_audited(school, client_for):
    teacher = school.client("teacher", client_for)
    post(teacher, ADAPTIVE, {"student_id": "s-a1"})
    post(teacher, PATH, {"student_id": "s-b1"})
    target = a_recommendation(school, client_for)
    post(teacher, FEEDBACK, {"recommendation_id": target, "helpful": True})

    entries = AuditLog.objects.filter(actor=school.users["teacher"]).order_by("id")
    assert [(e.action, e.student_ref, e.outcome) for e in entries] == [
        ("recommendation.adaptive", "s-a1", "ok"),
        ("recommendation.path", "s-b1", "not_found"),
        ("recommendation.feedback", "s-a1", "ok"),
    ]
    assert entries[0].resource == ADAPTIVE


@pytest.fixture
def one_rate_window(monkeypatch):
    """django-ratelimit counts in fixed windows of the wall clock: held still, so that the
    test's calls share one window whatever the second they run at."""
    held = time.time()
    monkeypatch.setattr(ratelimit_core, "time", SimpleNamespace(time=lambda: held))


@override_settings(RATE_LIMIT_MASTERY="3/m")
def test_recommendations_share_the_mastery_budget(school, client_for, one_rate_window):
    client = school.client("student", client_for)
    assert post(client, "/api/v1/mastery/query", {"student_id": "s-a1"}).status_code == 200
    assert post(client, ADAPTIVE, {"student_id": "s-a1"}).status_code == 200
    assert client.get(CONFIG).status_code == 200

    for response in (
        post(client, PATH, {"student_id": "s-a1"}),
        post(client, FEEDBACK, {"recommendation_id": str(uuid.uuid4()), "helpful": True}),
        post(client, "/api/v1/mastery/query", {"student_id": "s-a1"}),
    ):
        assert_error(response, 429, "rate_limited")
        assert int(response["Retry-After"]) >= 1
    # another user's budget is its own
    assert post(school.client("admin", client_for), PATH, {"student_id": "s-a1"}).status_code == 200


def test_work_on_a_new_topic_adds_it_to_the_recommendations(school, client_for):
    seed(work("s-a1", STRINGS, exercises=8, quizzes=(0.9,) * 3, reviews=(0.8,), days=1))

    topics = {item["topic"] for item in adaptive(school, client_for)}

    assert topics == {LOOPS, STRINGS}


@pytest.mark.parametrize(
    "setting",
    [
        {"RECOMMENDATION_THRESHOLD": 1.5},
        {"RECOMMENDATION_THRESHOLD": 0},
        {"RECOMMENDATION_MINUTES_PER_QUIZ": 0},
        {"RECOMMENDATION_MINUTES_PER_SESSION": "25"},
    ],
)
def test_bad_recommendation_settings_stop_the_start_up(setting):
    with override_settings(**setting), pytest.raises(ImproperlyConfigured, match="RECOMMENDATION"):
        recommendation_rules_check()
