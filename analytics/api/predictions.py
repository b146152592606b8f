"""Prediction endpoints (SPEC §3.1): next week, the trajectory, the intervention list and
teachers' feedback on flags.

`next_week_answer` holds the next-week endpoint's whole path (validation, visibility,
audit, the served prediction) so that `/process` runs exactly the same for its
`get_prediction` intent. The endpoints keep answering when Redis is down (the cache and
the rate limit then step aside), since a prediction needs only PostgreSQL.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.domain.forecast import METHODS
from analytics.models.predictions import FlagFeedback
from analytics.services.predictions import (
    TRAJECTORY_DAYS,
    flag_feedback_record,
    prediction_next_week_serve,
    prediction_trajectory,
    students_needing_intervention,
    today_utc,
)
from mastery.models import COHORT_ID_VALIDATOR, Topic
from mastery.selectors import cohorts_visible_to, students_visible_to
from mastery_project.access import IsTeacherOrAdmin, student_read, students_read_audit
from mastery_project.errors import NotFound
from mastery_project.ratelimit import rate_limited
from mastery_project.serializers import (
    StrictCharField,
    StrictSerializer,
    student_id_field,
    topic_field,
)

REASON_CODES = ("predicted_below_threshold", "component_drop", "declining", "inactive")
MAX_INTERVENTION_STUDENTS = 1000
DEFAULT_TRAJECTORY_DAYS = 14


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer; DRF's IntegerField would also take "14", 14.0 or true."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


# --- input -------------------------------------------------------------------------------


class PredictionInput(StrictSerializer):
    student_id = student_id_field()
    topic = topic_field(required=False, help_text="A topic's slug; without it, overall.")


class TrajectoryInput(PredictionInput):
    days = StrictIntegerField(
        min_value=1, max_value=TRAJECTORY_DAYS, default=DEFAULT_TRAJECTORY_DAYS
    )


class InterventionInput(StrictSerializer):
    cohort_id = StrictCharField(max_length=64, validators=[COHORT_ID_VALIDATOR], required=False)
    student_ids = serializers.ListField(
        child=student_id_field(),
        min_length=1,
        max_length=MAX_INTERVENTION_STUDENTS,
        required=False,
    )
    topic = topic_field(required=False, help_text="A topic's slug; without it, overall.")
    openapi_extra = {"oneOf": [{"required": ["cohort_id"]}, {"required": ["student_ids"]}]}

    def validate(self, attrs: dict) -> dict:
        if ("cohort_id" in attrs) == ("student_ids" in attrs):
            raise serializers.ValidationError("Give exactly one of cohort_id and student_ids.")
        return attrs


class FlagFeedbackInput(StrictSerializer):
    student_id = student_id_field()
    topic = topic_field(required=False, help_text="The flag's topic; without it, overall.")
    verdict = serializers.ChoiceField(choices=FlagFeedback.Verdict.choices)
    comment = StrictCharField(max_length=2000, required=False, allow_blank=True, default="")


# --- output ------------------------------------------------------------------------------


class PredictionReasonOutput(serializers.Serializer):
    code = serializers.ChoiceField(choices=REASON_CODES)
    message = serializers.CharField()
    details = serializers.DictField()


class NextWeekOutput(serializers.Serializer):
    student_id = serializers.CharField()
    topic = serializers.CharField(allow_null=True)
    predicted_mastery = serializers.FloatField()
    current_mastery = serializers.FloatField()
    confidence = serializers.FloatField()
    slope_per_day = serializers.FloatField()
    method = serializers.ChoiceField(choices=METHODS)
    intervention_needed = serializers.BooleanField()
    reasons = PredictionReasonOutput(many=True, help_text="Most important first.")
    data_points = serializers.IntegerField()
    stale = serializers.BooleanField(help_text="The latest point is older than 7 days.")
    target_date = serializers.DateField()


class TrajectoryPointOutput(serializers.Serializer):
    date = serializers.DateField()
    mastery = serializers.FloatField()
    lower = serializers.FloatField(help_text="80 % prediction interval.")
    upper = serializers.FloatField(help_text="80 % prediction interval.")


class TrajectoryOutput(serializers.Serializer):
    student_id = serializers.CharField()
    topic = serializers.CharField(allow_null=True)
    method = serializers.ChoiceField(choices=METHODS)
    confidence = serializers.FloatField()
    points = TrajectoryPointOutput(many=True)


class InterventionOutput(serializers.Serializer):
    cohort_id = serializers.CharField(allow_null=True)
    topic = serializers.CharField(allow_null=True)
    evaluated = serializers.IntegerField(help_text="Students whose prediction was looked at.")
    students = NextWeekOutput(many=True, help_text="Those needing intervention, worst first.")
    not_found = serializers.ListField(
        child=serializers.CharField(),
        help_text="Requested ids that are unknown or not visible to the caller.",
    )


class FlagFeedbackOutput(serializers.Serializer):
    id = serializers.IntegerField()
    student_id = serializers.CharField()
    topic = serializers.CharField(allow_null=True)
    verdict = serializers.ChoiceField(choices=FlagFeedback.Verdict.choices)
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()
    flagged = serializers.BooleanField(help_text="Whether the prediction judged was a flag.")
    predicted_mastery = serializers.FloatField()
    method = serializers.ChoiceField(choices=METHODS)


# --- the endpoints' paths ------------------------------------------------------------------


def _topic_or_404(slug: str | None) -> Topic | None:
    if slug is None:
        return None
    topic = Topic.objects.filter(slug=slug).first()
    if topic is None:
        raise NotFound("No such topic.", code="topic_not_found", details={"topic": slug})
    return topic


def next_week_answer(request: Request, data: object) -> dict:
    """`POST /predictions/next-week` for a student the caller may see (else 404, audited)."""
    params = PredictionInput(data=data)
    params.is_valid(raise_exception=True)
    student = student_read(
        request, action="prediction.next_week", student_id=params.validated_data["student_id"]
    )
    topic = _topic_or_404(params.validated_data.get("topic"))
    payload = prediction_next_week_serve(student=student, topic=topic, today=today_utc())
    return {"student_id": student.student_id, **payload}


def _students_for_intervention(request: Request, values: dict) -> tuple[list, list[str]]:
    """(pk, id) of the students asked for that the caller may see, and the ids it may not."""
    visible = students_visible_to(request.user)
    if "cohort_id" in values:
        cohort = cohorts_visible_to(request.user).filter(cohort_id=values["cohort_id"]).first()
        if cohort is None:
            raise NotFound(
                "No such cohort.",
                code="cohort_not_found",
                details={"cohort_id": values["cohort_id"]},
            )
        refs = visible.filter(cohorts=cohort).order_by("student_id")
        return list(refs.values_list("pk", "student_id")), []
    asked = list(dict.fromkeys(values["student_ids"]))
    refs = list(visible.filter(student_id__in=asked).values_list("pk", "student_id"))
    found = {student_id for _, student_id in refs}
    return refs, [student_id for student_id in asked if student_id not in found]


class PredictionViewSet(viewsets.GenericViewSet):
    """Where each student is heading, why, and whether a teacher should step in."""

    @extend_schema(request=PredictionInput, responses=NextWeekOutput)
    @action(detail=False, methods=["post"], url_path="next-week")
    @rate_limited()
    def next_week(self, request: Request) -> Response:
        return Response(NextWeekOutput(next_week_answer(request, request.data)).data)

    @extend_schema(request=TrajectoryInput, responses=TrajectoryOutput)
    @action(detail=False, methods=["post"])
    @rate_limited()
    def trajectory(self, request: Request) -> Response:
        params = TrajectoryInput(data=request.data)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        student = student_read(
            request, action="prediction.trajectory", student_id=values["student_id"]
        )
        topic = _topic_or_404(values.get("topic"))
        result = prediction_trajectory(
            student=student, topic=topic, today=today_utc(), days=values["days"]
        )
        return Response(TrajectoryOutput({"student_id": student.student_id, **result}).data)

    @extend_schema(request=InterventionInput, responses=InterventionOutput)
    @action(detail=False, methods=["post"], permission_classes=[IsTeacherOrAdmin])
    @rate_limited()
    def intervention(self, request: Request) -> Response:
        params = InterventionInput(data=request.data)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        topic = _topic_or_404(values.get("topic"))
        refs, not_found = _students_for_intervention(request, values)
        flagged = students_needing_intervention(refs, topic=topic, today=today_utc())
        # Every student looked at is read: the answer says of each whether it is flagged.
        students_read_audit(
            request,
            action="prediction.intervention",
            student_refs=[student_id for _, student_id in refs],
        )
        return Response(
            InterventionOutput(
                {
                    "cohort_id": values.get("cohort_id"),
                    "topic": topic.slug if topic else None,
                    "evaluated": len(refs),
                    "students": [{"student_id": ref[1], **payload} for ref, payload in flagged],
                    "not_found": not_found,
                }
            ).data
        )

    @extend_schema(
        request=FlagFeedbackInput, responses={status.HTTP_201_CREATED: FlagFeedbackOutput}
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="intervention/feedback",
        permission_classes=[IsTeacherOrAdmin],
    )
    @rate_limited()
    def intervention_feedback(self, request: Request) -> Response:
        params = FlagFeedbackInput(data=request.data)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        student = student_read(
            request, action="prediction.feedback", student_id=values["student_id"]
        )
        topic = _topic_or_404(values.get("topic"))
        feedback = flag_feedback_record(
            student=student,
            topic=topic,
            verdict=values["verdict"],
            comment=values["comment"],
            author=request.user,
            today=today_utc(),
        )
        body = {
            "id": feedback.pk,
            "student_id": student.student_id,
            "topic": topic.slug if topic else None,
            "verdict": feedback.verdict,
            "comment": feedback.comment,
            "created_at": feedback.created_at,
            "flagged": feedback.flagged,
            "predicted_mastery": feedback.predicted,
            "method": feedback.method,
        }
        return Response(FlagFeedbackOutput(body).data, status=status.HTTP_201_CREATED)
