import io
import json
import logging
import logging.config

import pytest
from django.conf import settings
from django.test import override_settings

from mastery_project.correlation import correlation_id

pytestmark = pytest.mark.django_db


def test_a_sent_request_id_is_echoed(client):
    response = client.get("/health", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"


def test_a_correlation_id_header_is_accepted_too(client):
    response = client.get("/health", HTTP_X_CORRELATION_ID="corr.7")
    assert response["X-Request-ID"] == "corr.7"


def test_an_id_is_generated_when_none_is_sent(client):
    first = client.get("/health")["X-Request-ID"]
    second = client.get("/health")["X-Request-ID"]
    assert len(first) == 32
    assert first != second


def test_an_unsafe_request_id_is_replaced(client):
    response = client.get("/health", HTTP_X_REQUEST_ID="bad id\r\nInjected: yes")
    assert response["X-Request-ID"] != "bad id\r\nInjected: yes"
    assert len(response["X-Request-ID"]) == 32


@pytest.fixture
def json_log_stream():
    """The project's JSON handler config, writing into a buffer."""
    stream = io.StringIO()
    config = json.loads(json.dumps(settings.LOGGING))
    config["handlers"]["default"]["formatter"] = "json"
    logging.config.dictConfig(config)
    logging.getLogger().handlers[0].setStream(stream)
    yield stream
    logging.config.dictConfig(settings.LOGGING)


def test_every_log_line_of_a_request_is_json_with_its_correlation_id(client, json_log_stream):
    with override_settings(DEBUG=False):
        client.get("/no-such-page", HTTP_X_REQUEST_ID="req-42")
    lines = [json.loads(line) for line in json_log_stream.getvalue().splitlines() if line]
    assert lines, "the 404 is logged"
    assert all(line["correlation_id"] == "req-42" for line in lines)
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    assert correlation_id.get() == "-"
