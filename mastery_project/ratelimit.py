"""Per-user rate limits shared by every process through the Redis cache (django-ratelimit)."""

import logging
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django_ratelimit.core import get_usage
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from mastery_project.errors import RateLimited

logger = logging.getLogger(__name__)


def _mastery_rate(group: str, request) -> str:
    return settings.RATE_LIMIT_MASTERY


def rate_limit_spend(request, group: str = "mastery", *, fail_open: bool = False) -> None:
    """Count one call against the caller's budget in `group`; RateLimited (429 with
    `Retry-After`) once it is spent. `/process` spends it as its intent's endpoint does.

    With `fail_open`, a Redis that cannot be reached lets the call through unmetered (for
    endpoints that must keep answering without their cache); otherwise it is a 503."""
    try:
        usage = get_usage(request, group=group, key="user", rate=_mastery_rate, increment=True)
    except (ConnectionInterrupted, RedisError, OSError) as exc:
        if not fail_open:
            raise
        logger.warning("rate limit not metered, Redis unavailable: %s", type(exc).__name__)
        return
    if usage is not None and usage["should_limit"]:
        raise RateLimited(retry_after=usage["time_left"])


def rate_limited(group: str = "mastery", *, fail_open: bool = False) -> Callable:
    """Count the call against the caller's budget; 429 with `Retry-After` once spent.

    One budget per `group`: the mastery, prediction and recommendation endpoints share it.
    """

    def decorator(view_method: Callable) -> Callable:
        @wraps(view_method)
        def wrapper(self, request, *args, **kwargs):
            rate_limit_spend(request, group, fail_open=fail_open)
            return view_method(self, request, *args, **kwargs)

        # Read by the OpenAPI schema (mastery_project.schema), which documents the 429,
        # and by `/process`, which spends the budget as the endpoint does.
        wrapper.rate_limit_group = group
        wrapper.rate_limit_fail_open = fail_open
        return wrapper

    return decorator
