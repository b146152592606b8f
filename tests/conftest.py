import time
from datetime import datetime, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from mastery_project import ratelimit
from mastery_project.authentication import token_cache, user_cache


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters and the rate limit's breaker, cached predictions, verified tokens
    and the users they named must not leak between tests."""
    cache.delete_pattern("*")
    token_cache.clear()
    user_cache.clear()
    ratelimit.breaker.until = 0.0  # a Redis failure in one test does not unmeter the next


@pytest.fixture
def pinned_clock(monkeypatch) -> datetime:
    """For code under test that reads the clock itself (admin pages take no `now=`):
    `django.utils.timezone.now` starts at noon UTC yesterday and runs at the real rate.

    A test then sees the same hour on every run, stays hours away from a midnight (no
    day boundary between two readings), and its successive instants still differ. Noon
    yesterday is never ahead of the real clock that PostgreSQL and the token library
    keep. Returns the starting instant.
    """
    start = (timezone.now() - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    began = time.monotonic()
    monkeypatch.setattr(
        timezone, "now", lambda: start + timedelta(seconds=time.monotonic() - began)
    )
    return start


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for():
    """`client_for(user)` gives an APIClient that sends the user's bearer token."""

    def make(user) -> APIClient:
        client = APIClient()
        token = RefreshToken.for_user(user).access_token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make
