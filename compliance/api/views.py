from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from compliance.services.consent import student_consent_set
from compliance.services.erasure import student_erase
from compliance.services.export import student_export_stream
from mastery.domain import ids
from mastery.models import User
from mastery_project.access import role_in, student_read
from mastery_project.serializers import StrictSerializer


class ConsentInput(StrictSerializer):
    analytics = serializers.BooleanField()

    def to_internal_value(self, data):
        if isinstance(data, dict) and not isinstance(data.get("analytics", False), bool):
            raise serializers.ValidationError({"analytics": ["Must be a JSON boolean."]})
        return super().to_internal_value(data)


class ConsentOutput(serializers.Serializer):
    student_id = serializers.CharField()
    analytics = serializers.BooleanField()
    changed = serializers.BooleanField()


class ComplianceStudentViewSet(viewsets.GenericViewSet):
    """GDPR: erasure (admin), export and consent (the student itself, or an admin)."""

    lookup_field = "student_id"
    lookup_value_regex = ids.STUDENT_ID

    def get_permissions(self):
        if self.action == "destroy":
            return [role_in(User.Role.ADMIN)()]
        return [role_in(User.Role.STUDENT, User.Role.ADMIN)()]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def destroy(self, request: Request, student_id: str) -> Response:
        counts = student_erase(student_id=student_id, actor=request.user, request=request)
        return Response({"student_id": student_id, "erased": True, "rows": counts})

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def export(self, request: Request, student_id: str) -> StreamingHttpResponse:
        student = student_read(
            request, action="gdpr.export", student_id=student_id, audit_found=False
        )
        response = StreamingHttpResponse(
            student_export_stream(student=student, actor=request.user, request=request),
            content_type="application/json",
        )
        response["Content-Disposition"] = f'attachment; filename="student-{student_id}.json"'
        return response

    @extend_schema(request=ConsentInput, responses=ConsentOutput)
    @action(detail=True, methods=["put"])
    def consent(self, request: Request, student_id: str) -> Response:
        params = ConsentInput(data=request.data)
        params.is_valid(raise_exception=True)
        student = student_read(
            request, action="consent.set", student_id=student_id, audit_found=False
        )
        analytics = params.validated_data["analytics"]
        change = student_consent_set(
            student=student, analytics=analytics, actor=request.user, request=request
        )
        body = {"student_id": student_id, "analytics": analytics, "changed": change is not None}
        return Response(body, status=status.HTTP_200_OK)
