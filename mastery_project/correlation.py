"""Correlation ids: one per request, in the response header and in every log line."""

import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
_INCOMING = ("HTTP_X_REQUEST_ID", "HTTP_X_CORRELATION_ID")
# A caller's id is echoed into logs and headers: accept only a safe, bounded token.
_VALID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="-")


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def accept_or_new(candidate: str | None) -> str:
    """The caller's id when it is a safe token, else a fresh one."""
    if candidate and _VALID.fullmatch(candidate):
        return candidate
    return new_correlation_id()


class CorrelationIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = next((request.META[k] for k in _INCOMING if request.META.get(k)), None)
        cid = accept_or_new(incoming)
        # Left set until `request_finished`: Django logs 4xx/5xx after the middleware returns.
        correlation_id.set(cid)
        request.correlation_id = cid
        response = self.get_response(request)
        response[HEADER] = cid
        return response


@receiver(request_finished)
def _clear_correlation_id(**kwargs) -> None:
    correlation_id.set("-")


class CorrelationIdFilter(logging.Filter):
    """Adds `correlation_id` to every record (a dash outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "correlation_id"):
            record.correlation_id = correlation_id.get()
        return True
