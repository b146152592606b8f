"""What ingest stores about a student: its events, and which of them reported a topic's
size (see `mastery_project.privacy`)."""

from django.db.models import QuerySet

from ingest.models import InboxEvent
from mastery.models import Student, Topic
from mastery_project.privacy import Erasure, Export, StudentData


def _event_as_provided(row: dict) -> dict:
    return {
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "student_id": row["student__student_id"],
        "topic": row["topic__slug"],
        "occurred_at": row["occurred_at"],
        "payload": row["payload"],
        "received_at": row["received_at"],
        "source": row["source"],
    }


def _topics_reported_by(student: Student) -> QuerySet:
    return Topic.objects.filter(
        reported_event_id__in=InboxEvent.objects.filter(student=student).values("event_id")
    )


def _reporting_event_forget(rows: QuerySet, erasure: Erasure) -> int:
    """The topic's reported size is the topic's; which event reported it is the student's."""
    return rows.update(reported_event_id="")


STUDENT_DATA = (
    StudentData(
        kind="events",
        model=InboxEvent,
        student_field="student",
        export=Export(
            "events",
            lambda rows: rows.order_by("occurred_at", "event_id").values(
                "event_id",
                "event_type",
                "student__student_id",
                "topic__slug",
                "occurred_at",
                "payload",
                "source",
                "received_at",
            ),
            shape=_event_as_provided,
        ),
        retention_setting="RETENTION_EVENTS_DAYS",
        retention_field="occurred_at",
    ),
    # After the events: erasure runs backwards, and this reads the events it forgets.
    StudentData(
        kind="topic_reported_event_ids",
        model=Topic,
        student_field="reported_event_id",
        rows=_topics_reported_by,
        erase=_reporting_event_forget,
    ),
)
