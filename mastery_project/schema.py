"""The OpenAPI schema states what every operation answers, its errors included (SPEC §3).

`MasteryAutoSchema` (REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS) adds to each operation the
error responses that its own facts make possible, each with the envelope as its body:

- 400 malformed: always, since a NUL character in the path or query string is refused
  before any view (`mastery_project.security`); and a body that is not JSON;
- 413 too large, 415 not JSON, 422 invalid: the operation takes a body;
- 401: it checks a bearer token, or credentials (the token endpoints);
- 403: a permission beyond "authenticated" can refuse the caller's role;
- 404: its path names a resource, its body names a student or another `*_id`, or it is a
  paginated list (a page past the last); 422 for a `?page=` that is not one integer;
- 429 with `Retry-After`: the view method is `mastery_project.ratelimit.rate_limited`;
- 503 with `Retry-After`: always, since every operation reads PostgreSQL or Redis.

A view documents what only it knows (409 for a conflict, a 200 where DRF assumes 201) in its
own `@extend_schema(responses=...)`, with `error_response`; what a view states is kept.
Request bodies of `StrictSerializer`s get `additionalProperties: false`, as they refuse
unknown keys. A request serializer states the limits its fields cannot say (how many ids,
distinct, exactly one of two keys) in `openapi_extra`, JSON Schema keywords merged into its
component, e.g. `{"properties": {"cohort_ids": {"uniqueItems": True}}}`.
"""

import re

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance, is_serializer
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import permissions, serializers
from rest_framework_simplejwt.views import TokenViewBase

from mastery_project.serializers import StrictSerializer

BODY_METHODS = ("POST", "PUT", "PATCH")
# Body fields whose value is looked up, so that an unknown one answers 404.
_LOOKUP_FIELD = re.compile(r"[a-z_]+_ids?")
_OPEN_PERMISSIONS = (permissions.AllowAny, permissions.IsAuthenticated)
_RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 1},
        "description": "Seconds to wait before retrying.",
    }
}

DESCRIPTIONS = {
    400: "Malformed: the body is not JSON, or the path or query string holds a NUL character "
    "(`malformed_request`).",
    401: "No valid bearer token or credentials (`not_authenticated`, `authentication_failed`).",
    403: "The caller's role may not take this action (`forbidden`).",
    404: "Not found, or a student the caller may not see (`not_found`, `student_not_found`, …).",
    413: "The body is larger than the upload limit (`payload_too_large`).",
    415: "The body is not `application/json` (`unsupported_media_type`).",
    422: "Well-formed but invalid (`validation_error` and others); `details` says where.",
    429: "Rate limited (`rate_limited`); retry after `Retry-After` seconds.",
    503: "A backing service is unavailable (`service_unavailable`); nothing was applied.",
}


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable, e.g. `validation_error`.")
    message = serializers.CharField(help_text="For people.")
    details = serializers.DictField(
        help_text="Per-field messages for `validation_error`; otherwise what the code needs."
    )


class ErrorSerializer(serializers.Serializer):
    """The one error envelope."""

    error = ErrorBodySerializer()


_CLOSED = (ErrorSerializer, ErrorBodySerializer)


def error_response(description: str) -> OpenApiResponse:
    """An error response with the envelope, for a view's own `@extend_schema(responses=)`."""
    return OpenApiResponse(ErrorSerializer, description=description)


def _merged(schema: dict, extra: dict) -> dict:
    """`schema` with the keywords of `extra`, merged into nested objects key by key."""
    merged = dict(schema)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _requires_a_key(schema: dict) -> bool:
    """Whether no object without keys is valid: it requires one, or each of its choices does."""
    choices = schema.get("oneOf") or schema.get("anyOf")
    if choices:
        return all(_requires_a_key(choice) for choice in choices)
    return bool(schema.get("required"))


def _needs_a_key(request) -> bool:
    """Whether a request body so declared must hold a key (so it cannot be left out)."""
    if isinstance(request, dict):  # a raw schema per media type
        return _requires_a_key(request.get("application/json") or {})
    if isinstance(request, PolymorphicProxySerializer):
        choices = request.serializers
        return all(_needs_a_key(choice) for choice in getattr(choices, "values", lambda: choices)())
    serializer = force_instance(request)
    if not is_serializer(serializer):
        return False
    extra = getattr(serializer, "openapi_extra", None) or {}
    return any(field.required for field in serializer.fields.values()) or _requires_a_key(extra)


class MasteryAutoSchema(AutoSchema):
    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        serializer = force_instance(serializer)
        if isinstance(serializer, _CLOSED) or (
            direction == "request" and isinstance(serializer, StrictSerializer)
        ):
            schema["additionalProperties"] = False
        extra = getattr(serializer, "openapi_extra", None)
        if direction == "request" and extra:
            unknown = set(extra.get("properties", {})) - set(schema.get("properties", {}))
            if unknown:
                raise ValueError(f"openapi_extra of {type(serializer).__name__} names {unknown}")
            schema = _merged(schema, extra)
        return schema

    def _get_request_body(self, direction="request"):
        # drf-spectacular requires a body only when its serializer has required fields: not
        # for a raw schema, a choice of serializers, or a oneOf in openapi_extra, which the
        # views refuse without a body too.
        body = super()._get_request_body(direction)
        if body is not None and _needs_a_key(self.get_request_serializer()):
            body["required"] = True
        return body

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status in sorted(self._error_statuses()):
            if str(status) in responses:
                continue
            response = self._get_response_for_code(
                error_response(DESCRIPTIONS[status]), str(status), ["application/json"]
            )
            responses[str(status)] = response
        for status in ("429", "503"):  # the view's own too: the handler always sets it
            if status in responses:
                responses[status].setdefault("headers", dict(_RETRY_AFTER))
        return responses

    def _error_statuses(self) -> set[int]:
        statuses = {400, 503}
        has_body = self.method in BODY_METHODS and self.get_request_serializer() is not None
        if has_body:
            statuses |= {413, 415, 422}
        if self.get_auth() or isinstance(self.view, TokenViewBase):
            statuses.add(401)
        if any(not isinstance(p, _OPEN_PERMISSIONS) for p in self.view.get_permissions()):
            statuses.add(403)
        if "{" in self.path or (has_body and self._body_names_a_lookup()):
            statuses.add(404)
        if self._is_list_view() and self._get_paginator():
            statuses |= {404, 422}
        if getattr(self._view_method(), "rate_limit_group", None):
            statuses.add(429)
        return statuses

    def _body_names_a_lookup(self) -> bool:
        serializer = force_instance(self.get_request_serializer())
        return is_serializer(serializer) and any(
            _LOOKUP_FIELD.fullmatch(name) for name in serializer.fields
        )

    def _view_method(self):
        return getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
