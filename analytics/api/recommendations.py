"""Recommendation endpoints (SPEC §3.2): adaptive recommendations, the learning path, the
rules in force with the feedback shares, and feedback.

`learning_path_answer` holds the learning path's whole way (validation, visibility, audit,
computation), so that `/process` runs exactly the same for its `generate_path` intent; the
viewset only hands it the request.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.domain.recommendations import (
    ACTIONS,
    HIGH_PRIORITY_FROM,
    MEDIUM_PRIORITY_FROM,
    STEP_UNITS,
)
from analytics.models.recommendations import Recommendation
from analytics.selectors import recommendations as selectors
from analytics.services.recommendations import (
    StudentPath,
    learning_path_current,
    recommendation_feedback_save,
    recommendations_current,
)
from mastery.models import User
from mastery_project.access import role_in, student_read
from mastery_project.errors import NotFound
from mastery_project.ratelimit import rate_limited
from mastery_project.schema import error_response
from mastery_project.serializers import (
    StrictBooleanField,
    StrictCharField,
    StrictSerializer,
    student_id_field,
    topic_field,
)

COMMENT_MAX_LENGTH = 2000
# Feedback is people's judgement: the student it is for, its teachers, admins (SPEC §3.2).
FEEDBACK_ROLES = (User.Role.STUDENT, User.Role.TEACHER, User.Role.ADMIN)


# --- input -------------------------------------------------------------------------------


class AdaptiveRecommendationsInput(StrictSerializer):
    student_id = student_id_field()
    topic = topic_field(required=False)


class LearningPathInput(StrictSerializer):
    student_id = student_id_field()


class StrictUUIDField(serializers.UUIDField):
    """A UUID as a JSON string (DRF would also turn an integer into one)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class RecommendationFeedbackInput(StrictSerializer):
    recommendation_id = StrictUUIDField()
    helpful = StrictBooleanField()
    completed = StrictBooleanField(required=False, allow_null=True, default=None)
    comment = StrictCharField(
        required=False, allow_blank=True, default="", max_length=COMMENT_MAX_LENGTH
    )


# --- output ------------------------------------------------------------------------------


class RecommendationOutput(serializers.Serializer):
    id = serializers.UUIDField(help_text="Stable while the component's score is unchanged.")
    topic = serializers.CharField(source="topic.slug")
    component = serializers.CharField()
    score = serializers.FloatField()
    action = serializers.CharField()
    priority = serializers.CharField(help_text="high (impact >= 0.08), medium (>= 0.03), low.")
    impact = serializers.FloatField(help_text="weight x (threshold - score).")
    steps = serializers.IntegerField(help_text="Exercises, quizzes, reviews or days to do.")
    target = serializers.FloatField(help_text="The component's score once the steps are done.")
    mastery_gain = serializers.FloatField(help_text="What the steps add to the topic's mastery.")
    estimated_minutes = serializers.IntegerField()
    message = serializers.CharField()
    created_at = serializers.DateTimeField()


class PathBlockerOutput(serializers.Serializer):
    topic = serializers.CharField()
    mastery = serializers.FloatField()


class PathStepOutput(serializers.Serializer):
    position = serializers.IntegerField()
    topic = serializers.CharField()
    name = serializers.CharField()
    mastery = serializers.FloatField()
    status = serializers.ChoiceField(choices=["unlocked", "locked"])
    blocked_by = PathBlockerOutput(many=True, help_text="Prerequisites below the threshold.")
    recommendations = RecommendationOutput(many=True, help_text="For unlocked topics.")


class PathProblemOutput(serializers.Serializer):
    code = serializers.ChoiceField(choices=["prerequisite_cycle", "missing_prerequisite"])
    topics = serializers.ListField(child=serializers.CharField())
    message = serializers.CharField()


class LearningPathOutput(serializers.Serializer):
    student_id = serializers.CharField()
    threshold = serializers.FloatField()
    steps = PathStepOutput(many=True)
    mastered = serializers.ListField(child=serializers.CharField())
    problems = PathProblemOutput(many=True)


class RecommendationMinutesOutput(serializers.Serializer):
    per = serializers.CharField(help_text="What one step is.")
    minutes = serializers.IntegerField()
    setting = serializers.CharField()


class RecommendationFeedbackShareOutput(serializers.Serializer):
    count = serializers.IntegerField()
    helpful = serializers.IntegerField()
    helpful_share = serializers.FloatField(allow_null=True)


class RecommendationConfigOutput(serializers.Serializer):
    threshold = serializers.FloatField()
    weights = serializers.DictField(child=serializers.FloatField())
    actions = serializers.DictField(child=serializers.CharField(), help_text="component -> action")
    priorities = serializers.DictField(child=serializers.FloatField(), help_text="lower bounds")
    minutes = serializers.DictField(child=RecommendationMinutesOutput(), help_text="per action")
    feedback = serializers.DictField(
        child=RecommendationFeedbackShareOutput(),
        help_text="per action, students with analytics consent",
    )


class RecommendationFeedbackOutput(serializers.Serializer):
    recommendation_id = serializers.UUIDField()
    helpful = serializers.BooleanField()
    completed = serializers.BooleanField(allow_null=True)
    comment = serializers.CharField()
    author_role = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# --- the answers ---------------------------------------------------------------------------


def learning_path_document(student_id: str, result: StudentPath) -> dict:
    steps = [
        {
            "position": position,
            "topic": step.topic,
            "name": result.names.get(step.topic, ""),
            "mastery": step.mastery,
            "status": step.status,
            "blocked_by": step.blocked_by,
            "recommendations": result.recommendations.get(step.topic, [])
            if step.status == "unlocked"
            else [],
        }
        for position, step in enumerate(result.path.steps, start=1)
    ]
    return LearningPathOutput(
        {
            "student_id": student_id,
            "threshold": result.threshold,
            "steps": steps,
            "mastered": result.path.mastered,
            "problems": result.path.problems,
        }
    ).data


def learning_path_answer(request: Request, data: object) -> dict:
    """The learning path of the student named in `data`, as the endpoint answers it."""
    params = LearningPathInput(data=data)
    params.is_valid(raise_exception=True)
    student = student_read(
        request, action="recommendation.path", student_id=params.validated_data["student_id"]
    )
    return learning_path_document(student.student_id, learning_path_current(student=student))


def recommendations_config() -> dict:
    rules = selectors.recommendation_rules()
    return {
        "threshold": rules.threshold,
        "weights": rules.weights.as_dict(),
        "actions": dict(ACTIONS),
        "priorities": {"high": HIGH_PRIORITY_FROM, "medium": MEDIUM_PRIORITY_FROM},
        "minutes": {
            action: {
                "per": STEP_UNITS[action],
                "minutes": rules.minutes[action],
                "setting": setting,
            }
            for action, setting in selectors.MINUTES_SETTINGS.items()
        },
        "feedback": {
            share.action: {
                "count": share.count,
                "helpful": share.helpful,
                "helpful_share": share.share,
            }
            for share in selectors.feedback_shares()
        },
    }


def _feedback_target(request: Request, recommendation_id) -> Recommendation:
    """The recommendation, if the caller may see its student; else 404 (audited), whether
    it does not exist or belongs to a student out of sight."""
    owner = selectors.recommendation_student_pk(recommendation_id)
    try:
        student = student_read(request, action="recommendation.feedback", pk=owner)
    except NotFound:
        raise NotFound("No such recommendation.", code="recommendation_not_found") from None
    return selectors.recommendation_get(recommendation_id, student)


# --- the viewset ---------------------------------------------------------------------------


class RecommendationViewSet(viewsets.GenericViewSet):
    """What a student should do next, and in which order (SPEC §3.2)."""

    pagination_class = None  # a student's recommendations are a handful per topic

    def get_permissions(self):
        if self.action == "feedback":
            return [role_in(*FEEDBACK_ROLES)()]
        return super().get_permissions()

    @extend_schema(
        request=AdaptiveRecommendationsInput,
        responses=RecommendationOutput(many=True),
        description=(
            "One recommendation per component below the threshold, of the given topic or of "
            "every topic the student has started, by impact. The same score gives back the "
            "same `id`; a changed score gives a new one (the old one is kept, superseded)."
        ),
    )
    @action(detail=False, methods=["post"])
    @rate_limited()
    def adaptive(self, request: Request) -> Response:
        params = AdaptiveRecommendationsInput(data=request.data)
        params.is_valid(raise_exception=True)
        student = student_read(
            request,
            action="recommendation.adaptive",
            student_id=params.validated_data["student_id"],
        )
        rows = recommendations_current(student=student, topic=params.validated_data.get("topic"))
        return Response(RecommendationOutput(rows, many=True).data)

    @extend_schema(
        request=LearningPathInput,
        responses=LearningPathOutput,
        description=(
            "The catalogue's topics below the threshold: first those whose prerequisites are "
            "all at or above it, weakest first, each with its recommendations; then the "
            "locked ones, each naming the prerequisites that block it. Cycles or missing "
            "prerequisites in the data are reported in `problems`."
        ),
    )
    @action(detail=False, methods=["post"], url_path="learning-path")
    @rate_limited()
    def learning_path(self, request: Request) -> Response:
        return Response(learning_path_answer(request, request.data))

    @extend_schema(
        responses=RecommendationConfigOutput,
        description=(
            "The threshold, weights, action map, priority bounds, minute settings and, per "
            "action, the share of feedback that found it helpful."
        ),
    )
    @action(detail=False, methods=["get"])
    @rate_limited()
    def config(self, request: Request) -> Response:
        return Response(RecommendationConfigOutput(recommendations_config()).data)

    @extend_schema(
        request=RecommendationFeedbackInput,
        responses={
            201: RecommendationFeedbackOutput,
            200: RecommendationFeedbackOutput,
            404: error_response(
                "No such recommendation, or one of a student the caller may not see "
                "(`recommendation_not_found`)."
            ),
        },
        description=(
            "Stores what the caller thinks of a recommendation: 201 the first time, 200 when "
            "it replaces the caller's earlier feedback on it (each person counts once)."
        ),
    )
    @action(detail=False, methods=["post"])
    @rate_limited()
    def feedback(self, request: Request) -> Response:
        params = RecommendationFeedbackInput(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        recommendation = _feedback_target(request, data["recommendation_id"])
        feedback, created = recommendation_feedback_save(
            recommendation=recommendation,
            author=request.user,
            helpful=data["helpful"],
            completed=data["completed"],
            comment=data["comment"],
        )
        return Response(
            RecommendationFeedbackOutput(feedback).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
