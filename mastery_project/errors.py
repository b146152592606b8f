"""The one error envelope: `{"error": {"code", "message", "details"}}`.

Services raise `ApplicationError` subclasses; `api_exception_handler` renders them, DRF's
own exceptions, Django's 404/permission errors and rate limits alike.
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


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


class ServiceUnavailable(ApplicationError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "service_unavailable"


def envelope(code: str, message: str, details: Any = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


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
UNAVAILABLE = (OperationalError, InterfaceError, ConnectionInterrupted, RedisError)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, UNAVAILABLE):
        logger.warning("dependency unavailable: %s", type(exc).__name__)
        exc = ServiceUnavailable(
            "A backing service is unavailable; retry shortly.", headers={"Retry-After": "5"}
        )
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
        response.data = envelope("validation_error", "The request is invalid.", exc.detail)
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


def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(envelope("not_found", "Not found."), status=404)


def json_500(request: HttpRequest) -> JsonResponse:
    return JsonResponse(envelope("server_error", "Internal server error."), status=500)


def json_400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(envelope("malformed_request", "Bad request."), status=400)


def json_403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(envelope("forbidden", "Forbidden."), status=403)
