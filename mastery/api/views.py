from collections.abc import Callable

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from compliance.services.audit import audit_log_write, student_ref_for_missing
from mastery import selectors
from mastery.api import serializers as s
from mastery.domain import ids
from mastery.domain.formula import Components, breakdown, level_for, mastery_score
from mastery.policy import current_policy
from mastery_project.errors import NotFound
from mastery_project.ratelimit import rate_limited


class StudentAccessMixin:
    """Resolves a student the caller may see (404 otherwise) and audits the attempt either
    way; `audit_found=False` when the service it hands over to audits the success itself."""

    def audited(
        self,
        request: Request,
        student_id: str,
        *,
        action: str,
        fetch: Callable,
        audit_found: bool = True,
    ):
        try:
            found = fetch()
        except (NotFound, Http404):
            audit_log_write(
                request=request,
                action=action,
                student_refs=[student_ref_for_missing(student_id)],
                resource=request.path,
                outcome="not_found",
            )
            raise NotFound("No such student.", code="student_not_found") from None
        if audit_found:
            audit_log_write(
                request=request, action=action, student_refs=[student_id], resource=request.path
            )
        return found

    def visible_student(
        self, request: Request, student_id: str, *, action: str, audit_found: bool = True
    ):
        return self.audited(
            request,
            student_id,
            action=action,
            fetch=lambda: selectors.student_get_visible(request.user, student_id),
            audit_found=audit_found,
        )


class MasteryViewSet(StudentAccessMixin, viewsets.GenericViewSet):
    """Current mastery of a student, and the formula as a calculator."""

    @extend_schema(request=s.MasteryQueryInput, responses=s.MasteryQueryOutput)
    @action(detail=False, methods=["post"])
    @rate_limited()
    def query(self, request: Request) -> Response:
        params = s.MasteryQueryInput(data=request.data)
        params.is_valid(raise_exception=True)
        student = self.visible_student(
            request, params.validated_data["student_id"], action="mastery.query"
        )
        result = selectors.mastery_for_student(student, topic=params.validated_data.get("topic"))
        return Response(s.MasteryQueryOutput(result).data)

    @extend_schema(request=s.CalculateInput, responses=s.CalculateOutput)
    @action(detail=False, methods=["post"])
    @rate_limited()
    def calculate(self, request: Request) -> Response:
        params = s.CalculateInput(data=request.data)
        params.is_valid(raise_exception=True)
        weights = current_policy().weights
        components = Components(**params.validated_data)
        score = mastery_score(components, weights)
        return Response(
            {
                "mastery": score,
                "level": level_for(score),
                "breakdown": breakdown(components, weights),
            }
        )


class StudentViewSet(StudentAccessMixin, viewsets.ReadOnlyModelViewSet):
    """Students the caller may see; `?cohort=<cohort_id>` narrows the list."""

    serializer_class = s.StudentSerializer
    lookup_field = "student_id"
    lookup_value_regex = ids.STUDENT_ID

    def get_queryset(self):
        return selectors.student_list(
            self.request.user, cohort_id=self.request.query_params.get("cohort")
        )

    def list(self, request: Request, *args, **kwargs) -> Response:
        response = super().list(request, *args, **kwargs)
        refs = [item["student_id"] for item in response.data["results"]]
        if refs:
            audit_log_write(
                request=request, action="student.list", student_refs=refs, resource=request.path
            )
        return response

    def retrieve(self, request: Request, *args, student_id: str, **kwargs) -> Response:
        student = self.audited(
            request, student_id, action="student.retrieve", fetch=self.get_object
        )
        return Response(self.get_serializer(student).data)


class TopicViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = s.TopicSerializer
    lookup_field = "slug"
    lookup_value_regex = ids.TOPIC_SLUG

    def get_queryset(self):
        return selectors.topic_list()

    def get_serializer_context(self) -> dict:
        return {
            **super().get_serializer_context(),
            "exercises_total": selectors.topic_exercises_total,
        }


class CohortViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.CohortSerializer
    lookup_field = "cohort_id"
    lookup_value_regex = ids.COHORT_ID

    def get_queryset(self):
        return selectors.cohort_list(self.request.user)
