"""POST /api/v1/events: HTTP ingestion through the one pipeline (SPEC §2.2, §3)."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from ingest.models import InboxEvent
from mastery.models import MasteryRecord, Snapshot, Student, Topic

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events"


def post(client: APIClient, body, path: str = EVENTS):
    return client.post(path, body, format="json")


def post_raw(client: APIClient, raw: bytes):
    return client.post(EVENTS, data=raw, content_type="application/json")


def nothing_written(*, student_id: str = "s-http") -> bool:
    return (
        InboxEvent.objects.count() == 0
        and MasteryRecord.objects.count() == 0
        and Snapshot.objects.count() == 0
        and not Student.objects.filter(student_id=student_id).exists()
    )


def record_values(student_id: str = "s-http") -> list[tuple]:
    return list(
        MasteryRecord.objects.filter(student__student_id=student_id)
        .order_by("topic__slug")
        .values_list("topic__slug", "completion", "quiz", "quality", "consistency", "mastery")
    )


# --- who may ingest ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 401), ("student", 403), ("teacher", 403), ("admin", 200), ("service", 200)],
)
@pytest.mark.parametrize("path", [EVENTS, EVENTS + "/"])
def test_events_ingest_is_open_to_service_and_admin_only(
    users, client_for, make_event, role, status, path
):
    client = APIClient() if role == "anonymous" else client_for(users[role])
    response = post(client, make_event(), path)
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
        assert InboxEvent.objects.count() == 1
    else:
        code = "not_authenticated" if status == 401 else "forbidden"
        assert response.json()["error"]["code"] == code
        assert nothing_written()


@pytest.mark.parametrize("role", ["student", "teacher"])
def test_a_refused_role_cannot_ingest_a_batch_either(users, client_for, make_event, role):
    response = post(client_for(users[role]), {"events": [make_event(), make_event()]})
    assert response.status_code == 403
    assert nothing_written()


@pytest.mark.parametrize(
    "token",
    [
        lambda user: str(RefreshToken.for_user(user)),
        lambda user: _expired(user),
        lambda user: "not-a-jwt",
    ],
    ids=["refresh-as-access", "expired", "garbage"],
)
def test_a_service_with_an_invalid_token_gets_401(users, make_event, token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token(users['service'])}")
    response = post(client, make_event())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert nothing_written()


def _expired(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1))
    return str(token)


def test_events_refuse_get(service_client):
    assert service_client.get(EVENTS).status_code == 405


# --- one event ---------------------------------------------------------------------------


def test_a_valid_event_is_accepted_and_applied(service_client, make_event):
    event = make_event("code.reviewed", payload={"submission_id": "x", "quality_score": 0.5})
    response = post(service_client, event)
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    row = InboxEvent.objects.get()
    assert row.event_id == event["event_id"]
    assert row.source == "http"
    assert Student.objects.filter(student_id="s-http").exists()
    assert Topic.objects.filter(slug="python.loops").exists()
    assert record_values() == [("python.loops", 0.0, 0.0, 0.5, 1 / 14, round(0.1 + 0.1 / 14, 4))]


def test_the_same_event_again_is_a_duplicate_and_not_applied_twice(service_client, make_event):
    event = make_event("exercise.completed")
    assert post(service_client, event).json()["accepted"] == 1
    before = record_values()
    response = post(service_client, event)
    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert InboxEvent.objects.count() == 1
    assert record_values() == before


def test_key_order_and_whitespace_do_not_make_a_different_event(service_client, make_event):
    event = make_event()
    assert post(service_client, event).json()["accepted"] == 1
    reordered = dict(reversed(list(event.items())))
    response = post_raw(service_client, json.dumps(reordered, indent=4).encode())
    assert response.json() == {"accepted": 0, "duplicates": 1, "rejected": []}


def test_the_same_event_id_with_other_content_is_a_409_conflict(service_client, make_event):
    event = make_event()
    assert post(service_client, event).json()["accepted"] == 1
    before = record_values()
    changed = {**event, "payload": {"quiz_id": "q-1", "score": 1, "max_score": 10}}
    response = post(service_client, changed)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert error["details"] == {"event_id": event["event_id"]}
    assert InboxEvent.objects.count() == 1
    assert InboxEvent.objects.get().payload == event["payload"]
    assert record_values() == before


NOW = datetime.now(UTC)
INVALID_EVENTS = {
    "no event_id": (lambda e: e.pop("event_id"), "missing_field"),
    "null event_id": (lambda e: e.update(event_id=None), "missing_field"),
    "no student_id": (lambda e: e.pop("student_id"), "missing_field"),
    "no topic": (lambda e: e.pop("topic"), "missing_field"),
    "no occurred_at": (lambda e: e.pop("occurred_at"), "missing_field"),
    "no payload": (lambda e: e.pop("payload"), "missing_field"),
    "no payload.score": (lambda e: e["payload"].pop("score"), "missing_field"),
    "event_id too long": (lambda e: e.update(event_id="e" * 101), "invalid_field"),
    "event_id not printable": (lambda e: e.update(event_id="e\n1"), "invalid_field"),
    "event_id a number": (lambda e: e.update(event_id=17), "invalid_field"),
    "student_id with a space": (lambda e: e.update(student_id="s http"), "invalid_field"),
    "student_id too long": (lambda e: e.update(student_id="s" * 65), "invalid_field"),
    "topic with uppercase": (lambda e: e.update(topic="Python.Loops"), "invalid_field"),
    "occurred_at without a timezone": (
        lambda e: e.update(occurred_at=NOW.replace(tzinfo=None).isoformat()),
        "invalid_field",
    ),
    "occurred_at not a date": (lambda e: e.update(occurred_at="yesterday"), "invalid_field"),
    "payload a list": (lambda e: e.update(payload=[1]), "invalid_field"),
    "score above max_score": (lambda e: e["payload"].update(score=11), "invalid_field"),
    "negative score": (lambda e: e["payload"].update(score=-1), "invalid_field"),
    "zero max_score": (lambda e: e["payload"].update(score=0, max_score=0), "invalid_field"),
    "boolean score": (lambda e: e["payload"].update(score=True), "invalid_field"),
    "string score": (lambda e: e["payload"].update(score="8"), "invalid_field"),
    "event_type a number": (lambda e: e.update(event_type=3), "invalid_field"),
    "unknown event_type": (lambda e: e.update(event_type="quiz.graded"), "unknown_event_type"),
    "older than the retention window": (
        lambda e: e.update(occurred_at=(NOW - timedelta(days=91)).isoformat()),
        "expired",
    ),
    "in the future": (
        lambda e: e.update(occurred_at=(datetime.now(UTC) + timedelta(minutes=10)).isoformat()),
        "future",
    ),
}


@pytest.mark.parametrize(("mutate", "code"), INVALID_EVENTS.values(), ids=INVALID_EVENTS.keys())
def test_a_single_invalid_event_is_422_with_its_domain_code(
    service_client, make_event, mutate, code
):
    event = make_event()
    mutate(event)
    response = post(service_client, event)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert nothing_written()


def test_a_single_rejection_names_the_event_id_once_it_is_known(service_client, make_event):
    event = make_event(event_type="quiz.graded", event_id="e-known")
    response = post(service_client, event)
    assert response.json()["error"]["details"] == {"event_id": "e-known"}


@pytest.mark.parametrize(
    ("quality", "code"),
    [(0, None), (1, None), (1.0001, "invalid_field"), (-0.0001, "invalid_field")],
)
def test_code_review_quality_must_lie_in_the_unit_interval(
    service_client, make_event, quality, code
):
    event = make_event("code.reviewed", payload={"submission_id": "s", "quality_score": quality})
    response = post(service_client, event)
    if code is None:
        assert response.status_code == 200
    else:
        assert response.status_code == 422
        assert response.json()["error"]["code"] == code
        assert nothing_written()


def test_an_event_a_few_minutes_ahead_is_accepted(service_client, make_event):
    ahead = (datetime.now(UTC) + timedelta(minutes=3)).isoformat()
    assert post(service_client, make_event(occurred_at=ahead)).status_code == 200


def test_an_overflowing_number_is_refused_not_a_500(service_client, make_event):
    raw = (
        b'{"event_id": "e-big", "event_type": "quiz.submitted", "student_id": "s-http", '
        b'"topic": "python.loops", "occurred_at": "'
        + make_event()["occurred_at"].encode()
        + b'", "payload": {"quiz_id": "q", "score": 1e400, "max_score": 1e400}}'
    )
    response = post_raw(service_client, raw)
    assert response.status_code in (400, 422)
    assert nothing_written()


def test_a_non_finite_number_in_an_extra_field_is_refused_not_a_500(service_client, make_event):
    raw = (
        b'{"event_id": "e-big", "event_type": "session.completed", "student_id": "s-http", '
        b'"topic": "python.loops", "occurred_at": "'
        + make_event()["occurred_at"].encode()
        + b'", "payload": {"duration_minutes": 5, "note": 1e400}}'
    )
    response = post_raw(service_client, raw)
    assert response.status_code in (400, 422)
    assert nothing_written()


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_literals_are_refused_not_a_500(service_client, make_event, literal):
    raw = (
        b'{"event_id": "e-nan", "event_type": "session.completed", "student_id": "s-http", '
        b'"topic": "python.loops", "occurred_at": "'
        + make_event()["occurred_at"].encode()
        + b'", "payload": {"duration_minutes": '
        + literal
        + b"}}"
    )
    response = post_raw(service_client, raw)
    assert response.status_code in (400, 422)
    assert nothing_written()


# --- body shapes -------------------------------------------------------------------------


def test_malformed_json_is_400_malformed_request(service_client):
    response = post_raw(service_client, b'{"event_id": "e-1",')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert nothing_written()


@pytest.mark.parametrize(
    "raw", [b"[]", b'[{"event_id": "e-1"}]', b'"event"', b"42", b"null", b"true"]
)
def test_a_body_that_is_not_an_object_is_422(service_client, raw):
    response = post_raw(service_client, raw)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_shape"
    assert nothing_written()


@pytest.mark.parametrize("events", [{}, "e-1", None, 42], ids=["object", "string", "null", "int"])
def test_events_that_are_not_a_list_are_422(service_client, events):
    response = post(service_client, {"events": events})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_shape"
    assert nothing_written()


def test_an_empty_batch_is_422(service_client):
    response = post(service_client, {"events": []})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "empty_batch"


def test_a_batch_over_1000_is_422_and_writes_nothing(service_client, make_event):
    before = InboxEvent.objects.count()
    response = post(service_client, {"events": [make_event() for _ in range(1001)]})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "batch_too_large"
    assert error["details"] == {"max": 1000, "received": 1001}
    assert InboxEvent.objects.count() == before
    assert nothing_written()


def test_a_batch_of_exactly_1000_is_accepted(service_client, make_event):
    events = [make_event("session.completed") for _ in range(1000)]
    response = post(service_client, {"events": events})
    assert response.status_code == 200
    assert response.json() == {"accepted": 1000, "duplicates": 0, "rejected": []}
    assert InboxEvent.objects.count() == 1000
    assert MasteryRecord.objects.count() == 1


def test_deeply_nested_json_is_refused_not_a_500(service_client):
    service_client.raise_request_exception = False
    raw = b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = post_raw(service_client, raw)
    assert response.status_code in (400, 422)
    assert nothing_written()


# --- batches -----------------------------------------------------------------------------


def test_a_mixed_batch_reports_each_rejection_and_applies_the_rest(service_client, make_event):
    ok_quiz = make_event(event_id="b-ok-1")
    ok_review = make_event(
        "code.reviewed", event_id="b-ok-2", payload={"submission_id": "s", "quality_score": 1}
    )
    missing = make_event(event_id="b-missing", student_id="s-never-1")
    del missing["topic"]
    unknown = make_event(event_id="b-unknown", event_type="quiz.graded", student_id="s-never-2")
    expired = make_event(
        event_id="b-old",
        student_id="s-never-3",
        occurred_at=(datetime.now(UTC) - timedelta(days=120)).isoformat(),
    )
    future = make_event(
        event_id="b-future",
        student_id="s-never-4",
        occurred_at=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
    )
    conflicting = {**ok_quiz, "payload": {"quiz_id": "q-1", "score": 0, "max_score": 10}}
    no_id = make_event(student_id="s-never-5")
    del no_id["event_id"]
    batch = [
        ok_quiz,
        missing,
        ok_review,
        unknown,
        dict(ok_quiz),
        expired,
        conflicting,
        future,
        no_id,
    ]

    response = post(service_client, {"events": batch})

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 1)
    assert [(r["index"], r["event_id"], r["code"]) for r in body["rejected"]] == [
        (1, "b-missing", "missing_field"),
        (3, "b-unknown", "unknown_event_type"),
        (5, "b-old", "expired"),
        (6, "b-ok-1", "conflict"),
        (7, "b-future", "future"),
        (8, None, "missing_field"),
    ]
    assert all(r["message"] for r in body["rejected"])
    assert set(InboxEvent.objects.values_list("event_id", flat=True)) == {"b-ok-1", "b-ok-2"}
    assert InboxEvent.objects.get(event_id="b-ok-1").payload == ok_quiz["payload"]
    assert not Student.objects.filter(student_id__startswith="s-never").exists()
    assert record_values() == [("python.loops", 0.0, 0.8, 1.0, 1 / 14, 0.4471)]


def test_a_batch_resending_stored_events_counts_duplicates_and_conflicts(
    service_client, make_event
):
    first, second = make_event(), make_event()
    post(service_client, {"events": [first, second]})
    changed = {**first, "topic": "python.functions"}
    response = post(service_client, {"events": [second, first, changed]})
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (0, 2)
    assert [(r["index"], r["event_id"], r["code"]) for r in body["rejected"]] == [
        (2, first["event_id"], "conflict")
    ]
    assert not Topic.objects.filter(slug="python.functions").exists()


def test_a_stored_event_is_a_duplicate_even_after_a_conflicting_twin_in_the_batch(
    service_client, make_event
):
    """The outcome of an already-accepted event must not depend on what precedes it."""
    first = make_event()
    post(service_client, first)
    changed = {**first, "topic": "python.functions"}
    response = post(service_client, {"events": [changed, first]})
    body = response.json()
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(0, "conflict")]
    assert (body["accepted"], body["duplicates"]) == (0, 1)
    assert not Topic.objects.filter(slug="python.functions").exists()


def test_a_batch_gives_the_same_state_in_any_order(service_client, users, make_event):
    events = [
        make_event("exercise.completed", payload={"exercise_id": f"ex-{i}"}) for i in range(3)
    ] + [make_event(payload={"quiz_id": f"q-{i}", "score": i, "max_score": 10}) for i in range(7)]
    post(service_client, {"events": events[::2]})
    post(service_client, {"events": list(reversed(events))})
    after_http = record_values()
    assert InboxEvent.objects.count() == 10
    # The same set again, in a third order, changes nothing.
    response = post(service_client, {"events": events[1::2] + events[::2]})
    assert response.json()["duplicates"] == 10
    assert record_values() == after_http


@pytest.mark.parametrize(
    "item", [42, None, True, ["event"], 1.5], ids=["int", "null", "bool", "list", "float"]
)
def test_a_batch_item_that_is_not_an_object_is_rejected_not_a_500(service_client, make_event, item):
    service_client.raise_request_exception = False
    good = make_event()
    response = post(service_client, {"events": [good, item]})
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["event_id"], r["code"]) for r in body["rejected"]] == [
        (1, None, "invalid_shape")
    ]


def test_a_batch_item_that_is_a_json_encoded_string_is_not_an_event(service_client, make_event):
    """Each item must be an event object; a string holding JSON is not one (SPEC §2.2)."""
    smuggled = make_event(student_id="s-smuggled")
    response = post(service_client, {"events": [json.dumps(smuggled)]})
    assert response.status_code == 200
    assert response.json()["accepted"] == 0
    assert [r["code"] for r in response.json()["rejected"]] == ["invalid_shape"]
    assert not Student.objects.filter(student_id="s-smuggled").exists()
