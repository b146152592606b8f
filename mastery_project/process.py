"""`POST /api/v1/process` (SPEC §3.5): one entry point, one response shape, for every
capability another service needs.

It is a router, not a second implementation. Each intent names the endpoint it mirrors
(`Route`): the endpoint's view and action, whose permission classes and rate-limit budget
are checked here exactly as the endpoint checks them, and the endpoint's own answer
function, which holds its validation, visibility, audit and work, and which its view
calls too. What comes back is rendered by the endpoint's output serializer, with the
endpoint's status; an error is the envelope the endpoint would answer, inside
`{success, data, error, metadata}`, with the endpoint's HTTP status.

Any authenticated caller may use it: the intent's endpoint decides who may do what (a
student asking for another student's path gets the endpoint's 404, a service submitting
a batch the endpoint's 403), so no access rule is stated twice.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from analytics.api import batch as batch_api
from analytics.api import history as history_api
from analytics.api import predictions as predictions_api
from analytics.api import recommendations as recommendations_api
from mastery.api import serializers as mastery_serializers
from mastery.api import views as mastery_views
from mastery_project.envelope import status_envelope
from mastery_project.errors import ValidationFailed
from mastery_project.ratelimit import rate_limit_spend
from mastery_project.schema import DESCRIPTIONS, ErrorBodySerializer
from mastery_project.serializers import StrictCharField, StrictSerializer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """One endpoint an intent reaches.

    `answer(request, data)` is the endpoint's own path from the raw request data to its
    result; `response` renders the result (unless `rendered`: the answer returns the body
    itself) and documents it; `request` documents what `data` holds. `view` and `action`
    name the endpoint, whose permissions and rate limit apply.
    """

    view: type[APIView]
    action: str
    request: type[Serializer]
    response: type[Serializer]
    answer: Callable[[Request, object], Any]
    status: int = 200
    rendered: bool = False

    def run(self, request: Request, data: dict) -> tuple[int, Any]:
        method = getattr(self.view, self.action)
        endpoint = self.view(
            **getattr(method, "kwargs", {}),
            action=self.action,
            request=request,
            format_kwarg=None,
            args=(),
            kwargs={},
        )
        endpoint.check_permissions(request)
        endpoint.check_throttles(request)
        group = getattr(method, "rate_limit_group", None)
        if group is not None:
            rate_limit_spend(request, group)
        result = self.answer(request, data)
        return self.status, result if self.rendered else self.response(result).data


@dataclass(frozen=True)
class Intent:
    """An intent and the endpoints it reaches: one, or several told apart by `choose`
    (the name of the route for the request's `data`)."""

    name: str
    summary: str
    routes: dict[str, Route]
    choose: Callable[[dict], str] | None = None
    # A key of `data` that only chooses the route, and is not passed on.
    selector: str | None = None

    def route_for(self, data: dict) -> tuple[Route, dict]:
        if self.selector is not None:
            kind = data.get(self.selector)
            if not isinstance(kind, str) or kind not in self.routes:
                raise ValidationFailed(
                    "The request is invalid.",
                    details={self.selector: [f"One of: {', '.join(self.routes)}."]},
                )
            return self.routes[kind], {k: v for k, v in data.items() if k != self.selector}
        name = self.choose(data) if self.choose else next(iter(self.routes))
        return self.routes[name], data


def _calculation_or_query(data: dict) -> str:
    return "query" if "student_id" in data else "calculate"


INTENTS: dict[str, Intent] = {
    intent.name: intent
    for intent in (
        Intent(
            name="mastery_calculation",
            summary="`mastery/calculate`; with a `student_id`, `mastery/query`.",
            routes={
                "calculate": Route(
                    mastery_views.MasteryViewSet,
                    "calculate",
                    mastery_serializers.CalculateInput,
                    mastery_serializers.CalculateOutput,
                    mastery_views.mastery_calculation_answer,
                ),
                "query": Route(
                    mastery_views.MasteryViewSet,
                    "query",
                    mastery_serializers.MasteryQueryInput,
                    mastery_serializers.MasteryQueryOutput,
                    mastery_views.mastery_query_answer,
                ),
            },
            choose=_calculation_or_query,
        ),
        Intent(
            name="get_prediction",
            summary="`predictions/next-week`.",
            routes={
                "next_week": Route(
                    predictions_api.PredictionViewSet,
                    "next_week",
                    predictions_api.PredictionInput,
                    predictions_api.NextWeekOutput,
                    predictions_api.next_week_answer,
                )
            },
        ),
        Intent(
            name="generate_path",
            summary="`recommendations/learning-path`.",
            routes={
                "learning_path": Route(
                    recommendations_api.RecommendationViewSet,
                    "learning_path",
                    recommendations_api.LearningPathInput,
                    recommendations_api.LearningPathOutput,
                    recommendations_api.learning_path_answer,
                    rendered=True,
                )
            },
        ),
        Intent(
            name="batch_process",
            summary="`batch/mastery` (202).",
            routes={
                "batch": Route(
                    batch_api.BatchViewSet,
                    "mastery",
                    batch_api.BatchSubmitInput,
                    batch_api.BatchSubmitOutput,
                    batch_api.batch_submit_answer,
                    status=202,
                )
            },
        ),
        Intent(
            name="analytics_query",
            summary="`analytics/history` or `analytics/cohorts/compare`, by `data.kind`.",
            routes={
                "history": Route(
                    history_api.HistoryViewSet,
                    "create",
                    history_api.HistoryInput,
                    history_api.HistoryOutput,
                    history_api.history_answer,
                ),
                "compare": Route(
                    history_api.CohortAnalyticsViewSet,
                    "compare",
                    history_api.CohortCompareInput,
                    history_api.CohortCompareOutput,
                    history_api.cohorts_compare_answer,
                ),
            },
            selector="kind",
        ),
    )
}


class ProcessInput(StrictSerializer):
    intent = StrictCharField(help_text="What to do: one of the intents below.")
    data = serializers.DictField(help_text="The intent's input, as its endpoint takes it.")


def process_intent(request: Request, body: object) -> tuple[int, Any]:
    """Route one request: (status, the endpoint's body), or raise the endpoint's error."""
    params = ProcessInput(data=body)
    valid = params.is_valid()
    name = body.get("intent") if isinstance(body, dict) else None
    if isinstance(name, str) and name not in INTENTS:
        raise ValidationFailed(
            f"Unknown intent {name!r}.",
            code="unknown_intent",
            details={"intent": name, "known": list(INTENTS)},
        )
    if not valid:
        raise serializers.ValidationError(params.errors)
    intent = INTENTS[params.validated_data["intent"]]
    route, data = intent.route_for(params.validated_data["data"])
    return route.run(request, data)


# --- the view and its schema --------------------------------------------------------------


class ProcessMetadata(serializers.Serializer):
    intent = serializers.CharField(allow_null=True, help_text="The intent asked for, if any.")
    correlation_id = serializers.CharField(help_text="The request's `X-Request-ID`.")
    duration_ms = serializers.FloatField()


class ProcessErrorResponse(serializers.Serializer):
    """Any refusal: the error the intent's endpoint would answer, with its status."""

    success = serializers.BooleanField(default=False)
    data = serializers.JSONField(allow_null=True, default=None, help_text="Always null.")
    error = ErrorBodySerializer()
    metadata = ProcessMetadata()


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def _constant(value: str) -> serializers.Field:
    """A field documented as this one string (an intent's name, a `kind`)."""

    @extend_schema_field({"type": "string", "enum": [value]})
    class Constant(serializers.CharField):
        pass

    return Constant()


def _data_schema(intent: Intent, direction: str) -> serializers.Field:
    """The documented `data` of an intent's request or response: its endpoint's
    serializer, or a oneOf of its endpoints' (discriminated by the selector key)."""
    routes = list(intent.routes.items())
    if direction == "response" and len({r.response for _, r in routes}) == 1:
        return routes[0][1].response()
    if direction == "request" and len(routes) == 1:
        return routes[0][1].request()
    if direction == "response":
        choices = PolymorphicProxySerializer(
            component_name=f"Process{_camel(intent.name)}ResponseData",
            serializers=[route.response for _, route in routes],
            resource_type_field_name=None,
        )
    elif intent.selector is None:
        choices = PolymorphicProxySerializer(
            component_name=f"Process{_camel(intent.name)}Data",
            serializers=[route.request for _, route in routes],
            resource_type_field_name=None,
        )
    else:
        selector = intent.selector
        choices = PolymorphicProxySerializer(
            component_name=f"Process{_camel(intent.name)}Data",
            serializers={
                kind: type(
                    f"Process{_camel(intent.name)}{_camel(kind)}Data",
                    (route.request,),
                    {
                        selector: _constant(kind),
                        "__doc__": f"`{selector}` {kind}: the rest is the endpoint's input.",
                    },
                )
                for kind, route in routes
            },
            resource_type_field_name=selector,
        )

    @extend_schema_field(choices)
    class OneOf(serializers.JSONField):
        pass

    return OneOf()


def _documented(intent: Intent, direction: str) -> type[Serializer]:
    fields: dict[str, serializers.Field] = {"data": _data_schema(intent, direction)}
    if direction == "request":
        fields["intent"] = _constant(intent.name)
        suffix = ""
    else:
        fields |= {
            "success": serializers.BooleanField(default=True),
            "error": serializers.JSONField(allow_null=True, default=None, help_text="null."),
            "metadata": ProcessMetadata(),
        }
        suffix = "Response"
    return type(
        f"Process{_camel(intent.name)}{suffix}",
        (StrictSerializer if direction == "request" else serializers.Serializer,),
        {**fields, "__doc__": intent.summary},
    )


def _responses() -> dict:
    by_status: dict[int, list[type[Serializer]]] = {}
    for intent in INTENTS.values():
        statuses = {route.status for route in intent.routes.values()}
        for status in statuses:
            by_status.setdefault(status, []).append(_documented(intent, "response"))
    responses: dict[int, Any] = {
        status: PolymorphicProxySerializer(
            component_name=f"Process{status}Response",
            serializers=documented,
            resource_type_field_name=None,
        )
        if len(documented) > 1
        else documented[0]
        for status, documented in sorted(by_status.items())
    }
    for status in (400, 401, 403, 404, 415, 422, 429, 503):
        responses[status] = OpenApiResponse(ProcessErrorResponse, description=DESCRIPTIONS[status])
    return responses


class ProcessView(APIView):
    """Every answer, success or refusal, is `{success, data, error, metadata}`."""

    intent_name: str | None = None

    def dispatch(self, request, *args, **kwargs):
        self.started = time.perf_counter()
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(
        request=PolymorphicProxySerializer(
            component_name="Process",
            serializers={name: _documented(intent, "request") for name, intent in INTENTS.items()},
            resource_type_field_name="intent",
        ),
        responses=_responses(),
        description="One entry point for other services (SPEC §3.5). Each intent runs its "
        "endpoint's own checks and work: "
        + "; ".join(f"`{i.name}`: {i.summary}" for i in INTENTS.values())
        + " An unknown intent is 422 `unknown_intent`, listing the known ones. Refusals "
        "carry the endpoint's error and status; only a body over the upload limit (413) is "
        "refused before this view runs, with the plain error envelope.",
    )
    def post(self, request: Request) -> Response:
        self.intent_name = request.data.get("intent") if isinstance(request.data, dict) else None
        status, answer = process_intent(request, request.data)
        return Response(self._envelope(request, data=answer), status=status)

    def handle_exception(self, exc: Exception) -> Response:
        try:
            response = super().handle_exception(exc)
        except Exception:
            # Not the endpoint's error but ours: logged with its traceback, answered 500.
            logger.exception("/process failed on %s", type(exc).__name__)
            response = Response(status_envelope(500), status=500)
        response.data = self._envelope(self.request, error=response.data["error"])
        return response

    def _envelope(self, request, *, data: Any = None, error: dict | None = None) -> dict:
        name = self.intent_name if isinstance(self.intent_name, str) else None
        return {
            "success": error is None,
            "data": data,
            "error": error,
            "metadata": {
                "intent": name,
                "correlation_id": getattr(request, "correlation_id", ""),
                "duration_ms": round((time.perf_counter() - self.started) * 1000, 3),
            },
        }
