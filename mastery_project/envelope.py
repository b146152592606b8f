"""The error envelope's shape, `{"error": {"code", "message", "details"}}`, free of Django so
that gunicorn's worker can answer in it for requests Django never sees."""

from http import HTTPStatus
from typing import Any

# The code and message of an error that has nothing more to say than its status: a page
# Django or gunicorn would otherwise render as HTML.
STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("malformed_request", "Bad request."),
    403: ("forbidden", "Forbidden."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    413: ("payload_too_large", "The request body is too large."),
    414: ("uri_too_long", "The request line is too long."),
    417: ("expectation_failed", "The Expect header cannot be met."),
    431: ("headers_too_large", "The request headers are too large."),
    500: ("server_error", "Internal server error."),
    501: ("not_implemented", "Not implemented."),
}


def envelope(code: str, message: str, details: Any = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def status_envelope(status: int) -> dict:
    """The envelope for a bare status; an unlisted one is named by its HTTP reason phrase."""
    if status in STATUS_ERRORS:
        return envelope(*STATUS_ERRORS[status])
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return envelope("client_error" if status < 500 else "server_error", f"{phrase}.")
