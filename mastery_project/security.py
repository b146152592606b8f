"""Security headers Django's SecurityMiddleware does not set: a Content-Security-Policy and
a Permissions-Policy on every response. JSON needs nothing loaded at all; the admin and
the API docs load only their own scripts and styles (inline ones included)."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

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
        response = self.get_response(request)
        is_page = response.get("Content-Type", "").startswith("text/html")
        response.setdefault("Content-Security-Policy", PAGE_POLICY if is_page else JSON_POLICY)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
