"""The per-user budget is one budget across processes: two gunicorns (each one worker, as
two web pods would be) on the same PostgreSQL and Redis count the same user's calls
together, and the user cache and token cache of each process do not change that."""

import json
import time
import urllib.error
import urllib.request

import pytest
from django_ratelimit import core as ratelimit_core
from rest_framework_simplejwt.tokens import RefreshToken

from mastery.models import User
from tests.factories import UserFactory
from tests.gunicorn import gunicorn

RATE = "3/h"  # an hour's window: the test's calls fall in one window (see below)
COMPONENTS = {"completion": 1, "quiz": 0.5, "quality": 0.5, "consistency": 0.2}


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
    env = {
        "DJANGO_SETTINGS_MODULE": "mastery_project.settings.test",
        "WEB_CONCURRENCY": "1",
        "RATE_LIMIT_MASTERY": RATE,
    }
    options = ("--no-control-socket",)
    with (
        gunicorn(tmp_path, env, options=options) as (_, first),
        gunicorn(tmp_path, env, options=options) as (_, second),
    ):
        yield first, second


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
