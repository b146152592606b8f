"""Security headers Django's SecurityMiddleware does not set: a Content-Security-Policy and
a Permissions-Policy on every response. JSON needs nothing loaded at all; the admin and
the API docs load only their own scripts and styles (inline ones included). Also refuses
a NUL character in the path or query string up front (400), since no view can store it."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from mastery_project.errors import envelope

JSON_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            # PostgreSQL text cannot hold NUL: refuse it here, for every view and filter.
            response = JsonResponse(
                envelope("malformed_request", "NUL characters are not allowed."), status=400
            )
        else:
            response = self.get_response(request)
        is_page = response.get("Content-Type", "").startswith("text/html")
        response.setdefault("Content-Security-Policy", PAGE_POLICY if is_page else JSON_POLICY)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


def _has_nul(request: HttpRequest) -> bool:
    return "\x00" in request.path or any(
        "\x00" in key or any("\x00" in value for value in values)
        for key, values in request.GET.lists()
    )
