"""The envelope at the very edge: a real gunicorn, started as the Procfile starts it, with
the test settings (DEBUG off) and the development settings of `make run` (DEBUG on)."""

import http.client
import json

import pytest
from django.conf import settings

from tests.gunicorn import gunicorn

CREDENTIALS = b'{"username": "nobody", "password": "wrong-password"}'


def request(port: int, method: str, path: str, *, headers=None, body: bytes | None = None):
    """The answer's status, content type and body. Headers are sent as given: a
    Content-Length without a body makes the server answer from the headers alone."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


@pytest.fixture(params=["test", "local"], ids=["debug-off", "debug-on"])
def gunicorn_port(request, db, tmp_path):
    """gunicorn on a free port, on this test run's database (its tables are committed; the
    test's own rows are not, which these requests do not need)."""
    env = {
        "DJANGO_SETTINGS_MODULE": f"mastery_project.settings.{request.param}",
        "WEB_CONCURRENCY": "1",
    }
    with gunicorn(tmp_path, env, options=("--no-control-socket",)) as (_, port):
        yield port


def request_status(port: int, path: str) -> int:
    return request(port, "GET", path)[0]


def assert_envelope(answer, status: int, code: str) -> None:
    got_status, content_type, body = answer
    assert (got_status, content_type) == (status, "application/json"), body[:300]
    assert json.loads(body)["error"]["code"] == code


def test_every_refusal_at_the_edge_is_in_the_envelope(gunicorn_port):
    # gunicorn's own refusals, before Django runs.
    assert_envelope(
        request(gunicorn_port, "GET", "/api/v1/topics/?q=" + "x" * 5000), 414, "uri_too_long"
    )
    assert_envelope(
        request(gunicorn_port, "GET", "/api/v1/topics/", headers={"X-Big": "x" * 9000}),
        431,
        "headers_too_large",
    )
    # Django's, which DEBUG would render as debug pages.
    assert_envelope(request(gunicorn_port, "GET", "/api/v1/no-such-thing"), 404, "not_found")
    # Refused on its declared length, before a byte of it is read.
    over_limit = {
        "Content-Type": "application/json",
        "Content-Length": str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
    }
    assert_envelope(
        request(gunicorn_port, "POST", "/api/v1/mastery/calculate", headers=over_limit),
        413,
        "payload_too_large",
    )
    # A view that reads the test database still answers in the envelope.
    assert_envelope(
        request(
            gunicorn_port,
            "POST",
            "/api/v1/auth/token",
            headers={"Content-Type": "application/json", "Content-Length": str(len(CREDENTIALS))},
            body=CREDENTIALS,
        ),
        401,
        "authentication_failed",
    )


def test_a_request_line_within_the_limit_is_served(gunicorn_port):
    status, _, _ = request(gunicorn_port, "GET", "/health?q=" + "x" * 3000)
    assert status == 200
