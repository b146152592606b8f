"""Batch jobs over the API (SPEC §3.4): submit, then follow the job's status.

`batch_submit_answer` is the submit endpoint's whole path (validation, the service call);
`/process` runs it for its `batch_process` intent.
"""

from collections import Counter

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.models.batch import BatchJob
from analytics.selectors.batch import batch_job_get, batch_job_outcomes, batch_outcome_mastery
from analytics.services.batch import NOT_FOUND, batch_job_submit
from mastery.serializers import MasteryQueryOutput
from mastery_project.access import IsTeacherOrAdmin, students_read_audit
from mastery_project.pagination import StrictPageNumberPagination
from mastery_project.schema import error_response
from mastery_project.serializers import StrictSerializer, student_id_field, topic_field

MAX_STUDENTS = 10_000


class BatchSubmitInput(StrictSerializer):
    student_ids = serializers.ListField(
        child=student_id_field(),
        min_length=1,
        max_length=MAX_STUDENTS,
        help_text=f"1 to {MAX_STUDENTS:,} distinct student ids.",
    )
    priority = serializers.ChoiceField(
        choices=BatchJob.Priority.choices,
        default=BatchJob.Priority.NORMAL,
        help_text="A high job queued after low ones runs before them.",
    )
    topic = topic_field(required=False, help_text="Only this topic's records (default: all).")
    openapi_extra = {"properties": {"student_ids": {"uniqueItems": True}}}

    def validate_student_ids(self, value: list[str]) -> list[str]:
        repeated = sorted(s for s, n in Counter(value).items() if n > 1)
        if repeated:
            raise serializers.ValidationError(f"Ids given more than once: {', '.join(repeated)}.")
        return value


class BatchSubmitOutput(serializers.Serializer):
    batch_id = serializers.UUIDField(source="pk")
    status = serializers.ChoiceField(choices=BatchJob.Status.choices)


class BatchErrorOutput(serializers.Serializer):
    student_id = serializers.CharField()
    code = serializers.ChoiceField(choices=[NOT_FOUND])


class JobErrorOutput(serializers.Serializer):
    code = serializers.CharField(help_text="`worker_lost`, `topic_not_found`, …")
    message = serializers.CharField()


class BatchStatusOutput(serializers.Serializer):
    batch_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=BatchJob.Status.choices)
    priority = serializers.ChoiceField(choices=BatchJob.Priority.choices)
    topic = serializers.CharField(allow_null=True)
    total = serializers.IntegerField()
    done = serializers.IntegerField(help_text="Students rescored.")
    failed = serializers.IntegerField(help_text="Students with an error (below).")
    submitted_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = JobErrorOutput(allow_null=True, help_text="Why a failed job stopped.")
    page = serializers.IntegerField(help_text="This page of the outcomes, in the order asked.")
    pages = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = MasteryQueryOutput(
        many=True, help_text="This page's students rescored: each as `mastery/query` answers."
    )
    errors = BatchErrorOutput(many=True, help_text="This page's students not processed.")


class BatchOutcomePagination(StrictPageNumberPagination):
    def get_page_size(self, request: Request) -> int:
        return settings.BATCH_RESULTS_PAGE_SIZE


def batch_submit_answer(request: Request, data: object) -> BatchJob:
    """`POST /batch/mastery` for a teacher or an admin: the job, queued."""
    params = BatchSubmitInput(data=data)
    params.is_valid(raise_exception=True)
    values = params.validated_data
    return batch_job_submit(
        submitter=request.user,
        student_ids=values["student_ids"],
        priority=values["priority"],
        topic=values.get("topic"),
        correlation=getattr(request, "correlation_id", ""),
    )


class BatchViewSet(viewsets.GenericViewSet):
    """Bring many students up to date in one request, in the worker."""

    pagination_class = BatchOutcomePagination

    @extend_schema(
        request=BatchSubmitInput,
        responses={
            status.HTTP_202_ACCEPTED: BatchSubmitOutput,
            status.HTTP_429_TOO_MANY_REQUESTS: error_response(
                "The submitter has too many unfinished jobs (`too_many_open_batches`)."
            ),
        },
    )
    @action(detail=False, methods=["post"], permission_classes=[IsTeacherOrAdmin])
    def mastery(self, request: Request) -> Response:
        job = batch_submit_answer(request, request.data)
        return Response(BatchSubmitOutput(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "page",
                {"type": "integer", "minimum": 1},
                OpenApiParameter.QUERY,
                description="A page of the outcomes, from 1 (the default), "
                f"{settings.BATCH_RESULTS_PAGE_SIZE} students a page.",
            )
        ],
        responses={
            status.HTTP_200_OK: BatchStatusOutput,
            status.HTTP_422_UNPROCESSABLE_ENTITY: error_response(
                "`?page=` is not one positive integer (`validation_error`)."
            ),
        },
        description="The submitter's job, or any for an admin (else 404, as for a page past "
        "the last). Outcomes are paged in the order the students were asked for.",
    )
    @action(detail=False, methods=["get"], url_path=r"status/(?P<batch_id>[^/]+)")
    def batch_status(self, request: Request, batch_id: str) -> Response:
        job = batch_job_get(request.user, batch_id)
        outcomes = self.paginate_queryset(batch_job_outcomes(job))
        shown = [batch_outcome_mastery(o.mastery) for o in outcomes if not o.error_code]
        students_read_audit(
            request, action="batch.status", student_refs=[m.student_id for m in shown]
        )
        page = self.paginator.page
        body = {
            "batch_id": job.pk,
            "status": job.status,
            "priority": job.priority,
            "topic": job.topic or None,
            "total": job.total,
            "done": job.done,
            "failed": job.failed,
            "submitted_at": job.submitted_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "error": (
                {"code": job.error_code, "message": job.error_message} if job.error_code else None
            ),
            "page": page.number,
            "pages": page.paginator.num_pages,
            "next": self.paginator.get_next_link(),
            "previous": self.paginator.get_previous_link(),
            "results": shown,
            "errors": [
                {"student_id": o.student_id, "code": o.error_code} for o in outcomes if o.error_code
            ],
        }
        return Response(BatchStatusOutput(body).data)
