from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from ingest.domain.events import (
    DURATION_MINUTES_MAX,
    EXERCISES_TOTAL_MAX,
    ID_MAX_LENGTH,
    MAX_BATCH,
    OCCURRED_AT_MAX_LENGTH,
)
from ingest.models import InboxEvent
from ingest.pipeline import CONFLICT, ingest_batch
from mastery.domain import ids
from mastery.domain.facts import (
    CODE_REVIEWED,
    EXERCISE_COMPLETED,
    QUIZ_SUBMITTED,
    SESSION_COMPLETED,
)
from mastery_project.access import IsServiceOrAdmin
from mastery_project.errors import ApplicationError, Conflict, ValidationFailed
from mastery_project.schema import error_response

_TEXT = {"type": "string", "minLength": 1, "maxLength": ID_MAX_LENGTH}
_PAYLOADS = {
    EXERCISE_COMPLETED: {
        "exercise_id": _TEXT,
        "exercises_total": {
            "type": "integer",
            "minimum": 1,
            "maximum": EXERCISES_TOTAL_MAX,
            "nullable": True,
        },
    },
    QUIZ_SUBMITTED: {
        "quiz_id": _TEXT,
        "score": {"type": "number", "minimum": 0, "description": "At most `max_score`."},
        "max_score": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
    },
    CODE_REVIEWED: {
        "submission_id": _TEXT,
        "quality_score": {"type": "number", "minimum": 0, "maximum": 1},
    },
    SESSION_COMPLETED: {
        "duration_minutes": {"type": "number", "minimum": 0, "maximum": DURATION_MINUTES_MAX},
    },
}


def _event_schema(event_type: str) -> dict:
    """One event of a type as SPEC §2.2 states it (ingest.domain.events checks it). What JSON
    Schema cannot say is in the descriptions: printable ids, a score at most the maximum,
    and the time window. Unknown fields are kept, at the top and in the payload."""
    payload = _PAYLOADS[event_type]
    return {
        "type": "object",
        "required": ["event_id", "event_type", "student_id", "topic", "occurred_at", "payload"],
        "properties": {
            "event_id": {**_TEXT, "description": "Printable; the idempotency key."},
            "event_type": {"type": "string", "enum": [event_type]},
            "student_id": {"type": "string", "pattern": f"^{ids.STUDENT_ID}$"},
            "topic": {"type": "string", "pattern": f"^{ids.TOPIC_SLUG}$"},
            "occurred_at": {
                "type": "string",
                "format": "date-time",
                "maxLength": OCCURRED_AT_MAX_LENGTH,
                "description": "With a timezone; within the retention window and at most "
                "5 minutes ahead of the server's clock (else `expired`, `future`).",
            },
            "payload": {
                "type": "object",
                "required": [name for name in payload if name != "exercises_total"],
                "properties": payload,
            },
        },
    }


EVENTS_REQUEST = {
    "oneOf": [
        *(_event_schema(event_type) for event_type in _PAYLOADS),
        {
            "type": "object",
            "required": ["events"],
            "properties": {
                "events": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                    # Each item is judged alone: one that is not an event is listed in
                    # `rejected`, and the batch still answers 200.
                    "items": {
                        "anyOf": [
                            *(_event_schema(event_type) for event_type in _PAYLOADS),
                            {"description": "Anything else: rejected, with its code."},
                        ]
                    },
                }
            },
            "additionalProperties": False,
        },
    ]
}


class RejectedItem(serializers.Serializer):
    index = serializers.IntegerField()
    event_id = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    message = serializers.CharField()


class IngestSummary(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = RejectedItem(many=True)


class EventViewSet(viewsets.GenericViewSet):
    """HTTP ingestion through the same pipeline as the Kafka consumer."""

    permission_classes = [IsServiceOrAdmin]
    queryset = InboxEvent.objects.none()

    @extend_schema(
        request={"application/json": EVENTS_REQUEST},
        responses={
            200: IngestSummary,
            409: error_response("A single event conflicts with a stored one (`conflict`)."),
        },
        description=(
            f'One event object, or `{{"events": [...]}}` with at most {MAX_BATCH}. A batch '
            "answers 200 with per-item outcomes; a single rejected event answers 422 "
            "(409 for a conflict) with its code."
        ),
        examples=[
            OpenApiExample(
                "quiz",
                value={
                    "event_id": "9b2f-1",
                    "event_type": "quiz.submitted",
                    "student_id": "s-1042",
                    "topic": "python.loops",
                    "occurred_at": "2026-11-20T14:03:11Z",
                    "payload": {"quiz_id": "q7", "score": 8, "max_score": 10},
                },
                request_only=True,
            )
        ],
    )
    def create(self, request: Request) -> Response:
        body = request.data
        if not isinstance(body, dict):
            raise ValidationFailed(
                'The body must be one event object or {"events": [...]}.', code="invalid_shape"
            )
        # A batch is exactly {"events": [...]}; any other object is one event (an event may
        # carry extra fields, even one named "events").
        single = set(body) != {"events"}
        items = [body] if single else body["events"]
        if not isinstance(items, list):
            raise ValidationFailed("events must be a list.", code="invalid_shape")
        if not items:
            raise ValidationFailed("events must not be empty.", code="empty_batch")
        if len(items) > MAX_BATCH:
            raise ValidationFailed(
                f"At most {MAX_BATCH} events per request.",
                code="batch_too_large",
                details={"max": MAX_BATCH, "received": len(items)},
            )
        result = ingest_batch(items, source=InboxEvent.Source.HTTP)
        rejected = [
            {"index": r.index, "event_id": r.event_id, "code": r.code, "message": r.message}
            for r in result.rejected
        ]
        if single and rejected:
            item = rejected[0]
            error: type[ApplicationError] = (
                Conflict if item["code"] == CONFLICT else ValidationFailed
            )
            raise error(item["message"], code=item["code"], details={"event_id": item["event_id"]})
        summary = {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": rejected,
        }
        return Response(summary, status=status.HTTP_200_OK)
