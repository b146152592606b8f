"""Edge cases found in review: every item gets an outcome, odd bodies never 500."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from compliance.models import AuditLog
from compliance.services.erasure import student_erase
from compliance.services.pseudonyms import student_hash
from ingest.models import InboxEvent
from ingest.pipeline import ingest_batch
from mastery.models import MasteryRecord, Snapshot
from tests.factories import PINNED_NOW, UserFactory, event_document, ingest_all

pytestmark = pytest.mark.django_db


def test_a_repeat_of_an_erased_students_event_id_still_gets_an_outcome():
    before = timezone.now() - timedelta(hours=2)
    ingest_all([event_document(student_id="s-gone", occurred_at=before)])
    student_erase(student_id="s-gone", actor=None)
    erased = event_document(student_id="s-gone", event_id="x-1", occurred_at=before)
    other = event_document(student_id="s-other", event_id="x-1", occurred_at=before)
    third = event_document(student_id="s-third", occurred_at=before)

    result = ingest_batch([erased, other, third], source="kafka")

    assert [(o.index, o.status, o.code) for o in result.outcomes] == [
        (0, "rejected", "erased"),
        (1, "accepted", None),
        (2, "accepted", None),
    ]
    assert InboxEvent.objects.get(event_id="x-1").student.student_id == "s-other"


def test_deeply_nested_json_in_an_http_event_is_refused_not_a_500(client_for):
    service = client_for(UserFactory(role="service"))
    deep = {"note": {}}
    cursor = deep["note"]
    for _ in range(900):
        cursor["n"] = {}
        cursor = cursor["n"]
    event = event_document(occurred_at=datetime.now(UTC) - timedelta(minutes=1))
    event["payload"]["extra"] = deep
    response = service.post("/api/v1/events", event, format="json")
    assert response.status_code in (400, 422)
    assert "error" in response.json()
    assert InboxEvent.objects.count() == 0


def test_an_event_that_carries_a_field_named_events_is_one_event(client_for):
    service = client_for(UserFactory(role="service"))
    event = event_document(occurred_at=datetime.now(UTC) - timedelta(minutes=1))
    event["events"] = ["platform-specific"]
    response = service.post("/api/v1/events", event, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1


def test_a_batch_body_with_other_keys_is_not_silently_half_read(client_for):
    service = client_for(UserFactory(role="service"))
    event = event_document(occurred_at=datetime.now(UTC) - timedelta(minutes=1))
    response = service.post("/api/v1/events", {"events": [event], "foo": 1}, format="json")
    assert response.status_code == 422
    assert InboxEvent.objects.count() == 0


def test_asking_for_an_erased_student_audits_its_hash_not_its_id(client_for):
    ingest_all([event_document(student_id="s-erased-x")])
    student_erase(student_id="s-erased-x", actor=None)
    admin = client_for(UserFactory(role="admin"))
    response = admin.post("/api/v1/mastery/query", {"student_id": "s-erased-x"}, format="json")
    assert response.status_code == 404
    refs = set(AuditLog.objects.values_list("student_ref", flat=True))
    assert "s-erased-x" not in refs
    assert f"erased:{student_hash('s-erased-x')}" in refs
    assert "s-erased-x" not in json.dumps(list(AuditLog.objects.values("resource", "details")))


def test_a_late_event_after_a_purge_rewrites_snapshots_from_the_full_history():
    """Snapshots keep the pair's facts, so a replay does not need purged events.

    The pipeline is judged at a pinned instant: "today at noon" read from the real clock
    is in the future every morning, and such an event is refused as `future`."""
    today = PINNED_NOW.replace(hour=12, minute=0)
    exercises = [
        event_document(
            "exercise.completed",
            student_id="s-purged",
            topic="t.purge",
            occurred_at=today - timedelta(days=days_ago),
            exercise_id=f"ex-{days_ago}",
        )
        for days_ago in (6, 5, 4, 0)
    ]
    ingest_all(exercises, now=PINNED_NOW)
    # What purge_expired does to events past the window: the facts stay in the record.
    InboxEvent.objects.filter(occurred_at__lt=today - timedelta(days=3)).delete()
    late = event_document(
        "exercise.completed",
        student_id="s-purged",
        topic="t.purge",
        occurred_at=today - timedelta(days=1),
        exercise_id="ex-1",
    )
    ingest_all([late], now=PINNED_NOW)

    record = MasteryRecord.objects.get(student__student_id="s-purged")
    latest = Snapshot.objects.filter(student__student_id="s-purged").latest("day")
    assert record.completion == pytest.approx(0.5)  # 5 of the default 10
    assert (latest.day, latest.completion, latest.mastery) == (
        today.date(),
        pytest.approx(0.5),
        pytest.approx(record.mastery),
    )
    day_before = Snapshot.objects.get(
        student__student_id="s-purged", day=(today - timedelta(days=1)).date()
    )
    assert day_before.completion == pytest.approx(0.4)
