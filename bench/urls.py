"""Production's URLs plus the bare baseline view: wired here only, never in production."""

from django.urls import path

from bench.bare import bare_mastery
from mastery_project.urls import urlpatterns as production_urlpatterns

urlpatterns = [
    path("bench/bare-mastery", bare_mastery, name="bench-bare-mastery"),
    *production_urlpatterns,
]
