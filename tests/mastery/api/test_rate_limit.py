"""The per-user "mastery" budget (SPEC §3), counted in the real Redis cache."""

import time
from types import SimpleNamespace

import pytest
from django.test import override_settings
from django_ratelimit import core as ratelimit_core

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("world")]


@pytest.fixture(autouse=True)
def one_rate_window(monkeypatch):
    """django-ratelimit counts in fixed windows of the wall clock, each key's ending at a
    second of its own every minute: calls that straddle that second start a fresh count,
    and "the fourth call" passes. Its clock is held still, so a test's calls share one
    window whatever the second they run at."""
    held = time.time()
    monkeypatch.setattr(ratelimit_core, "time", SimpleNamespace(time=lambda: held))


QUERY = "/api/v1/mastery/query"
CALCULATE = "/api/v1/mastery/calculate"
COMPONENTS = {"completion": 1, "quiz": 0.5, "quality": 0.5, "consistency": 0.2}


def query(client):
    return client.post(QUERY, {"student_id": "s-a1"}, format="json")


def calculate(client):
    return client.post(CALCULATE, COMPONENTS, format="json")


def assert_rate_limited(response) -> None:
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    retry_after = response["Retry-After"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= 60
    assert error["details"]["retry_after"] == int(retry_after)


@pytest.mark.parametrize("endpoint", [query, calculate], ids=["query", "calculate"])
@override_settings(RATE_LIMIT_MASTERY="3/m")
def test_the_fourth_call_in_a_minute_is_429_with_retry_after(world, client_for, endpoint):
    client = client_for(world.users["admin"])
    for _ in range(3):
        assert endpoint(client).status_code == 200
    assert_rate_limited(endpoint(client))


@override_settings(RATE_LIMIT_MASTERY="3/m")
def test_another_user_keeps_their_own_budget(world, client_for):
    spent = client_for(world.users["teacher"])
    for _ in range(3):
        assert query(spent).status_code == 200
    assert_rate_limited(query(spent))
    assert query(client_for(world.users["student"])).status_code == 200
    assert query(client_for(world.users["admin"])).status_code == 200


@override_settings(RATE_LIMIT_MASTERY="3/m")
def test_query_and_calculate_share_one_budget(world, client_for):
    client = client_for(world.users["student"])
    assert query(client).status_code == 200
    assert calculate(client).status_code == 200
    assert query(client).status_code == 200
    assert_rate_limited(calculate(client))
    assert_rate_limited(query(client))


@override_settings(RATE_LIMIT_MASTERY="3/m")
def test_the_budget_follows_the_user_not_the_token(world, client_for):
    user = world.users["service"]
    for _ in range(3):
        assert calculate(client_for(user)).status_code == 200
    assert_rate_limited(calculate(client_for(user)))


@override_settings(RATE_LIMIT_MASTERY="3/m")
def test_invalid_requests_spend_the_budget_too(world, client_for):
    client = client_for(world.users["admin"])
    for _ in range(3):
        assert client.post(CALCULATE, {}, format="json").status_code == 422
    assert_rate_limited(calculate(client))


@override_settings(RATE_LIMIT_MASTERY="3/m")
def test_anonymous_calls_are_401_not_counted(world, api_client, client_for):
    for _ in range(5):
        assert query(api_client).status_code == 401
    assert query(client_for(world.users["admin"])).status_code == 200


@override_settings(RATE_LIMIT_MASTERY="3/m")
def test_the_rate_limit_does_not_cover_the_list_endpoints(world, client_for):
    client = client_for(world.users["admin"])
    for _ in range(3):
        assert query(client).status_code == 200
    assert_rate_limited(query(client))
    assert client.get("/api/v1/students/").status_code == 200
