"""Shared builders for the mastery API tests: event documents, seeding, the visibility table."""

from dataclasses import dataclass
from datetime import datetime
from itertools import count

from rest_framework.test import APIClient

from mastery.models import Cohort, Student, Topic, User
from tests.factories import event_document, ingest_all

ROLES = ("anonymous", "student", "teacher", "admin", "service")
AUTHENTICATED_ROLES = ROLES[1:]

# The student ids each role may see in `world` (SPEC §3 visibility).
VISIBLE_STUDENTS = {
    "student": {"s-a1"},
    "teacher": {"s-a1", "s-a2"},
    "admin": {"s-a1", "s-a2", "s-b1"},
    "service": {"s-a1", "s-a2", "s-b1"},
}
VISIBLE_COHORTS = {
    "student": {"cohort-a"},
    "teacher": {"cohort-a"},
    "admin": {"cohort-a", "cohort-b"},
    "service": {"cohort-a", "cohort-b"},
}

_event_ids = count(1)


def learning_event(
    student_id: str,
    topic: str,
    event_type: str = "session.completed",
    *,
    payload: dict | None = None,
    occurred_at: datetime | None = None,
    event_id: str | None = None,
) -> dict:
    """One valid event document; `occurred_at` defaults to an hour ago."""
    return event_document(
        event_type,
        student_id=student_id,
        topic=topic,
        occurred_at=occurred_at,
        event_id=event_id or f"api-test-{next(_event_ids)}",
        payload=payload,
    )


def seed(*events: dict) -> None:
    """Apply events through the real ingestion pipeline; every one must be accepted."""
    ingest_all(events)


@dataclass
class World:
    students: dict[str, Student]
    cohorts: dict[str, Cohort]
    users: dict[str, User]
    topic: Topic

    def client(self, role: str, client_for) -> APIClient:
        return APIClient() if role == "anonymous" else client_for(self.users[role])
