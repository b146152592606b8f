"""Defects found by attacking the running stack at its HTTP edge (issue 9, defects 1, 2, 4):
tokens that name no user, and answers that left the envelope."""

import io

import jwt
import pytest
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.test import override_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from mastery_project.errors import api_exception_handler
from mastery_project.parsers import StrictJSONParser
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REFRESH = "/api/v1/auth/token/refresh"
CALCULATE = "/api/v1/mastery/calculate"
TOPICS = "/api/v1/topics/"
# user_id claims a correctly signed token may carry that name no possible user.
NOT_AN_ID = ["abc", {"id": 1}, [1], True, 1.5, "", "-1", "0", " 1", "1e3", "٣", "9" * 30, 2**63]


def assert_401_envelope(response) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_refresh_token_of_a_deleted_user_is_401_in_the_envelope(api_client):
    user = UserFactory(role="student")
    refresh = str(RefreshToken.for_user(user))
    user.delete()  # what GDPR erasure does to the student's login
    assert_401_envelope(api_client.post(REFRESH, {"refresh": refresh}, format="json"))


def test_an_access_token_of_a_deleted_user_is_401(api_client):
    user = UserFactory(role="admin")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    user.delete()
    assert_401_envelope(api_client.get(TOPICS))


@pytest.mark.parametrize("user_id", NOT_AN_ID, ids=repr)
def test_a_signed_access_token_whose_user_id_is_not_an_id_is_401(api_client, user_id):
    token = AccessToken()
    token["user_id"] = user_id
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_401_envelope(api_client.get(TOPICS))


@pytest.mark.parametrize("user_id", NOT_AN_ID, ids=repr)
def test_a_signed_refresh_token_whose_user_id_is_not_an_id_is_401(api_client, user_id):
    token = RefreshToken()
    token["user_id"] = user_id
    assert_401_envelope(api_client.post(REFRESH, {"refresh": str(token)}, format="json"))


def test_a_signed_refresh_token_naming_no_user_is_401_not_a_fresh_access_token(api_client):
    assert_401_envelope(api_client.post(REFRESH, {"refresh": str(RefreshToken())}, format="json"))


def test_a_refresh_token_of_a_live_user_still_refreshes(api_client):
    user = UserFactory(role="teacher")
    response = api_client.post(
        REFRESH, {"refresh": str(RefreshToken.for_user(user))}, format="json"
    )
    assert response.status_code == 200
    assert AccessToken(response.json()["access"])["user_id"] == str(user.pk)


@pytest.mark.parametrize(
    ("claim", "value"),
    [("exp", 1e30), ("exp", "soon"), ("jti", "x" * 300), ("jti", "a\x00b"), ("jti", 7)],
    ids=repr,
)
@pytest.mark.parametrize("kind", [AccessToken, RefreshToken], ids=lambda kind: kind.token_type)
def test_a_signed_token_with_a_claim_simplejwt_never_writes_is_401(api_client, kind, claim, value):
    token = kind.for_user(UserFactory(role="admin"))
    raw = jwt.encode(
        {**token.payload, claim: value}, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256"
    )
    if kind is RefreshToken:
        response = api_client.post(REFRESH, {"refresh": raw}, format="json")
    else:
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        response = api_client.get(TOPICS)
    assert_401_envelope(response)


@pytest.fixture
def admin_client(client_for) -> APIClient:
    return client_for(UserFactory(role="admin"))


def assert_envelope(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert b"Traceback" not in response.content
    assert b"SECRET_KEY" not in response.content


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize(
    "path", ["/api/v1/no-such-thing", "/api/nothing", "/api/v1/students/bad%20id/"]
)
def test_an_unmatched_api_path_is_404_in_the_envelope_in_development_too(admin_client, debug, path):
    with override_settings(DEBUG=debug):
        assert_envelope(admin_client.get(path), 404, "not_found")


def test_an_unmatched_page_outside_the_api_keeps_the_debug_page_in_development(client):
    with override_settings(DEBUG=True):
        response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=b0undary",
        "text/plain",
    ],
)
def test_a_body_over_the_upload_limit_is_413_in_the_envelope(admin_client, debug, content_type):
    with override_settings(DEBUG=debug, DATA_UPLOAD_MAX_MEMORY_SIZE=1024):
        response = admin_client.post(CALCULATE, data=b"x" * 1025, content_type=content_type)
    assert_envelope(response, 413, "payload_too_large")
    assert response.json()["error"]["details"] == {"max_bytes": 1024}


def test_a_body_at_the_upload_limit_is_read(admin_client):
    body = b'{"completion": 1, "quiz": 1, "quality": 1, "consistency": 1}'
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=len(body)):
        response = admin_client.post(CALCULATE, data=body, content_type="application/json")
    assert response.status_code == 200, response.content


def test_an_over_limit_body_is_refused_before_authentication(api_client):
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024):
        response = api_client.post(CALCULATE, data=b"x" * 2048, content_type="application/json")
    assert_envelope(response, 413, "payload_too_large")


def test_a_form_body_over_the_upload_limit_outside_the_api_is_413_not_400(client):
    """Django reads form bodies itself (the admin's login): too large is not malformed."""
    body = "username=u&password=" + "p" * 2048
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024):
        response = client.post(
            "/admin/login/", data=body, content_type="application/x-www-form-urlencoded"
        )
    assert_envelope(response, 413, "payload_too_large")


def test_the_json_parser_refuses_what_django_refuses_and_the_handler_answers_413():
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=8):
        with pytest.raises(RequestDataTooBig):
            StrictJSONParser().parse(io.BytesIO(b"[1, 2, 3, 4]"))
        response = api_exception_handler(RequestDataTooBig(), {})
    assert response.status_code == 413
    assert response.data["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_an_uncaught_error_on_an_api_path_is_500_in_the_envelope_in_development_too(client, debug):
    client.raise_request_exception = False
    with override_settings(DEBUG=debug, ROOT_URLCONF="tests.project.failing_urls"):
        assert_envelope(client.get("/api/v1/fail"), 500, "server_error")
