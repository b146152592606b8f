"""The OpenAPI schema states what the service answers (issue 9, defect 6): for every
operation its error responses with the envelope, closed request bodies where unknown keys
are refused, the real status codes, and a validated `?page=`. Where a fact can be checked
against the running API, it is."""

import json
import re

import jsonschema
import pytest
from django.conf import settings
from django.test import override_settings
from drf_spectacular.validation import validate_schema

from mastery_project.serializers import StrictSerializer
from tests.factories import TopicFactory, UserFactory

pytestmark = pytest.mark.django_db

ERROR_REF = "#/components/schemas/Error"
PROCESS_ERROR_REF = "#/components/schemas/ProcessErrorResponse"
BODY_ERRORS = {"400", "413", "415", "422"}


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def component(schema: dict, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def body_schema(schema: dict, operation: dict) -> dict | None:
    body = operation.get("requestBody")
    if body is None:
        return None
    media = body["content"]["application/json"]["schema"]
    return component(schema, media["$ref"]) if "$ref" in media else media


def strict_serializers(cls=StrictSerializer):
    for sub in cls.__subclasses__():
        yield sub
        yield from strict_serializers(sub)


def test_the_schema_is_valid_openapi(schema):
    validate_schema(schema)


def test_every_error_response_is_the_envelope(schema):
    envelope = component(schema, ERROR_REF)
    assert envelope["required"] == ["error"]
    assert envelope["additionalProperties"] is False
    body = component(schema, envelope["properties"]["error"]["$ref"])
    assert set(body["required"]) == {"code", "message", "details"}
    only_the_envelope = {"application/json": {"schema": {"$ref": ERROR_REF}}}
    # /process answers its refusals inside its own envelope (SPEC §3.5), the error in it
    # the same body; only a body over the limit is refused before it, in the plain one.
    process = component(schema, PROCESS_ERROR_REF)
    assert process["properties"]["error"] == envelope["properties"]["error"]
    for path, method, operation in operations(schema):
        for status, response in operation["responses"].items():
            if status >= "400":
                expected = only_the_envelope
                if path == "/api/v1/process/" and status != "413":
                    expected = {"application/json": {"schema": {"$ref": PROCESS_ERROR_REF}}}
                assert response["content"] == expected, (method, path, status)
                assert response["description"], (method, path, status)


def test_every_operation_documents_the_errors_its_facts_make_possible(schema):
    for path, method, operation in operations(schema):
        where = (method, path)
        codes = set(operation["responses"])
        assert "503" in codes, where
        assert "Retry-After" in operation["responses"]["503"]["headers"], where
        assert [c for c in codes if c < "300"], where
        if operation.get("security") or "/auth/token" in path:
            assert "401" in codes, where
        if "requestBody" in operation:
            assert codes >= BODY_ERRORS, where
        if "{" in path:
            assert "404" in codes, where
        if any(p["name"] == "page" for p in operation.get("parameters", [])):
            assert {"404", "422"} <= codes, where
        if "429" in codes:
            assert "Retry-After" in operation["responses"]["429"]["headers"], where
        assert "500" not in codes, where


def statuses(schema: dict, method: str, path: str) -> set[str]:
    return set(schema["paths"][path][method.lower()]["responses"])


def test_what_only_the_views_know_is_documented(schema):
    events = statuses(schema, "POST", "/api/v1/events/")
    assert "200" in events
    assert "201" not in events
    assert {"403", "409"} <= events
    for path in ("/api/v1/mastery/query/", "/api/v1/mastery/calculate/"):
        assert "429" in statuses(schema, "POST", path)
    assert "404" in statuses(schema, "POST", "/api/v1/mastery/query/")
    # Any authenticated caller may calculate, and it names nothing to look up.
    assert not {"403", "404"} & statuses(schema, "POST", "/api/v1/mastery/calculate/")
    assert "429" not in statuses(schema, "GET", "/api/v1/students/")
    for method, path in [
        ("DELETE", "/api/v1/compliance/student/{student_id}/"),
        ("GET", "/api/v1/compliance/student/{student_id}/export/"),
        ("PUT", "/api/v1/compliance/student/{student_id}/consent/"),
    ]:
        assert "403" in statuses(schema, method, path)


def test_the_events_example_is_a_request_not_a_response(schema):
    operation = schema["paths"]["/api/v1/events/"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["examples"]
    assert "examples" not in operation["responses"]["200"]["content"]["application/json"]


def test_every_strict_request_body_is_closed_and_no_other_is(schema):
    strict = {f"{cls.__name__.removesuffix('Serializer')}Request" for cls in strict_serializers()}
    requests = {name for name in schema["components"]["schemas"] if name.endswith("Request")}
    assert {"MasteryQueryInputRequest", "CalculateInputRequest", "ConsentInputRequest"} <= (
        strict & requests
    )
    for name in requests:
        closed = schema["components"]["schemas"][name].get("additionalProperties") is False
        assert closed == (name in strict), name


def fill(path: str) -> str:
    return re.sub(r"\{[a-z_]+\}", "s-nobody", path)


def test_a_closed_request_body_refuses_an_unknown_key_as_documented(schema, client_for):
    admin = client_for(UserFactory(role="admin"))
    closed = [
        (path, method)
        for path, method, operation in operations(schema)
        if (body_schema(schema, operation) or {}).get("additionalProperties") is False
    ]
    assert len(closed) >= 3
    for path, method in closed:
        response = admin.generic(
            method, fill(path), json.dumps({"no_such_field": 1}), "application/json"
        )
        assert response.status_code == 422, (method, path, response.content)
        assert "no_such_field" in response.json()["error"]["details"], (method, path)


def test_real_error_responses_match_the_documented_envelope(schema, client_for, api_client):
    # The Error component, with the components its $refs name, as one JSON Schema.
    envelope = {**component(schema, ERROR_REF), "components": schema["components"]}
    validator = jsonschema.Draft4Validator(envelope)
    admin = client_for(UserFactory(role="admin"))
    student = client_for(UserFactory(role="student"))
    calculate = "/api/v1/mastery/calculate"
    with override_settings(RATE_LIMIT_MASTERY="1/m"):
        admin.post(calculate, {}, format="json")
        limited = admin.post(calculate, {}, format="json")
    answers = {
        400: admin.post(calculate, data=b"{", content_type="application/json"),
        401: api_client.get("/api/v1/topics/"),
        403: student.post("/api/v1/events", {}, format="json"),
        404: admin.get("/api/v1/students/s-nobody/"),
        413: admin.generic(
            "POST",
            calculate,
            b" " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
            "application/json",
        ),
        415: admin.post(calculate, data="a=1", content_type="text/plain"),
        422: admin.post(calculate, {"quiz": 2}, format="json"),
        429: limited,
    }
    for status, response in answers.items():
        assert response.status_code == status, response.content
        validator.validate(response.json())
    assert int(limited["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "query",
    [
        *("page=", "page=abc", "page=0", "page=-1", "page=+1", "page=%201", "page=1_0"),
        *("page=01", "page=%D9%A3", "page=last", "page=1&page=2", "page=1.0"),
    ],
)
def test_a_page_that_is_not_one_positive_integer_is_422(client_for, query):
    response = client_for(UserFactory(role="admin")).get(f"/api/v1/topics/?{query}")
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["details"]) == ["page"]


@pytest.mark.parametrize("page", ["2", "9" * 30])
def test_a_page_past_the_last_is_404(client_for, page):
    TopicFactory()
    response = client_for(UserFactory(role="admin")).get(f"/api/v1/topics/?page={page}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_page_one_is_served_with_or_without_the_parameter(client_for):
    TopicFactory()
    admin = client_for(UserFactory(role="admin"))
    assert admin.get("/api/v1/topics/?page=1").json() == admin.get("/api/v1/topics/").json()


def test_every_paginated_operation_documents_the_page_rule(schema):
    paginated = [
        (path, operation)
        for path, method, operation in operations(schema)
        if any(p["name"] == "page" for p in operation.get("parameters", []))
    ]
    assert {path for path, _ in paginated} >= {
        "/api/v1/students/",
        "/api/v1/topics/",
        "/api/v1/cohorts/",
    }
    for _, operation in paginated:
        (page,) = [p for p in operation["parameters"] if p["name"] == "page"]
        assert page["schema"] == {"type": "integer", "minimum": 1}
