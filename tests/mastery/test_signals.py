"""`students_changed` reaches receivers after the commit that changed the students, once,
and never for a batch that changed nobody or that rolled back."""

import pytest
from django.db import transaction

from compliance.services.erasure import student_erase
from ingest.pipeline import ingest_batch
from mastery.signals import students_changed, students_changed_on_commit
from tests.factories import event_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def received():
    calls = []

    def receiver(sender, student_ids, **kwargs):
        calls.append(set(student_ids))

    students_changed.connect(receiver)
    yield calls
    students_changed.disconnect(receiver)


def test_an_ingested_batch_names_its_students_after_the_commit(
    received, django_capture_on_commit_callbacks
):
    events = [event_document(student_id=s) for s in ("s-1", "s-2", "s-1")]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ingest_batch(events, source="http")
        assert received == []  # not before the commit
    for callback in callbacks:
        callback()
    assert received == [{"s-1", "s-2"}]


def test_a_batch_of_duplicates_and_rejections_sends_nothing(
    received, django_capture_on_commit_callbacks
):
    event = event_document(student_id="s-1")
    with django_capture_on_commit_callbacks(execute=True):
        ingest_batch([event], source="http")
    received.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ingest_batch([event, {"event_type": "nope"}], source="http")
    assert received == []


def _change_then_fail() -> None:
    with transaction.atomic():
        students_changed_on_commit(["s-1"], sender=None)
        raise RuntimeError("rolled back")


def test_a_rolled_back_change_sends_nothing(received, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        _change_then_fail()
    assert callbacks == []
    assert received == []


def test_a_failing_receiver_does_not_fail_the_sender(received, django_capture_on_commit_callbacks):
    def broken(sender, **kwargs):
        raise ConnectionError("cache down")

    students_changed.connect(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            students_changed_on_commit(["s-9"], sender=None)
    finally:
        students_changed.disconnect(broken)
    assert received == [{"s-9"}]


def test_an_erasure_names_the_erased_student_after_its_commit(
    received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ingest_batch([event_document(student_id="s-gone")], source="http")
    received.clear()
    with django_capture_on_commit_callbacks(execute=True):
        student_erase(student_id="s-gone", actor=None, actor_label="test")
    assert received == [{"s-gone"}]
