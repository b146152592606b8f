"""The `/api/v1/` router: every app's viewsets and the token endpoints."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from analytics.api.batch import BatchViewSet
from analytics.api.history import CohortAnalyticsViewSet, HistoryViewSet
from analytics.api.predictions import PredictionViewSet
from analytics.api.recommendations import RecommendationViewSet
from compliance.api.views import ComplianceStudentViewSet
from ingest.api.views import EventViewSet
from mastery.api.views import CohortViewSet, MasteryViewSet, StudentViewSet, TopicViewSet
from mastery_project.process import ProcessView

router = SimpleRouter()
# The spec's paths have no trailing slash (`/api/v1/mastery/query`); accept both forms.
router.trailing_slash = "/?"
router.register("events", EventViewSet, basename="events")
router.register("mastery", MasteryViewSet, basename="mastery")
router.register("students", StudentViewSet, basename="students")
router.register("topics", TopicViewSet, basename="topics")
router.register("cohorts", CohortViewSet, basename="cohorts")
router.register("predictions", PredictionViewSet, basename="predictions")
router.register("analytics/history", HistoryViewSet, basename="analytics-history")
router.register("analytics/cohorts", CohortAnalyticsViewSet, basename="analytics-cohorts")
router.register("recommendations", RecommendationViewSet, basename="recommendations")
router.register("batch", BatchViewSet, basename="batch")
router.register("compliance/student", ComplianceStudentViewSet, basename="compliance-student")

api_urlpatterns = [
    path("auth/token", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("auth/token/refresh", TokenRefreshView.as_view(), name="token_refresh"),
    re_path(r"^process/?$", ProcessView.as_view(), name="process"),
    *router.urls,
]
