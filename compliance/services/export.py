"""The GDPR export: everything held about one student, as one streamed JSON document."""

from collections.abc import Iterator

import orjson
from django.http import HttpRequest
from django.utils import timezone

from compliance.models import AuditLog, ConsentChange
from compliance.services.audit import audit_log_write
from ingest.models import InboxEvent
from mastery.models import Cohort, MasteryRecord, Snapshot, Student, User

EXPORT_FORMAT = "mastery-engine.student-export"
EXPORT_VERSION = 1


def _dump(value) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


def _array(rows: Iterator) -> Iterator[bytes]:
    yield b"["
    first = True
    for row in rows:
        yield (b"" if first else b",") + _dump(row)
        first = False
    yield b"]"


def student_export_stream(
    *,
    student: Student,
    actor: User | None,
    request: HttpRequest | None = None,
    actor_label: str = "",
) -> Iterator[bytes]:
    """The export document, as JSON bytes in pieces: events are read in chunks, so a
    student with 100k events does not need them all in memory. Audited once, up front."""
    audit_log_write(
        request=request,
        actor=actor,
        actor_label=actor_label,
        action="gdpr.export",
        student_refs=[student.student_id],
        resource="export",
    )
    login = User.objects.filter(student=student).values("username", "role", "date_joined").first()
    header = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "generated_at": timezone.now(),
        "student": {
            "student_id": student.student_id,
            "analytics_consent": student.analytics_consent,
            "created_at": student.created_at,
            "last_activity_at": student.last_activity_at,
            "login": login,
        },
        "cohorts": list(
            Cohort.objects.filter(students=student)
            .values("cohort_id", "name")
            .order_by("cohort_id")
        ),
        "consent_history": list(
            ConsentChange.objects.filter(student=student).values(
                "created_at", "actor_username", "old_value", "new_value"
            )
        ),
    }
    yield _dump(header)[:-1]  # an open object: the streamed sections follow
    yield b',"events":'
    events = (
        InboxEvent.objects.filter(student=student)
        .order_by("occurred_at", "event_id")
        .values("event_id", "event_type", "topic__slug", "occurred_at", "payload", "source",
                "received_at")
    )  # fmt: skip
    yield from _array(
        {
            "event_id": e["event_id"],
            "event_type": e["event_type"],
            "student_id": student.student_id,
            "topic": e["topic__slug"],
            "occurred_at": e["occurred_at"],
            "payload": e["payload"],
            "received_at": e["received_at"],
            "source": e["source"],
        }
        for e in events.iterator(chunk_size=2000)
    )
    yield b',"derived":{"note":"computed by the engine from the events above",'
    yield b'"mastery_records":'
    yield from _array(
        MasteryRecord.objects.filter(student=student)
        .order_by("topic__slug")
        .values("topic__slug", "mastery", "level", "completion", "quiz", "quality",
                "consistency", "updated_at")
        .iterator(chunk_size=2000)
    )  # fmt: skip
    yield b',"snapshots":'
    yield from _array(
        Snapshot.objects.filter(student=student)
        .order_by("topic__slug", "day")
        .values("topic__slug", "day", "mastery", "completion", "quiz", "quality", "consistency")
        .iterator(chunk_size=2000)
    )
    yield b',"predictions":[],"recommendations":[],"feedback":[]}'
    yield b',"audit":'
    yield from _array(
        AuditLog.objects.filter(student_ref=student.student_id)
        .order_by("created_at", "id")
        .values("created_at", "actor_username", "actor_role", "action", "resource", "outcome",
                "ip")
        .iterator(chunk_size=2000)
    )  # fmt: skip
    yield b"}"
