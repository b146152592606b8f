"""The role-by-endpoint matrix of SPEC §3 for the mastery app's endpoints.

401 without a valid access token, 404 (indistinguishable from "no such student") for a
student the caller may not see, lists holding exactly what the caller may see.
"""

from datetime import timedelta

import jwt
import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.factories import UserFactory
from tests.mastery.api.support import (
    AUTHENTICATED_ROLES,
    ROLES,
    VISIBLE_COHORTS,
    VISIBLE_STUDENTS,
    learning_event,
    seed,
)

pytestmark = pytest.mark.django_db

ALL_STUDENTS = ("s-a1", "s-a2", "s-b1")
CALCULATE_BODY = {"completion": 1, "quiz": 0.5, "quality": 0.5, "consistency": 0.2}

# (method, path, body) for every mastery-app endpoint, each as the spec writes it.
ENDPOINTS = [
    ("post", "/api/v1/mastery/query", {"student_id": "s-a1"}),
    ("post", "/api/v1/mastery/calculate", CALCULATE_BODY),
    ("get", "/api/v1/students/", None),
    ("get", "/api/v1/students/s-a1/", None),
    ("get", "/api/v1/topics/", None),
    ("get", "/api/v1/topics/python.loops/", None),
    ("get", "/api/v1/cohorts/", None),
    ("get", "/api/v1/cohorts/cohort-a/", None),
]
ENDPOINT_IDS = [f"{method} {path}" for method, path, _ in ENDPOINTS]


def call(client: APIClient, method: str, path: str, body: dict | None):
    if method == "post":
        return client.post(path, body, format="json")
    return client.get(path)


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_anonymous_caller_gets_401_on_every_endpoint(world, method, path, body):
    response = call(APIClient(), method, path, body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def _expired_access(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1))
    return str(token)


def _refresh_as_access(user) -> str:
    return str(RefreshToken.for_user(user))


def _foreign_signature(user) -> str:
    return jwt.encode(
        dict(AccessToken.for_user(user).payload),
        "some-other-signing-key-0123456789-abcdefghijkl",
        algorithm="HS256",
    )


def _garbage(user) -> str:
    return "not-a-jwt"


BAD_TOKENS = {
    "expired access token": _expired_access,
    "refresh token used as access": _refresh_as_access,
    "signed with another key": _foreign_signature,
    "garbage": _garbage,
}


@pytest.mark.parametrize("make_token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_an_invalid_bearer_token_gets_401(world, method, path, body, make_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(world.users['admin'])}")
    response = call(client, method, path, body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_token_of_a_deleted_user_gets_401(world, client_for):
    user = world.users["admin"]
    client = client_for(user)
    user.delete()
    response = client.post("/api/v1/mastery/query", {"student_id": "s-a1"}, format="json")
    assert response.status_code == 401


def test_a_token_of_a_deactivated_user_gets_401(world, client_for):
    user = world.users["teacher"]
    client = client_for(user)
    user.is_active = False
    user.save()
    response = client.get("/api/v1/students/")
    assert response.status_code == 401


def test_a_non_bearer_authorization_scheme_gets_401(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AccessToken.for_user(world.users['admin'])}")
    response = client.get("/api/v1/students/")
    assert response.status_code == 401


def test_a_token_from_the_token_endpoint_opens_the_api(world, api_client):
    pair = api_client.post(
        "/api/v1/auth/token",
        {"username": "teacher-a", "password": "correct-horse-battery-staple"},
        format="json",
    ).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    response = api_client.post("/api/v1/mastery/query", {"student_id": "s-a2"}, format="json")
    assert response.status_code == 200


# --- mastery/query and students/{id}: object visibility ---------------------------------


def _not_found_body(client: APIClient, method: str, path: str, body: dict | None) -> dict:
    response = call(client, method, path, body)
    assert response.status_code == 404
    return response.json()


STUDENT_READS = {
    "mastery query": lambda sid: ("post", "/api/v1/mastery/query", {"student_id": sid}),
    "student detail": lambda sid: ("get", f"/api/v1/students/{sid}/", None),
}


@pytest.mark.parametrize("target", ALL_STUDENTS)
@pytest.mark.parametrize("role", AUTHENTICATED_ROLES)
@pytest.mark.parametrize("read", STUDENT_READS.values(), ids=STUDENT_READS.keys())
def test_a_student_read_answers_only_for_students_the_caller_may_see(
    world, client_for, read, role, target
):
    client = world.client(role, client_for)
    response = call(client, *read(target))
    if target in VISIBLE_STUDENTS[role]:
        assert response.status_code == 200
        assert response.json()["student_id"] == target
    else:
        assert response.status_code == 404
        assert response.json() == _not_found_body(client, *read("no-such-student"))
        assert response.json()["error"]["code"] == "student_not_found"


@pytest.mark.parametrize("read", STUDENT_READS.values(), ids=STUDENT_READS.keys())
def test_a_nonexistent_student_is_404_student_not_found(world, client_for, read):
    response = call(client_for(world.users["admin"]), *read("no-such-student"))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "student_not_found"
    assert set(error) == {"code", "message", "details"}


def test_student_cannot_see_a_classmate(world, client_for):
    client = client_for(world.users["student"])
    response = client.post("/api/v1/mastery/query", {"student_id": "s-a2"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "student_not_found"


def test_teacher_cannot_see_a_student_outside_their_cohorts(world, client_for):
    seed(learning_event("s-b1", "python.loops"))
    client = client_for(world.users["teacher"])
    hidden = client.post("/api/v1/mastery/query", {"student_id": "s-b1"}, format="json")
    missing = client.post("/api/v1/mastery/query", {"student_id": "s-zz"}, format="json")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    assert client.get("/api/v1/students/s-b1/").json() == missing.json()


def test_teacher_sees_a_student_who_joins_their_cohort(world, client_for):
    client = client_for(world.users["teacher"])
    assert client.get("/api/v1/students/s-b1/").status_code == 404
    world.cohorts["cohort-a"].students.add(world.students["s-b1"])
    assert client.get("/api/v1/students/s-b1/").status_code == 200


def test_student_login_without_a_linked_student_sees_nobody(world, client_for):
    orphan = UserFactory(username="orphan", role="student")
    client = client_for(orphan)
    assert results(client.get("/api/v1/students/")) == []
    assert results(client.get("/api/v1/cohorts/")) == []
    response = client.post("/api/v1/mastery/query", {"student_id": "s-a1"}, format="json")
    assert response.status_code == 404


# --- lists -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", AUTHENTICATED_ROLES)
def test_student_list_holds_exactly_the_visible_students(world, client_for, role):
    listed = results(world.client(role, client_for).get("/api/v1/students/"))
    assert {item["student_id"] for item in listed} == VISIBLE_STUDENTS[role]
    assert len(listed) == len(VISIBLE_STUDENTS[role])


@pytest.mark.parametrize("role", AUTHENTICATED_ROLES)
def test_student_list_filtered_by_a_cohort_stays_within_visibility(world, client_for, role):
    listed = results(world.client(role, client_for).get("/api/v1/students/?cohort=cohort-b"))
    assert {item["student_id"] for item in listed} == VISIBLE_STUDENTS[role] & {"s-b1"}


def test_student_list_items_carry_cohorts_and_overall_mastery(world, client_for):
    seed(learning_event("s-a1", "python.loops"))
    listed = results(client_for(world.users["student"]).get("/api/v1/students/"))
    assert listed == [
        {
            "student_id": "s-a1",
            "cohorts": ["cohort-a"],
            "overall_mastery": 0.0071,
            "analytics_consent": True,
            "last_activity_at": listed[0]["last_activity_at"],
            "created_at": listed[0]["created_at"],
        }
    ]
    assert listed[0]["last_activity_at"] is not None


@pytest.mark.parametrize("role", AUTHENTICATED_ROLES)
def test_cohort_list_holds_exactly_the_visible_cohorts(world, client_for, role):
    listed = results(world.client(role, client_for).get("/api/v1/cohorts/"))
    assert {item["cohort_id"] for item in listed} == VISIBLE_COHORTS[role]
    assert len(listed) == len(VISIBLE_COHORTS[role])


@pytest.mark.parametrize("cohort_id", ["cohort-a", "cohort-b"])
@pytest.mark.parametrize("role", AUTHENTICATED_ROLES)
def test_cohort_detail_is_404_for_a_cohort_the_caller_may_not_see(
    world, client_for, role, cohort_id
):
    response = world.client(role, client_for).get(f"/api/v1/cohorts/{cohort_id}/")
    if cohort_id in VISIBLE_COHORTS[role]:
        assert response.status_code == 200
        assert response.json()["cohort_id"] == cohort_id
    else:
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_cohort_counts_its_students(world, client_for):
    listed = results(client_for(world.users["admin"]).get("/api/v1/cohorts/"))
    assert {item["cohort_id"]: item["student_count"] for item in listed} == {
        "cohort-a": 2,
        "cohort-b": 1,
    }


def test_student_cannot_derive_a_classmates_mastery_from_the_cohort_list(world, client_for):
    """A student sees only itself: a cohort mean over its classmates reveals their scores.

    With two students in the cohort, 2 * mean - own = the classmate's mastery.
    """
    seed(
        learning_event("s-a1", "python.loops"),
        learning_event(
            "s-a2",
            "python.loops",
            "exercise.completed",
            payload={"exercise_id": "ex-1", "exercises_total": 1},
        ),
    )
    client = client_for(world.users["student"])
    for item in results(client.get("/api/v1/cohorts/")):
        assert item.get("mean_mastery") is None, item
    detail = client.get("/api/v1/cohorts/cohort-a/")
    assert detail.json().get("mean_mastery") is None, detail.json()


@pytest.mark.parametrize("role", AUTHENTICATED_ROLES)
def test_every_role_lists_every_topic(world, client_for, role):
    seed(learning_event("s-b1", "python.functions"))
    listed = results(world.client(role, client_for).get("/api/v1/topics/"))
    assert [item["slug"] for item in listed] == ["python.functions", "python.loops"]


@pytest.mark.parametrize("role", AUTHENTICATED_ROLES)
def test_every_role_reads_a_topic(world, client_for, role):
    response = world.client(role, client_for).get("/api/v1/topics/python.loops/")
    assert response.status_code == 200
    assert response.json() == {
        "slug": "python.loops",
        "name": "Python.Loops",
        "exercises_total": 10,
        "prerequisites": [],
    }


def test_unknown_topic_detail_is_404(world, client_for):
    response = client_for(world.users["admin"]).get("/api/v1/topics/no.such.topic/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("role", AUTHENTICATED_ROLES)
def test_every_role_may_use_the_calculator(world, client_for, role):
    response = world.client(role, client_for).post(
        "/api/v1/mastery/calculate", CALCULATE_BODY, format="json"
    )
    assert response.status_code == 200
    assert response.json()["mastery"] == 0.67


# --- paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/mastery/query", {"student_id": "s-a1"}),
        ("post", "/api/v1/mastery/query/", {"student_id": "s-a1"}),
        ("post", "/api/v1/mastery/calculate", CALCULATE_BODY),
        ("post", "/api/v1/mastery/calculate/", CALCULATE_BODY),
        ("get", "/api/v1/students", None),
        ("get", "/api/v1/students/s-a1", None),
        ("get", "/api/v1/topics", None),
        ("get", "/api/v1/topics/python.loops", None),
        ("get", "/api/v1/cohorts", None),
        ("get", "/api/v1/cohorts/cohort-a", None),
    ],
)
def test_paths_answer_with_and_without_a_trailing_slash(world, client_for, method, path, body):
    response = call(client_for(world.users["admin"]), method, path, body)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("role", ROLES)
def test_mastery_endpoints_refuse_get(world, client_for, role):
    response = world.client(role, client_for).get("/api/v1/mastery/query")
    assert response.status_code == (401 if role == "anonymous" else 405)
