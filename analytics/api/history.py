"""History and cohort analytics endpoints (SPEC §3.3).

`history_answer` and `cohorts_compare_answer` hold each endpoint's whole path (validation,
visibility, audit, computation) so that `/process` runs exactly the same for its
`analytics_query` intent; the viewsets only hand them the request.
"""

from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.domain.statistics import (
    REASONS,
    Interval,
    compare_pairs,
    comparison_sentence,
)
from analytics.selectors.cohorts import CohortFigures, cohort_figures, cohorts_with_sizes
from analytics.selectors.history import PERIODS, History, student_history
from mastery.domain import ids
from mastery.domain.formula import COMPONENTS
from mastery.models import COHORT_ID_VALIDATOR, Cohort, Topic, User
from mastery.selectors import cohorts_visible_to
from mastery_project.access import IsTeacherOrAdmin, student_read, students_read_audit
from mastery_project.errors import NotFound, ValidationFailed
from mastery_project.serializers import (
    StrictCharField,
    StrictSerializer,
    student_id_field,
    topic_field,
)

MAX_HISTORY_DAYS = 366
DEFAULT_HISTORY_DAYS = 30
MIN_COHORTS, MAX_COHORTS = 2, 10


# --- input -------------------------------------------------------------------------------


class HistoryInput(StrictSerializer):
    student_id = student_id_field()
    topic = topic_field(required=False)
    start_date = serializers.DateField(
        input_formats=["iso-8601"],
        help_text="At most end_date (else 422 `invalid_date_range`).",
    )
    end_date = serializers.DateField(
        input_formats=["iso-8601"],
        help_text=f"At most today, UTC (`date_in_future`); the range is at most "
        f"{MAX_HISTORY_DAYS} days long (`date_range_too_long`).",
    )
    granularity = serializers.ChoiceField(choices=list(PERIODS), default="daily")


class CohortCompareInput(StrictSerializer):
    cohort_ids = serializers.ListField(
        child=StrictCharField(max_length=64, validators=[COHORT_ID_VALIDATOR]),
        help_text=f"{MIN_COHORTS} to {MAX_COHORTS} distinct cohort ids.",
    )
    topic = topic_field(required=False)
    # Checked by the view, with codes of their own (`too_few_cohorts`, …).
    openapi_extra = {
        "properties": {
            "cohort_ids": {"minItems": MIN_COHORTS, "maxItems": MAX_COHORTS, "uniqueItems": True}
        }
    }


# --- output ------------------------------------------------------------------------------


class PeriodOutput(serializers.Serializer):
    period_start = serializers.DateField()
    mean = serializers.FloatField(allow_null=True)
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    samples = serializers.IntegerField()


class HistorySummaryOutput(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True)
    median = serializers.FloatField(allow_null=True)
    std = serializers.FloatField(allow_null=True)
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    trend_slope = serializers.FloatField(allow_null=True, help_text="Least squares, per day.")
    volatility = serializers.FloatField(
        allow_null=True, help_text="Standard deviation of the day-to-day changes."
    )


class HistoryOutput(serializers.Serializer):
    student_id = serializers.CharField()
    topic = serializers.CharField(allow_null=True)
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    granularity = serializers.ChoiceField(choices=list(PERIODS))
    series = PeriodOutput(many=True)
    summary = HistorySummaryOutput()


class ComponentMeansOutput(serializers.Serializer):
    completion = serializers.FloatField(allow_null=True)
    quiz = serializers.FloatField(allow_null=True)
    quality = serializers.FloatField(allow_null=True)
    consistency = serializers.FloatField(allow_null=True)


class CohortFiguresOutput(serializers.Serializer):
    cohort_id = serializers.CharField()
    name = serializers.CharField()
    n = serializers.IntegerField(help_text="Consenting students with a value.")
    mean = serializers.FloatField(allow_null=True)
    median = serializers.FloatField(allow_null=True)
    std = serializers.FloatField(allow_null=True)
    p25 = serializers.FloatField(allow_null=True)
    p75 = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)
    components = ComponentMeansOutput()


class IntervalOutput(serializers.Serializer):
    low = serializers.FloatField()
    high = serializers.FloatField()


class ReasonOutput(serializers.Serializer):
    code = serializers.ChoiceField(choices=list(REASONS))
    message = serializers.CharField()


class PairOutput(serializers.Serializer):
    cohort_a = serializers.CharField()
    cohort_b = serializers.CharField()
    mean_difference = serializers.FloatField(allow_null=True, help_text="a minus b.")
    mean_difference_ci = IntervalOutput(allow_null=True)
    t = serializers.FloatField(allow_null=True)
    df = serializers.FloatField(allow_null=True, help_text="Welch-Satterthwaite.")
    p_value = serializers.FloatField(allow_null=True, help_text="Two-sided.")
    p_adjusted = serializers.FloatField(allow_null=True, help_text="Holm, over the pairs.")
    significant = serializers.BooleanField(allow_null=True)
    effect_size = serializers.FloatField(
        allow_null=True, help_text="Hedges' g, average-variance denominator."
    )
    effect_size_ci = IntervalOutput(allow_null=True)
    reason = ReasonOutput(allow_null=True)
    interpretation = serializers.CharField()


class CohortCompareOutput(serializers.Serializer):
    topic = serializers.CharField(allow_null=True)
    cohorts = CohortFiguresOutput(many=True)
    pairs = PairOutput(many=True)


class CohortListItemOutput(serializers.Serializer):
    cohort_id = serializers.CharField()
    name = serializers.CharField()
    size = serializers.IntegerField()
    consenting_size = serializers.IntegerField()
    mean_mastery = serializers.SerializerMethodField(
        help_text="Mean overall mastery of the consenting students."
    )

    def get_mean_mastery(self, cohort) -> float | None:
        return _score(cohort.mean_mastery)


# --- the endpoints' paths, shared with /process ------------------------------------------


def history_answer(request: Request, data: object) -> dict:
    """`POST /analytics/history`: the validated request's history of a student it may see."""
    params = HistoryInput(data=data)
    params.is_valid(raise_exception=True)
    values = params.validated_data
    start, end = values["start_date"], values["end_date"]
    _check_range(start, end, today=timezone.now().date())
    topic = _topic_or_404(values.get("topic"))
    student = student_read(request, action="analytics.history", student_id=values["student_id"])
    history = student_history(
        student, start=start, end=end, granularity=values["granularity"], topic=topic
    )
    return _history_document(student.student_id, topic, start, end, values["granularity"], history)


def recent_history_answer(request: Request, student_id: str) -> dict:
    """`GET /analytics/history/{student_id}`: the last 30 days (UTC) to today, daily."""
    today = timezone.now().date()
    student = student_read(request, action="analytics.history", student_id=student_id)
    start = today - timedelta(days=DEFAULT_HISTORY_DAYS - 1)
    history = student_history(student, start=start, end=today, granularity="daily")
    return _history_document(student.student_id, None, start, today, "daily", history)


def cohorts_compare_answer(request: Request, data: object) -> dict:
    """`POST /analytics/cohorts/compare`: teachers their own cohorts (others are 404),
    admins any. One audit entry names the cohorts: the answer shows no student's own
    figures, only aggregates over consenting students."""
    if getattr(request.user, "role", None) not in (User.Role.TEACHER, User.Role.ADMIN):
        raise exceptions.PermissionDenied(IsTeacherOrAdmin.message)
    params = CohortCompareInput(data=data)
    params.is_valid(raise_exception=True)
    cohort_ids = params.validated_data["cohort_ids"]
    _check_cohort_ids(cohort_ids)
    topic = _topic_or_404(params.validated_data.get("topic"))
    cohorts = cohorts_for_comparison(request.user, cohort_ids)
    figures = cohort_figures(cohorts, topic=topic)
    resource = f"{request.path}?cohort_ids={','.join(cohort_ids)}"
    if topic is not None:
        resource += f"&topic={topic.slug}"
    students_read_audit(
        request, action="analytics.cohorts.compare", student_refs=[""], resource=resource
    )
    return comparison_document(cohorts, figures, topic)


def cohorts_for_comparison(user: User, cohort_ids: list[str]) -> list[Cohort]:
    """The cohorts, in the order asked, or NotFound naming those the caller may not see
    (whether they exist or not)."""
    found = {c.cohort_id: c for c in cohorts_visible_to(user).filter(cohort_id__in=cohort_ids)}
    missing = [cohort_id for cohort_id in cohort_ids if cohort_id not in found]
    if missing:
        raise NotFound("No such cohort.", code="cohort_not_found", details={"cohort_ids": missing})
    return [found[cohort_id] for cohort_id in cohort_ids]


def comparison_document(
    cohorts: list[Cohort], figures: list[CohortFigures], topic: Topic | None
) -> dict:
    """The comparison response: each cohort's figures, then every pair's tests."""
    samples = [f.sample() for f in figures]
    pairs = []
    for i, j, comparison in compare_pairs(samples):
        a, b = cohorts[i], cohorts[j]
        reason = comparison.reason
        pairs.append(
            {
                "cohort_a": a.cohort_id,
                "cohort_b": b.cohort_id,
                "mean_difference": _score(comparison.mean_difference),
                "mean_difference_ci": _interval(comparison.mean_difference_ci, _score),
                "t": _stat(comparison.t),
                "df": _stat(comparison.df),
                "p_value": _p(comparison.p_value),
                "p_adjusted": _p(comparison.p_adjusted),
                "significant": comparison.significant,
                "effect_size": _stat(comparison.effect_size),
                "effect_size_ci": _interval(comparison.effect_size_ci, _stat),
                "reason": None if reason is None else {"code": reason, "message": REASONS[reason]},
                "interpretation": comparison_sentence(
                    a.name or a.cohort_id, b.name or b.cohort_id, comparison
                ),
            }
        )
    return {
        "topic": topic.slug if topic is not None else None,
        "cohorts": [
            {
                "cohort_id": cohort.cohort_id,
                "name": cohort.name,
                "n": f.n,
                "mean": _score(f.mean),
                "median": _score(f.median),
                "std": _score(f.std),
                "p25": _score(f.p25),
                "p75": _score(f.p75),
                "p90": _score(f.p90),
                "components": {name: _score(f.components[name]) for name in COMPONENTS},
            }
            for cohort, f in zip(cohorts, figures, strict=True)
        ],
        "pairs": pairs,
    }


def _check_range(start: date, end: date, *, today: date) -> None:
    if start > end:
        raise ValidationFailed(
            "start_date is after end_date.",
            code="invalid_date_range",
            details={"start_date": str(start), "end_date": str(end)},
        )
    if end > today:
        raise ValidationFailed(
            "The range may not end after today (UTC): those days have no history yet.",
            code="date_in_future",
            details={"end_date": str(end), "today": str(today)},
        )
    days = (end - start).days + 1
    if days > MAX_HISTORY_DAYS:
        raise ValidationFailed(
            f"The range is {days} days long; at most {MAX_HISTORY_DAYS} are allowed.",
            code="date_range_too_long",
            details={"days": days, "max_days": MAX_HISTORY_DAYS},
        )


def _check_cohort_ids(cohort_ids: list[str]) -> None:
    repeated = sorted(cohort_id for cohort_id, n in Counter(cohort_ids).items() if n > 1)
    if repeated:
        raise ValidationFailed(
            "Each cohort may be named once.",
            code="duplicate_cohort_ids",
            details={"cohort_ids": repeated},
        )
    if len(cohort_ids) < MIN_COHORTS:
        raise ValidationFailed(
            f"Compare at least {MIN_COHORTS} cohorts.",
            code="too_few_cohorts",
            details={"min": MIN_COHORTS, "given": len(cohort_ids)},
        )
    if len(cohort_ids) > MAX_COHORTS:
        raise ValidationFailed(
            f"Compare at most {MAX_COHORTS} cohorts at a time.",
            code="too_many_cohorts",
            details={"max": MAX_COHORTS, "given": len(cohort_ids)},
        )


def _topic_or_404(slug: str | None) -> Topic | None:
    if slug is None:
        return None
    topic = Topic.objects.filter(slug=slug).first()
    if topic is None:
        raise NotFound("No such topic.", code="topic_not_found")
    return topic


def _history_document(
    student_id: str, topic: Topic | None, start: date, end: date, granularity: str, history: History
) -> dict:
    summary = history.summary
    return {
        "student_id": student_id,
        "topic": topic.slug if topic is not None else None,
        "start_date": start,
        "end_date": end,
        "granularity": granularity,
        "series": [
            {
                "period_start": p.period_start,
                "mean": _score(p.mean),
                "min": _score(p.min),
                "max": _score(p.max),
                "samples": p.samples,
            }
            for p in history.series
        ],
        "summary": {
            "mean": _score(summary.mean),
            "median": _score(summary.median),
            "std": _score(summary.std),
            "min": _score(summary.min),
            "max": _score(summary.max),
            "trend_slope": _rate(summary.trend_slope),
            "volatility": _rate(summary.volatility),
        },
    }


# Output precision: mastery-scale figures to 4 decimals, as scores are stored; per-day rates
# to 6 (a slope of 0.0001 a day matters over a term); test statistics to 4 decimals; p-values
# to 4 significant digits (they may be 1e-25).
def _score(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _stat(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _p(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.4g}")


def _interval(interval: Interval | None, rounded: Callable[[float], float]) -> dict | None:
    if interval is None:
        return None
    return {"low": rounded(interval.low), "high": rounded(interval.high)}


# --- viewsets ----------------------------------------------------------------------------


class HistoryViewSet(viewsets.ViewSet):
    """A student's mastery history: any caller, for the students it may see."""

    lookup_field = "student_id"
    lookup_value_regex = ids.STUDENT_ID

    @extend_schema(request=HistoryInput, responses={200: HistoryOutput})
    def create(self, request: Request) -> Response:
        return Response(HistoryOutput(history_answer(request, request.data)).data)

    @extend_schema(responses=HistoryOutput, description="The last 30 days (UTC), daily.")
    def retrieve(self, request: Request, student_id: str) -> Response:
        return Response(HistoryOutput(recent_history_answer(request, student_id)).data)


class CohortAnalyticsViewSet(viewsets.GenericViewSet):
    """Cohort comparison and the cohort list with sizes: teachers (own cohorts), admins."""

    permission_classes = [IsTeacherOrAdmin]

    @extend_schema(request=CohortCompareInput, responses={200: CohortCompareOutput})
    @action(detail=False, methods=["post"])
    def compare(self, request: Request) -> Response:
        return Response(CohortCompareOutput(cohorts_compare_answer(request, request.data)).data)

    @extend_schema(responses=CohortListItemOutput(many=True))
    @action(detail=False, methods=["get"], url_path="list")
    def cohort_list(self, request: Request) -> Response:
        page = self.paginate_queryset(cohorts_with_sizes(request.user))
        students_read_audit(request, action="analytics.cohorts.list", student_refs=[""])
        return self.get_paginated_response(CohortListItemOutput(page, many=True).data)
