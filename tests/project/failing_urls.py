"""The project's URLs plus an API path whose view fails: an uncaught error, as a bug would be."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from mastery_project.urls import handler400, handler403, handler404, handler500, urlpatterns


def fail(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")


urlpatterns = [path("api/v1/fail", fail), *urlpatterns]
__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
