"""Builders for the privacy tests: event documents, a student with a full history, and
whole-database probes (row counts of every table, a substring scan of every text column)."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

from django.db import connection

from mastery.models import Cohort, Student, User
from tests.factories import event_document, ingest_all

TARGET = "gdpr-target-4242"
BYSTANDER = "bystander-5151"
TOPICS = ("algebra.basics", "python.loops", "sql.joins")
TEXT_TYPES = ("character varying", "text", "character", "json", "jsonb", "ARRAY")

_serial = count(1)


def learning_event(
    student_id: str,
    topic: str,
    occurred_at: datetime,
    *,
    kind: str = "quiz",
    event_id: str | None = None,
) -> dict:
    """One valid event of each kind; event ids never contain the student id on purpose."""
    n = next(_serial)
    event_type, payload = {
        "exercise": ("exercise.completed", {"exercise_id": f"ex-{n % 12}", "exercises_total": 12}),
        "quiz": ("quiz.submitted", {"quiz_id": f"q{n}", "score": 7 + n % 4, "max_score": 10}),
        "review": ("code.reviewed", {"submission_id": f"sub-{n}", "quality_score": 0.8}),
        "session": ("session.completed", {"duration_minutes": 25}),
    }[kind]
    return event_document(
        event_type,
        student_id=student_id,
        topic=topic,
        occurred_at=occurred_at,
        event_id=event_id or f"evt-{n:07d}",
        payload=payload,
    )


def history_events(student_id: str, *, days: int = 4, now: datetime | None = None) -> list[dict]:
    """Events over several topics and UTC days (so several snapshots per topic)."""
    now = now or datetime.now(UTC)
    events = []
    for day in range(days):
        moment = now - timedelta(days=day, hours=1)
        for topic in TOPICS:
            for kind in ("exercise", "quiz", "review", "session"):
                events.append(learning_event(student_id, topic, moment, kind=kind))
    return events


def ingest(events: list[dict]):
    return ingest_all(events, allow_duplicates=True)


def table_row_counts() -> dict[str, int]:
    """Row count of every base table of the public schema."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
        tables = [row[0] for row in cursor.fetchall()]
        counts = {}
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            counts[table] = cursor.fetchone()[0]
    return counts


def rows_naming(needle: str) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text/varchar/json/jsonb/array value of every public
    table that contains `needle` as a substring (json cast to text)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.table_name, c.column_name FROM information_schema.columns c
               JOIN information_schema.tables t
                 ON t.table_schema = c.table_schema AND t.table_name = c.table_name
               WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
                 AND c.data_type = ANY(%s)
               ORDER BY c.table_name, c.column_name""",
            [list(TEXT_TYPES)],
        )
        columns = cursor.fetchall()
        assert len(columns) > 30  # the scan really covers the schema
        hits = []
        for table, column in columns:
            cursor.execute(
                f'SELECT "{column}"::text FROM "{table}" WHERE strpos("{column}"::text, %s) > 0',
                [needle],
            )
            hits.extend((table, column, value) for (value,) in cursor.fetchall())
    return hits


@dataclass
class School:
    """One cohort with a teacher, an admin, a service, and logins for its students."""

    cohort: Cohort
    admin: User
    teacher: User
    service: User
    logins: dict[str, User] = field(default_factory=dict)

    def student(self, student_id: str) -> Student:
        return Student.objects.get(student_id=student_id)


def consume(response) -> bytes:
    """The whole body of a (possibly streamed) response."""
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content
