import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"


def test_token_pair_is_issued_for_valid_credentials(api_client):
    UserFactory(username="teacher1", role="teacher")
    response = api_client.post(
        "/api/v1/auth/token", {"username": "teacher1", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    assert {"access", "refresh"} <= set(response.json())


def test_wrong_password_is_401_in_the_envelope(api_client):
    UserFactory(username="teacher1")
    response = api_client.post(
        "/api/v1/auth/token", {"username": "teacher1", "password": "nope"}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_malformed_json_is_400_in_the_envelope(api_client):
    response = api_client.post("/api/v1/auth/token", data=b"{bad", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_missing_fields_are_422_with_details(api_client):
    response = api_client.post("/api/v1/auth/token", {}, format="json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["details"]) == {"username", "password"}


def test_refresh_rotates_and_the_old_refresh_token_is_blacklisted(api_client):
    UserFactory(username="svc", role="service")
    pair = api_client.post(
        "/api/v1/auth/token", {"username": "svc", "password": PASSWORD}, format="json"
    ).json()
    first = api_client.post(
        "/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json"
    )
    assert first.status_code == 200
    assert first.json()["refresh"] != pair["refresh"]
    again = api_client.post(
        "/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json"
    )
    assert again.status_code == 401


def test_an_invalid_bearer_token_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    response = api_client.post("/api/v1/auth/token/refresh", {"refresh": "x"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"authentication_failed", "token_not_valid"}
