"""Browser clients (CORS, django-cors-headers): preflight from an allowed origin, a refused
origin, the exposed headers on real answers and on the error envelope, a preflight that
meets neither authentication nor the rate limit, and the origins each settings module
allows."""

import json
import os
import secrets
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.test import override_settings
from django_ratelimit import core as ratelimit_core

from mastery.models import User
from tests.compliance.test_deploy_hardening import run
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
FRONT_END = "https://app.school.example"
OTHER_SITE = "https://evil.example"
QUERY = "/api/v1/mastery/query"
CALCULATE = "/api/v1/mastery/calculate"
COMPONENTS = {"completion": 1, "quiz": 0.5, "quality": 0.5, "consistency": 0.2}

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("front_end_allowed")]


@pytest.fixture
def front_end_allowed():
    with override_settings(CORS_ALLOWED_ORIGINS=[FRONT_END]):
        yield


def preflight(client, path: str, origin: str = FRONT_END, **headers):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, x-request-id",
        **headers,
    )


def listed(response, header: str) -> set[str]:
    return {item.strip().lower() for item in response.get(header, "").split(",") if item.strip()}


def assert_shared_with_front_end(response) -> None:
    """What a browser at FRONT_END needs to read the answer and its correlation id."""
    assert response["Access-Control-Allow-Origin"] == FRONT_END
    assert "x-request-id" in listed(response, "Access-Control-Expose-Headers")
    assert "origin" in listed(response, "Vary")
    assert not response.has_header("Access-Control-Allow-Credentials")


def test_a_preflight_from_an_allowed_origin_is_answered_with_what_it_may_send(api_client):
    response = preflight(api_client, QUERY)
    assert response.status_code == 200
    assert response.content == b""
    assert response["Access-Control-Allow-Origin"] == FRONT_END
    assert {"authorization", "content-type", "x-request-id"} <= listed(
        response, "Access-Control-Allow-Headers"
    )
    assert {"get", "post", "put", "delete"} <= listed(response, "Access-Control-Allow-Methods")
    assert int(response["Access-Control-Max-Age"]) > 0
    assert not response.has_header("Access-Control-Allow-Credentials")
    assert response.has_header("X-Request-ID")  # the preflight is logged with an id too


def test_a_refused_origin_gets_no_allow_origin_on_preflight_or_answer(api_client):
    refused = preflight(api_client, QUERY, origin=OTHER_SITE)
    assert not refused.has_header("Access-Control-Allow-Origin")
    assert not refused.has_header("Access-Control-Allow-Headers")
    answer = api_client.get("/api/v1/students/", HTTP_ORIGIN=OTHER_SITE)
    assert answer.status_code == 401
    assert not answer.has_header("Access-Control-Allow-Origin")
    # Same host, another port or scheme: another origin.
    for origin in ("https://app.school.example:8443", "http://app.school.example"):
        assert not preflight(api_client, QUERY, origin=origin).has_header(
            "Access-Control-Allow-Origin"
        )


def test_a_real_get_exposes_the_request_id_to_the_allowed_origin(client_for):
    client = client_for(UserFactory(role=User.Role.ADMIN))
    response = client.get("/api/v1/students/", HTTP_ORIGIN=FRONT_END, HTTP_X_REQUEST_ID="fe-42")
    assert response.status_code == 200
    assert_shared_with_front_end(response)
    assert response["X-Request-ID"] == "fe-42"


def test_error_envelopes_are_readable_by_the_allowed_origin(api_client):
    unauthenticated = api_client.get("/api/v1/students/", HTTP_ORIGIN=FRONT_END)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["code"] == "not_authenticated"
    assert_shared_with_front_end(unauthenticated)
    # Answered by middleware before any view: the body-size refusal and the NUL refusal.
    too_large = api_client.post(
        "/api/v1/events",
        data=b"{}",
        content_type="application/json",
        HTTP_ORIGIN=FRONT_END,
        CONTENT_LENGTH=str(50 * 1024 * 1024),
    )
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "payload_too_large"
    assert_shared_with_front_end(too_large)
    nul = api_client.get("/api/v1/students/%00", HTTP_ORIGIN=FRONT_END)
    assert nul.status_code == 400
    assert nul.json()["error"]["code"] == "malformed_request"
    assert_shared_with_front_end(nul)


def test_a_preflight_is_neither_authenticated_nor_rate_limited(api_client, client_for, monkeypatch):
    held = time.time()  # one window of django-ratelimit's wall-clock minutes
    monkeypatch.setattr(ratelimit_core, "time", SimpleNamespace(time=lambda: held))
    client = client_for(UserFactory(role=User.Role.TEACHER))
    with override_settings(RATE_LIMIT_MASTERY="1/m"):
        assert client.post(CALCULATE, COMPONENTS, format="json").status_code == 200
        spent = client.post(CALCULATE, COMPONENTS, format="json", HTTP_ORIGIN=FRONT_END)
        assert spent.status_code == 429
        assert_shared_with_front_end(spent)
        assert "retry-after" in listed(spent, "Access-Control-Expose-Headers")
        # The same user's browser asks again: its preflight carries no token (browsers
        # never send one) and reaches no view, however spent the budget.
        for _ in range(3):
            again = preflight(api_client, CALCULATE)
            assert again.status_code == 200
            assert again["Access-Control-Allow-Origin"] == FRONT_END
        # Without a token, an OPTIONS that is not a preflight is an ordinary API call.
        plain = api_client.options(CALCULATE, HTTP_ORIGIN=FRONT_END)
        assert plain.status_code == 401
        assert plain.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("path", ["/health", "/metrics", "/admin/login/"])
def test_paths_outside_the_api_are_not_shared(api_client, path):
    answer = api_client.get(path, HTTP_ORIGIN=FRONT_END)
    assert answer.status_code == 200
    assert not answer.has_header("Access-Control-Allow-Origin")
    asked = preflight(api_client, path)
    assert not asked.has_header("Access-Control-Allow-Origin")
    assert not asked.has_header("Access-Control-Allow-Methods")


# --- the origins of each settings module (their own processes) ---------------------------

PRINT_ORIGINS = (
    "import json, django; django.setup(); from django.conf import settings;"
    " print(json.dumps(settings.CORS_ALLOWED_ORIGINS))"
)


def settings_env(module: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CORS_ALLOWED_ORIGINS"}
    env.update(
        DJANGO_SETTINGS_MODULE=f"mastery_project.settings.{module}",
        PYTHONPATH=str(ROOT),
        SECRET_KEY=secrets.token_urlsafe(64),
        JWT_SIGNING_KEY=secrets.token_urlsafe(48),
        ERASURE_HASH_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="mastery.example",
    )
    env.update(overrides)
    return env


def origins(module: str, **overrides: str) -> list[str]:
    result = run(["-c", PRINT_ORIGINS], settings_env(module, **overrides))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_allows_no_origin_unless_listed():
    assert origins("production") == []
    listed_origins = "https://app.school.example,https://teachers.school.example"
    assert origins("production", CORS_ALLOWED_ORIGINS=listed_origins) == listed_origins.split(",")


def test_development_allows_the_local_front_end_dev_servers():
    assert set(origins("local")) == {
        "http://localhost:3000",
        "http://127.0.0.1:3000",
        "http://localhost:5173",
        "http://127.0.0.1:5173",
    }


def test_check_deploy_is_clean_with_origins_and_refuses_a_malformed_one():
    command = ["manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    clean = run(command, settings_env("production", CORS_ALLOWED_ORIGINS=FRONT_END))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    # An origin is a scheme and a host: a bare host or one with a path would never match.
    malformed = run(command, settings_env("production", CORS_ALLOWED_ORIGINS="app.school.example"))
    assert malformed.returncode != 0
    assert "corsheaders.E013" in malformed.stdout + malformed.stderr
