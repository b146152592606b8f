"""Per-user rate limits shared by every process through Redis.

The windows are django-ratelimit's (fixed windows of the wall clock, each key's own offset,
its cache keys under the cache's prefix); counting is one Redis round trip: a script that
increments the window's counter and sets its expiry when it creates it (django-ratelimit's
own `get_usage` takes two, an `add` then an `incr`).
"""

import logging
import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django_ratelimit import ALL
from django_ratelimit import core as ratelimit_core
from django_redis.exceptions import ConnectionInterrupted
from redis.commands.core import Script
from redis.exceptions import RedisError

from mastery_project.errors import RateLimited

logger = logging.getLogger(__name__)

# KEYS[1]: the window's counter; ARGV[1]: its lifetime in seconds. Returns the new count.
_SPEND = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
_scripts: dict[int, Script] = {}


def _count(key: str, lifetime: int) -> int:
    """The counter after one more call, in one round trip (EVALSHA, EVAL the first time)."""
    client = cache.client.get_client(write=True)
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_SPEND)
    return int(script(keys=[key], args=[lifetime], client=client))


class Breaker:
    """After Redis failed, this process stops asking it for RATE_LIMIT_REDIS_RETRY_SECONDS:
    a Redis that drops packets would otherwise hold every request for its socket timeout
    (2 s), and log every one."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.until = 0.0

    def open(self) -> bool:
        return self.clock() < self.until

    def trip(self) -> None:
        self.until = self.clock() + settings.RATE_LIMIT_REDIS_RETRY_SECONDS


breaker = Breaker()


def rate_limit_spend(request, group: str = "mastery") -> None:
    """Count one call against the caller's budget in `group`; RateLimited (429 with
    `Retry-After`) once it is spent. `/process` spends it as its intent's endpoint does.

    Fail-open: a Redis that cannot be reached lets the call through unmetered, logged (and
    the process leaves Redis alone for a few seconds, `Breaker`). The
    budget is a per-user fairness limit on reads of data the caller may see, not a security
    control (authentication, visibility and the audit do not depend on Redis), so a Redis
    outage must not take the API's reads down with it."""
    if breaker.open():
        return
    rate = settings.RATE_LIMIT_MASTERY
    limit, period = ratelimit_core._split_rate(rate)
    user = str(request.user.pk)
    window = ratelimit_core._get_window(user, period)
    key = cache.make_key(ratelimit_core._make_cache_key(group, window, rate, user, ALL))
    try:
        count = _count(key, period + ratelimit_core.EXPIRATION_FUDGE)
    except (ConnectionInterrupted, RedisError, OSError) as exc:
        breaker.trip()
        logger.warning(
            "rate limit not metered for %s s, Redis unavailable: %s",
            settings.RATE_LIMIT_REDIS_RETRY_SECONDS,
            type(exc).__name__,
        )
        return
    if count > limit:
        raise RateLimited(retry_after=window - int(ratelimit_core.time.time()))


def rate_limited(group: str = "mastery") -> Callable:
    """Count the call against the caller's budget; 429 with `Retry-After` once spent.

    One budget per `group`: the mastery, prediction and recommendation endpoints share it.
    """

    def decorator(view_method: Callable) -> Callable:
        @wraps(view_method)
        def wrapper(self, request, *args, **kwargs):
            rate_limit_spend(request, group)
            return view_method(self, request, *args, **kwargs)

        # Read by the OpenAPI schema (mastery_project.schema), which documents the 429,
        # and by `/process`, which spends the budget as the endpoint does.
        wrapper.rate_limit_group = group
        return wrapper

    return decorator
