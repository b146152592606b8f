"""Per-user rate limits shared by every process through the Redis cache (django-ratelimit)."""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django_ratelimit.core import get_usage

from mastery_project.errors import RateLimited


def _mastery_rate(group: str, request) -> str:
    return settings.RATE_LIMIT_MASTERY


def rate_limited(group: str = "mastery") -> Callable:
    """Count the call against the caller's budget; 429 with `Retry-After` once spent.

    One budget per `group`: the mastery, prediction and recommendation endpoints share it.
    """

    def decorator(view_method: Callable) -> Callable:
        @wraps(view_method)
        def wrapper(self, request, *args, **kwargs):
            usage = get_usage(request, group=group, key="user", rate=_mastery_rate, increment=True)
            if usage is not None and usage["should_limit"]:
                raise RateLimited(retry_after=usage["time_left"])
            return view_method(self, request, *args, **kwargs)

        # Read by the OpenAPI schema (mastery_project.schema), which documents the 429.
        wrapper.rate_limit_group = group
        return wrapper

    return decorator
