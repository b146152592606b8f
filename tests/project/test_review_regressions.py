import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_health_and_ready_answer_head_requests(client):
    assert client.head("/health").status_code == 200
    assert client.head("/").status_code == 200


def test_a_request_id_with_a_trailing_newline_is_replaced(client):
    response = client.get("/health", HTTP_X_REQUEST_ID="abc\n")
    assert response["X-Request-ID"] != "abc\n"
    assert len(response["X-Request-ID"]) == 32


def test_bad_mastery_weights_stop_the_process_at_start_up():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mastery_project.settings.test",
        "MASTERY_WEIGHTS": '{"completion": 0.5, "quiz": 0.3, "quality": 0.2, "consistency": 0.1}',
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "MASTERY_WEIGHTS" in result.stderr
    assert "must sum to 1" in result.stderr
