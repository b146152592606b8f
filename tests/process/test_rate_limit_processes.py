"""The per-user budget is one budget across processes: two gunicorns (each one worker, as
two web pods would be) on the same PostgreSQL and Redis count the same user's calls
together, and the user cache and token cache of each process do not change that."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django_ratelimit import core as ratelimit_core
from rest_framework_simplejwt.tokens import RefreshToken

from mastery.models import User
from tests.factories import UserFactory
from tests.project.test_edge_gunicorn import free_port, request_status

ROOT = Path(__file__).resolve().parents[2]
RATE = "3/h"  # an hour's window: the test's calls fall in one window (see below)
COMPONENTS = {"completion": 1, "quiz": 0.5, "quality": 0.5, "consistency": 0.2}


def start(port: int, tmp_path: Path) -> subprocess.Popen:
    database_url = urlunsplit(
        urlsplit(os.environ["DATABASE_URL"])._replace(
            path=f"/{settings.DATABASES['default']['NAME']}"
        )
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mastery_project.settings.test",
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "RATE_LIMIT_MASTERY": RATE,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"prometheus-{port}"),
    }
    log = open(tmp_path / f"gunicorn-{port}.log", "w+b")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "mastery_project.wsgi", "--config", "gunicorn.conf.py",
         "--no-control-socket"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait_served(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if request_status(port, "/health") == 200:
                return
        except OSError:
            pass
        assert proc.poll() is None, f"gunicorn on {port} exited"
        assert time.monotonic() < deadline, "gunicorn did not serve /health within 60 s"
        time.sleep(0.2)


def calculate(port: int, access: str) -> int:
    call = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/mastery/calculate",
        data=json.dumps(COMPONENTS).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {access}"},
    )
    try:
        with urllib.request.urlopen(call, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


@pytest.fixture
def two_servers(transactional_db, tmp_path):
    ports = [free_port(), free_port()]
    procs = [start(port, tmp_path) for port in ports]
    try:
        for port, proc in zip(ports, procs, strict=True):
            wait_served(port, proc)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_one_users_calls_on_two_servers_spend_one_budget(two_servers):
    first, second = two_servers
    user = UserFactory(role=User.Role.SERVICE)
    other = UserFactory(role=User.Role.SERVICE)
    access = str(RefreshToken.for_user(user).access_token)
    # The window is django-ratelimit's, a fixed hour with the key's own offset: a test that
    # started in its last seconds waits for the next one, so that its calls share one.
    limit, period = ratelimit_core._split_rate(RATE)
    left = ratelimit_core._get_window(str(user.pk), period) - time.time()
    if left < 30:
        time.sleep(left + 1)
    spent = [calculate(port, access) for port in (first, second, first)]
    assert spent == [200] * limit
    assert calculate(second, access) == 429  # the other process saw the first three
    assert calculate(first, access) == 429
    assert calculate(second, str(RefreshToken.for_user(other).access_token)) == 200
