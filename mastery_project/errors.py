"""The one error envelope: `{"error": {"code", "message", "details"}}`.

Services raise `ApplicationError` subclasses; `api_exception_handler` renders them, DRF's
own exceptions, Django's 404/permission errors and rate limits alike. The handlers and
`ApiEnvelopeMiddleware` below cover what Django answers without a view.
"""

import logging
import sys
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler

from mastery_project.envelope import envelope, status_envelope

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
# Django's refusals of a body over DATA_UPLOAD_MAX_MEMORY_SIZE (or over its field and file
# counts): a SuspiciousOperation, which Django would answer 400.
TOO_LARGE = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)


class ApplicationError(Exception):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}
        self.headers = headers or {}


class ValidationFailed(ApplicationError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "validation_error"


class NotFound(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Conflict(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class RateLimited(ApplicationError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "rate_limited"

    def __init__(self, retry_after: int):
        retry_after = max(1, int(retry_after))
        super().__init__(
            "Too many requests; retry later.",
            details={"retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
        )


class PayloadTooLarge(ApplicationError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"


class ServiceUnavailable(ApplicationError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "service_unavailable"


def body_too_large() -> PayloadTooLarge:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return PayloadTooLarge(f"The body is larger than {limit} bytes.", details={"max_bytes": limit})


_DRF_CODES = {
    exceptions.ParseError: ("malformed_request", status.HTTP_400_BAD_REQUEST),
    exceptions.NotAuthenticated: ("not_authenticated", status.HTTP_401_UNAUTHORIZED),
    exceptions.AuthenticationFailed: ("authentication_failed", status.HTTP_401_UNAUTHORIZED),
    exceptions.PermissionDenied: ("forbidden", status.HTTP_403_FORBIDDEN),
    exceptions.NotFound: ("not_found", status.HTTP_404_NOT_FOUND),
    exceptions.MethodNotAllowed: ("method_not_allowed", status.HTTP_405_METHOD_NOT_ALLOWED),
    exceptions.NotAcceptable: ("not_acceptable", status.HTTP_406_NOT_ACCEPTABLE),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", 415),
}


# A dependency that is down or restarting: the client may retry, nothing was applied.
# psycopg's own classes too: code that works on the psycopg cursor itself (binary COPY,
# `mastery_project.pgcopy`) gets its errors unwrapped by Django.
UNAVAILABLE = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    ConnectionInterrupted,
    RedisError,
)
RETRY_AFTER_SECONDS = 5  # a PostgreSQL restart or a Redis failover takes seconds


def service_unavailable(exc: Exception) -> ServiceUnavailable:
    """The 503 for a dependency that failed under the request, with `Retry-After` as a
    header and in `details`, as a 429 has it."""
    logger.warning("dependency unavailable: %s", type(exc).__name__)
    return ServiceUnavailable(
        "A backing service is unavailable; retry shortly.",
        details={"retry_after": RETRY_AFTER_SECONDS},
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _gone_user(exc: Exception, context: dict) -> bool:
    """Whether a failed write was refused because the caller's own user no longer exists:
    deleted by another process while this one still held it (the user cache's window,
    `mastery_project.authentication`), its rows' foreign keys to it fail."""
    if not isinstance(exc, IntegrityError):
        return False
    user = getattr(context.get("request"), "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    from mastery_project.authentication import user_cache

    if type(user)._base_manager.filter(pk=user.pk).exists():
        return False
    user_cache.forget(user.pk)
    return True


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if _gone_user(exc, context):
        exc = exceptions.AuthenticationFailed("User not found.", code="user_not_found")
    if isinstance(exc, UNAVAILABLE):
        exc = service_unavailable(exc)
    elif isinstance(exc, TOO_LARGE):
        exc = body_too_large()
    if isinstance(exc, ApplicationError):
        return Response(
            envelope(exc.code, exc.message, exc.details),
            status=exc.status_code,
            headers=exc.headers,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        # `details` is always an object: a bare list of messages is a non-field error.
        detail = exc.detail
        if isinstance(detail, list):
            detail = {api_settings.NON_FIELD_ERRORS_KEY: detail}
        response.data = envelope("validation_error", "The request is invalid.", detail)
        response.status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
        return response
    code, status_code = next(
        ((c, s) for cls, (c, s) in _DRF_CODES.items() if isinstance(exc, cls)),
        ("error", response.status_code),
    )
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    message = str(detail) if not isinstance(detail, dict | list) else "Request failed."
    response.data = envelope(code, message)
    response.status_code = status_code
    return response


def _too_large_response() -> JsonResponse:
    error = body_too_large()
    return JsonResponse(envelope(error.code, error.message, error.details), status=413)


def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(status_envelope(404), status=404)


def json_500(request: HttpRequest) -> JsonResponse:
    """Django's answer to an uncaught error. One raised because a dependency went away
    outside a DRF view (an admin page, a middleware's session or login query) is the 503
    an API view gives, with `Retry-After`: the client may retry, it is no server error. So
    is a `ServiceUnavailable` raised there (the read-audit buffer full, say)."""
    raised = sys.exc_info()[1]
    if isinstance(raised, (*UNAVAILABLE, ServiceUnavailable)):
        error = raised if isinstance(raised, ServiceUnavailable) else service_unavailable(raised)
        response = JsonResponse(envelope(error.code, error.message, error.details), status=503)
        for name, value in error.headers.items():
            response[name] = value
        return response
    return JsonResponse(status_envelope(500), status=500)


def json_400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, TOO_LARGE):
        return _too_large_response()
    return JsonResponse(status_envelope(400), status=400)


def json_403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(status_envelope(403), status=403)


def _declared_body_too_large(request: HttpRequest) -> bool:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return limit is not None and declared > limit


class ApiEnvelopeMiddleware:
    """Every answer under /api/ is the envelope, in development too.

    A body declared larger than DATA_UPLOAD_MAX_MEMORY_SIZE is refused 413 up front, whatever
    its media type and before authentication: no view would read it.

    Django answers some requests without a DRF view: an unmatched URL, an uncaught error.
    With DEBUG off the handlers above render those in the envelope; with DEBUG on Django
    renders its debug pages instead, with the traceback and the settings. Under /api/ such
    a page becomes the envelope of its status (Django has already logged the error); the
    admin and other pages keep their debug pages. DRF's own responses are left alone: they
    already hold the envelope, in the format the client negotiated.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        if _declared_body_too_large(request):
            return _too_large_response()
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and not isinstance(response, Response)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return JsonResponse(status_envelope(response.status_code), status=response.status_code)
        return response
