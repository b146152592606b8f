"""Deploy hardening: production settings pass `check --deploy` and refuse weak or missing
secrets; security headers on every response; short-lived JWTs with rotation; optional
RS256 tokens of an external issuer."""

import json
import os
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.test import RequestFactory, override_settings

from mastery.models import User
from mastery_project.client_address import request_client_ip
from tests.factories import PASSWORD, UserFactory

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("SECRET_KEY", "JWT_SIGNING_KEY", "ERASURE_HASH_KEY", "ALLOWED_HOSTS")
HEADERS = (
    "X-Content-Type-Options",
    "Referrer-Policy",
    "X-Frame-Options",
    "Content-Security-Policy",
    "Permissions-Policy",
)


def production_env(**overrides: str | None) -> dict[str, str]:
    """The environment of a production process: fresh strong secrets, the test servers."""
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and k != "DEBUG"}
    env.update(
        DJANGO_SETTINGS_MODULE="mastery_project.settings.production",
        SECRET_KEY=secrets.token_urlsafe(64),
        JWT_SIGNING_KEY=secrets.token_urlsafe(48),
        ERASURE_HASH_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="mastery.example",
        PYTHONPATH=str(ROOT),
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- production settings -------------------------------------------------------------------


def test_check_deploy_passes_in_production_mode():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env())
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"SECRET_KEY": "too-short-0123456789"}, "SECRET_KEY"),
        ({"SECRET_KEY": "a" * 60}, "SECRET_KEY"),
        ({"JWT_SIGNING_KEY": "SAME"}, "JWT_SIGNING_KEY"),
        ({"JWT_SIGNING_KEY": None}, "JWT_SIGNING_KEY"),
        ({"ERASURE_HASH_KEY": None}, "ERASURE_HASH_KEY"),
        ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
    ],
    ids=[
        "no-secret",
        "short-secret",
        "one-char-secret",
        "jwt-key-is-secret",
        "no-jwt-key",
        "no-erasure-key",
        "no-hosts",
        "empty-hosts",
    ],
)
def test_production_refuses_to_start_without_strong_settings(overrides, named):
    env = production_env(**overrides)
    if overrides.get("JWT_SIGNING_KEY") == "SAME":
        env["JWT_SIGNING_KEY"] = env["SECRET_KEY"]
    result = run(["manage.py", "check"], env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr


PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="mastery.example")
out = {}
for name, path, extra in [
    ("health", "/health", {}),
    ("api-401", "/api/v1/students/", {"HTTP_X_FORWARDED_PROTO": "https"}),
    ("api-http", "/api/v1/students/", {}),
]:
    response = client.get(path, **extra)
    out[name] = {"status": response.status_code, "headers": dict(response.headers)}
print(json.dumps(out))
"""


def test_production_responses_carry_hsts_and_redirect_plain_http():
    result = run(["-c", PROBE], production_env())
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["health"]["status"] == 200  # probes reach it over plain HTTP
    assert seen["api-http"]["status"] == 301
    assert seen["api-http"]["headers"]["Location"].startswith("https://mastery.example/")
    api = seen["api-401"]
    assert api["status"] == 401
    assert "max-age=31536000" in api["headers"]["Strict-Transport-Security"]
    for header in HEADERS:
        assert header in api["headers"], header
    assert api["headers"]["X-Frame-Options"] == "DENY"


# --- headers under the running settings ----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "status"), [("/health", 200), ("/api/v1/students/", 401), ("/api/docs/", 200)]
)
def test_every_response_carries_the_security_headers(api_client, path, status):
    response = api_client.get(path)
    assert response.status_code == status
    for header in HEADERS:
        assert response.has_header(header), header
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert "camera=()" in response["Permissions-Policy"]


# --- our own tokens ------------------------------------------------------------------------


@pytest.mark.django_db
def test_access_tokens_live_at_most_15_minutes_and_are_not_signed_with_secret_key(api_client):
    assert settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"] <= timedelta(minutes=15)
    assert settings.SIMPLE_JWT["SIGNING_KEY"] != settings.SECRET_KEY
    UserFactory(username="t-life", role=User.Role.TEACHER)
    pair = api_client.post(
        "/api/v1/auth/token", {"username": "t-life", "password": PASSWORD}, format="json"
    ).json()
    claims = jwt.decode(pair["access"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] <= 15 * 60
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(pair["access"], settings.SECRET_KEY, algorithms=["HS256"])


@pytest.mark.django_db
def test_refresh_rotates_and_blacklists_the_old_refresh_token(api_client):
    UserFactory(username="t-rot", role=User.Role.TEACHER)
    pair = api_client.post(
        "/api/v1/auth/token", {"username": "t-rot", "password": PASSWORD}, format="json"
    ).json()
    refresh = "/api/v1/auth/token/refresh"
    rotated = api_client.post(refresh, {"refresh": pair["refresh"]}, format="json")
    assert rotated.status_code == 200
    assert rotated.json()["refresh"] != pair["refresh"]
    replay = api_client.post(refresh, {"refresh": pair["refresh"]}, format="json")
    assert replay.status_code == 401
    fresh = api_client.post(refresh, {"refresh": rotated.json()["refresh"]}, format="json")
    assert fresh.status_code == 200


# --- an external issuer (RS256) ------------------------------------------------------------

ISSUER = "https://sso.example"
AUDIENCE = "mastery"


def key_pair() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


@pytest.fixture(scope="module")
def issuer_keys():
    return key_pair(), key_pair()


@pytest.fixture
def external_issuer(db, issuer_keys):
    (private, public), (other_private, _) = issuer_keys
    UserFactory(username="sso-teacher", role=User.Role.TEACHER)
    UserFactory(username="sso-gone", role=User.Role.TEACHER, is_active=False)
    with override_settings(
        JWT_EXTERNAL_PUBLIC_KEY=public,
        JWT_EXTERNAL_ISSUER=ISSUER,
        JWT_EXTERNAL_AUDIENCE=AUDIENCE,
    ):
        yield private, other_private, public


def external_token(private: bytes, algorithm: str = "RS256", **claims) -> str:
    now = int(time.time())
    body = {"sub": "sso-teacher", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, private, algorithm)


def get_students(api_client, token: str):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api_client.get("/api/v1/students/")


def test_a_token_of_the_external_issuer_authenticates_its_user(external_issuer, api_client):
    private, *_ = external_issuer
    response = get_students(api_client, external_token(private))
    assert response.status_code == 200, response.content


def test_own_tokens_still_work_beside_the_external_issuer(
    external_issuer, client_for, django_user_model
):
    user = django_user_model.objects.get(username="sso-teacher")
    assert client_for(user).get("/api/v1/students/").status_code == 200


@pytest.mark.parametrize(
    "case",
    [
        "wrong-audience",
        "wrong-issuer",
        "expired",
        "another-key",
        "unknown-user",
        "inactive-user",
        "no-subject",
        "no-expiry",
        "hs256-with-public-key",
    ],
)
def test_bad_external_tokens_are_401(external_issuer, api_client, case):
    private, other_private, public = external_issuer
    token = {
        "wrong-audience": lambda: external_token(private, aud="another-app"),
        "wrong-issuer": lambda: external_token(private, iss="https://evil.example"),
        "expired": lambda: external_token(private, exp=int(time.time()) - 120),
        "another-key": lambda: external_token(other_private),
        "unknown-user": lambda: external_token(private, sub="nobody-here"),
        "inactive-user": lambda: external_token(private, sub="sso-gone"),
        "no-subject": lambda: external_token(private, sub=None),
        "no-expiry": lambda: external_token(private, exp=None),
        "hs256-with-public-key": lambda: forged_hs256(public),
    }[case]()
    response = get_students(api_client, token)
    assert response.status_code == 401, (case, response.content)
    assert response.json()["error"]["code"] in {"authentication_failed", "not_authenticated"}


def forged_hs256(public_pem: str) -> str:
    """The algorithm-confusion attack: HMAC-sign with the public key as the secret."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": "sso-teacher", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(public_pem.encode(), header + b"." + body, hashlib.sha256).digest()
    return (header + b"." + body + b"." + b64(signature)).decode()


# --- client address behind proxies --------------------------------------------------------


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.2"),
        (1, "198.51.100.7, 203.0.113.9", "203.0.113.9"),
        (2, "198.51.100.7, 203.0.113.9", "198.51.100.7"),
        (1, "not-an-ip", None),
    ],
)
def test_the_client_address_trusts_only_the_configured_proxies(hops, forwarded, expected):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    with override_settings(TRUSTED_PROXY_COUNT=hops):
        assert request_client_ip(request) == expected
