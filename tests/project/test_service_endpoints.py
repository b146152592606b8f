import json
import socket
import threading
import time

import pytest
from django.conf import settings
from django.db import OperationalError
from django.test import override_settings

from mastery_project import access, ratelimit
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_index_names_the_service_and_links(client):
    body = client.get("/").json()
    assert body["name"] == "Mastery Engine"
    assert body["version"]
    assert body["links"]["docs"] == "/api/docs/"


def test_health_is_ok_without_dependencies(client):
    with override_settings(
        REDIS_URL="redis://127.0.0.1:1/0", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1"
    ):
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_lists_every_dependency_when_all_are_up(client):
    response = client.get("/ready")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"postgres", "redis", "kafka"}
    assert all(check["ok"] for check in body["checks"].values())


def test_ready_names_redis_when_redis_is_down(client):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["postgres"]["ok"]
    assert body["checks"]["kafka"]["ok"]


@pytest.fixture
def black_hole():
    """A TCP port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_ready_answers_within_three_seconds_when_dependencies_hang(client, black_hole):
    hang = f"127.0.0.1:{black_hole}"
    with override_settings(REDIS_URL=f"redis://{hang}/0", KAFKA_BOOTSTRAP_SERVERS=hang):
        started = time.monotonic()
        response = client.get("/ready")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["failed"] == ["kafka", "redis"]
    assert elapsed < 3.0


def test_metrics_exposes_prometheus_text(client):
    client.get("/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "django_http_requests_total_by_view_transport_method_total" in text


def test_openapi_schema_and_swagger_ui_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/auth/token" in json.loads(schema.content)["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn.jsdelivr" not in docs.content
    assert b"swagger-ui" in docs.content


def test_stopping_the_embedded_redis_makes_ready_name_it_while_health_stays_up(
    client, tmp_path, monkeypatch
):
    from mastery_project import devservices

    monkeypatch.setattr(devservices, "STATE_DIR", tmp_path)
    url, started = devservices.redis_start()
    assert started
    try:
        with override_settings(REDIS_URL=url):
            assert client.get("/ready").status_code == 200
            devservices.redis_stop()
            ready = client.get("/ready")
            assert client.get("/health").status_code == 200
    finally:
        devservices.redis_stop()
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["redis"]


def test_an_api_call_while_redis_is_down_is_answered_unmetered(client_for, monkeypatch):
    """The rate limit fails open (mastery_project.ratelimit): the call is served, and the
    process leaves Redis alone for a while."""
    monkeypatch.setattr(ratelimit, "breaker", ratelimit.Breaker())
    down = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    caller = client_for(UserFactory(role="admin"))
    with override_settings(CACHES=down):
        response = caller.post(
            "/api/v1/mastery/calculate",
            {"completion": 1, "quiz": 1, "quality": 1, "consistency": 1},
            format="json",
        )
    assert response.status_code == 200
    assert response.json()["mastery"] == 1.0
    assert ratelimit.breaker.open()


def test_a_backing_service_failing_under_a_call_is_503_in_the_envelope(client_for, monkeypatch):
    """What the fault tests (tests/process/test_faults.py) do for real with PostgreSQL
    stopped: a connection error under a view is a 503 with Retry-After, not a 500."""

    def lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(access, "visible_student", lost)
    caller = client_for(UserFactory(role="admin"))
    response = caller.post("/api/v1/mastery/query", {"student_id": "s-1"}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"
