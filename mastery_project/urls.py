from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from mastery_project import health, metrics
from mastery_project.api import api_urlpatterns

admin.site.site_header = "Mastery Engine"
admin.site.site_title = "Mastery Engine"
admin.site.index_title = "Administration"

urlpatterns = [
    path("", health.index, name="index"),
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

handler400 = "mastery_project.errors.json_400"
handler403 = "mastery_project.errors.json_403"
handler404 = "mastery_project.errors.json_404"
handler500 = "mastery_project.errors.json_500"
