"""POST /api/v1/mastery/calculate: the formula as a calculator, and what it refuses."""

import pytest

from compliance.models import AuditLog

pytestmark = pytest.mark.django_db

CALCULATE = "/api/v1/mastery/calculate"
VALID = {"completion": 1, "quiz": 0.5, "quality": 0.5, "consistency": 0.2}


@pytest.fixture
def client(world, client_for):
    return client_for(world.users["student"])


def test_calculate_applies_the_default_weights(client):
    response = client.post(CALCULATE, VALID, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "mastery": 0.67,
        "level": "developing",
        "breakdown": {
            "completion": {"score": 1.0, "weight": 0.4, "contribution": 0.4},
            "quiz": {"score": 0.5, "weight": 0.3, "contribution": 0.15},
            "quality": {"score": 0.5, "weight": 0.2, "contribution": 0.1},
            "consistency": {"score": 0.2, "weight": 0.1, "contribution": 0.02},
        },
    }


@pytest.mark.parametrize(
    ("components", "mastery", "level"),
    [
        ((0, 0, 0, 0), 0.0, "beginner"),
        ((1, 0, 0.45, 0), 0.49, "beginner"),
        ((1, 0, 0.5, 0), 0.5, "developing"),
        ((1, 0.9, 0, 0.2), 0.69, "developing"),
        ((1, 1, 0, 0), 0.7, "proficient"),
        ((1, 1, 0.95, 0), 0.89, "proficient"),
        ((1, 1, 1, 0), 0.9, "mastered"),
        ((1, 1, 1, 1), 1.0, "mastered"),
        ((0.33333, 0.66667, 0.12345, 0.98765), 0.4568, "beginner"),
    ],
)
def test_calculate_rounds_to_four_decimals_and_bands_the_level(client, components, mastery, level):
    body = dict(zip(("completion", "quiz", "quality", "consistency"), components, strict=True))
    response = client.post(CALCULATE, body, format="json")
    assert response.status_code == 200
    assert response.json()["mastery"] == mastery
    assert response.json()["level"] == level


def test_the_breakdown_contributions_add_up_to_the_mastery(client):
    body = client.post(CALCULATE, VALID, format="json").json()
    weights = [item["weight"] for item in body["breakdown"].values()]
    contributions = [item["contribution"] for item in body["breakdown"].values()]
    assert sum(weights) == pytest.approx(1.0)
    assert round(sum(contributions), 4) == body["mastery"]


def test_calculate_writes_no_audit_entry(client):
    client.post(CALCULATE, VALID, format="json")
    assert AuditLog.objects.count() == 0


INVALID = {
    "missing field": ({"completion": 1, "quiz": 0.5, "quality": 0.5}, "consistency"),
    "a string number": ({**VALID, "quiz": "0.5"}, "quiz"),
    "a boolean": ({**VALID, "quality": True}, "quality"),
    "false": ({**VALID, "quality": False}, "quality"),
    "null": ({**VALID, "completion": None}, "completion"),
    "above one": ({**VALID, "completion": 1.5}, "completion"),
    "below zero": ({**VALID, "consistency": -0.1}, "consistency"),
    "a list": ({**VALID, "quiz": [0.5]}, "quiz"),
    "an object": ({**VALID, "quiz": {"value": 0.5}}, "quiz"),
    "an unknown extra field": ({**VALID, "bonus": 0.1}, "bonus"),
}


@pytest.mark.parametrize(("body", "field"), INVALID.values(), ids=INVALID.keys())
def test_invalid_components_are_422_naming_the_field(client, body, field):
    response = client.post(CALCULATE, body, format="json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"completion": NaN, "quiz": 0.5, "quality": 0.5, "consistency": 0.2}',
        b'{"completion": Infinity, "quiz": 0.5, "quality": 0.5, "consistency": 0.2}',
        b'{"completion": -Infinity, "quiz": 0.5, "quality": 0.5, "consistency": 0.2}',
        b'{"completion": 1e400, "quiz": 0.5, "quality": 0.5, "consistency": 0.2}',
    ],
    ids=["nan", "infinity", "minus-infinity", "overflowing-literal"],
)
def test_non_finite_numbers_are_refused_not_a_500(client, raw):
    response = client.post(CALCULATE, data=raw, content_type="application/json")
    assert response.status_code in (400, 422)
    assert response.json()["error"]["code"] in ("malformed_request", "validation_error")


def test_malformed_json_is_400_malformed_request(client):
    response = client.post(CALCULATE, data=b'{"completion": 1,', content_type="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "malformed_request"
    assert "Traceback" not in response.content.decode()


def test_invalid_utf8_is_400_malformed_request(client):
    response = client.post(
        CALCULATE, data=b'{"completion": "\xff\xfe"}', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


@pytest.mark.parametrize(
    "raw", [b"[1, 0.5, 0.5, 0.2]", b"[]", b'"0.67"', b"0.67", b"null", b"true"]
)
def test_a_body_that_is_not_an_object_is_refused_not_a_500(client, raw):
    response = client.post(CALCULATE, data=raw, content_type="application/json")
    assert response.status_code in (400, 422)
    assert response.json()["error"]["code"] in ("malformed_request", "validation_error")


def test_an_empty_body_is_refused_not_a_500(client):
    response = client.post(CALCULATE, data=b"", content_type="application/json")
    assert response.status_code in (400, 422)


def test_deeply_nested_json_is_refused_not_a_500(client):
    # Answer as a server would (the envelope of a 500) rather than re-raising in the test.
    client.raise_request_exception = False
    raw = b'{"completion": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post(CALCULATE, data=raw, content_type="application/json")
    assert response.status_code in (400, 422)
    assert response.json()["error"]["code"] in ("malformed_request", "validation_error")
