"""The rate limit fails open when Redis cannot be reached, and then leaves Redis alone for
RATE_LIMIT_REDIS_RETRY_SECONDS in this process (a Redis that drops packets would hold each
request for the socket timeout); it asks again once that has passed."""

import time
from types import SimpleNamespace

import pytest
from django.conf import settings
from django_ratelimit import core as ratelimit_core

from mastery_project import ratelimit


@pytest.fixture
def redis_away(monkeypatch):
    """Redis calls that fail, counted; the breaker closed, on a clock the test moves."""
    calls = []

    def failing(key, lifetime):
        calls.append(key)
        raise ConnectionError("Redis is away")

    now = [1000.0]
    monkeypatch.setattr(ratelimit, "_count", failing)
    monkeypatch.setattr(ratelimit, "breaker", ratelimit.Breaker(clock=lambda: now[0]))
    return calls, now


def caller(pk: int = 7):
    return SimpleNamespace(user=SimpleNamespace(pk=pk))


def test_a_failure_lets_the_call_through_and_spares_redis_for_a_while(redis_away, caplog):
    calls, now = redis_away
    with caplog.at_level("WARNING", logger="mastery_project.ratelimit"):
        ratelimit.rate_limit_spend(caller())
        for _ in range(5):
            ratelimit.rate_limit_spend(caller())
    assert len(calls) == 1
    assert len([r for r in caplog.records if "not metered" in r.getMessage()]) == 1
    now[0] += settings.RATE_LIMIT_REDIS_RETRY_SECONDS - 0.1
    ratelimit.rate_limit_spend(caller())
    assert len(calls) == 1
    now[0] += 0.2
    ratelimit.rate_limit_spend(caller())
    assert len(calls) == 2


def test_with_redis_back_calls_are_metered_again(monkeypatch):
    held = time.time()  # django-ratelimit's windows, held still: both calls share one
    monkeypatch.setattr(ratelimit_core, "time", SimpleNamespace(time=lambda: held))
    now = [1000.0]
    monkeypatch.setattr(ratelimit, "breaker", ratelimit.Breaker(clock=lambda: now[0]))
    ratelimit.breaker.trip()
    now[0] += settings.RATE_LIMIT_REDIS_RETRY_SECONDS + 1
    monkeypatch.setattr(settings, "RATE_LIMIT_MASTERY", "1/h")
    ratelimit.rate_limit_spend(caller(pk=424242))
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.rate_limit_spend(caller(pk=424242))
