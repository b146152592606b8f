from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from mastery import selectors
from mastery.api import serializers as s
from mastery.domain import ids
from mastery.domain.formula import Components, breakdown, level_for, mastery_score
from mastery.policy import current_policy
from mastery_project.access import student_read, students_read_audit
from mastery_project.ratelimit import rate_limited


def mastery_query_answer(request: Request, data: object) -> selectors.StudentMastery:
    """`mastery/query`, and `/process` `mastery_calculation` with a `student_id`: the
    student this caller may see (audited, 404 otherwise) and its current mastery."""
    params = s.MasteryQueryInput(data=data)
    params.is_valid(raise_exception=True)
    values = params.validated_data
    topic = values.get("topic")
    student = student_read(
        request,
        action="mastery.query",
        student_id=values["student_id"],
        with_data=selectors.student_with_mastery,
        topic=topic,
    )
    return selectors.mastery_of_student(student, topic=topic)


def mastery_calculation_answer(request: Request, data: object) -> dict:
    """`mastery/calculate`, and `/process` `mastery_calculation`: the formula on the given
    components, with the weights in force."""
    params = s.CalculateInput(data=data)
    params.is_valid(raise_exception=True)
    weights = current_policy().weights
    components = Components(**params.validated_data)
    score = mastery_score(components, weights)
    return {
        "mastery": score,
        "level": level_for(score),
        "breakdown": breakdown(components, weights),
    }


class MasteryViewSet(viewsets.GenericViewSet):
    """Current mastery of a student, and the formula as a calculator."""

    @extend_schema(request=s.MasteryQueryInput, responses=s.MasteryQueryOutput)
    @action(detail=False, methods=["post"])
    @rate_limited()
    def query(self, request: Request) -> Response:
        return Response(s.MasteryQueryOutput(mastery_query_answer(request, request.data)).data)

    @extend_schema(request=s.CalculateInput, responses=s.CalculateOutput)
    @action(detail=False, methods=["post"])
    @rate_limited()
    def calculate(self, request: Request) -> Response:
        return Response(s.CalculateOutput(mastery_calculation_answer(request, request.data)).data)


class StudentViewSet(viewsets.ReadOnlyModelViewSet):
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
        students_read_audit(request, action="student.list", student_refs=refs)
        return response

    def retrieve(self, request: Request, *args, student_id: str, **kwargs) -> Response:
        student = student_read(
            request, action="student.retrieve", student_id=student_id, queryset=self.get_queryset()
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
