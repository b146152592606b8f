"""The audit trail is append-only and indexed for its two questions; `purge_expired`
removes exactly what is past each retention window (SPEC §6) and nothing else."""

import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from compliance.models import AuditLog
from compliance.services.audit import audit_log_write
from compliance.services.retention import expired_purge
from ingest.models import InboxEvent
from ingest.pipeline import ingest_batch
from mastery.models import Snapshot, Student
from tests.compliance.support import TARGET, TOPICS, ingest, learning_event

pytestmark = pytest.mark.django_db


# --- append-only ---------------------------------------------------------------------------


@pytest.fixture
def entry(db) -> AuditLog:
    audit_log_write(request=None, action="student.retrieve", student_refs=[TARGET])
    return AuditLog.objects.get(action="student.retrieve")


def test_an_audit_entry_cannot_be_changed(entry):
    entry.action = "nothing.to.see"
    with pytest.raises(PermissionError):
        entry.save()
    assert AuditLog.objects.get(pk=entry.pk).action == "student.retrieve"


def test_an_audit_entry_cannot_be_deleted(entry):
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditLog.objects.filter(pk=entry.pk).delete()
    with pytest.raises(PermissionError):
        AuditLog.objects.all().delete()
    assert AuditLog.objects.filter(pk=entry.pk).exists()


def test_audit_entries_cannot_be_rewritten_in_bulk(entry):
    """A queryset update is an update path too: the trail is append-only for the app."""
    with pytest.raises(PermissionError):
        AuditLog.objects.filter(pk=entry.pk).update(student_ref="someone-else")
    assert AuditLog.objects.get(pk=entry.pk).student_ref == TARGET


def test_the_audit_log_is_indexed_by_student_and_by_actor(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s", [AuditLog._meta.db_table]
        )
        definitions = [row[0] for row in cursor.fetchall()]
    # "who accessed student X" and "what did user Y do", both in time order
    assert any("(student_ref, created_at)" in d for d in definitions), definitions
    assert any("(actor_id, created_at)" in d for d in definitions), definitions


# --- retention -----------------------------------------------------------------------------

NOW = datetime.now(UTC).replace(microsecond=0)


def backdate_audit(pks: list[int], moment: datetime) -> None:
    """The model refuses saves; set created_at as a restore or an old row would have it."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {AuditLog._meta.db_table} SET created_at = %s WHERE id = ANY(%s)",
            [moment, pks],
        )


def task_result(finished_at: datetime | None) -> DBTaskResult:
    return DBTaskResult.objects.create(
        id=uuid.uuid4(),
        status="SUCCESSFUL" if finished_at else "READY",
        args_kwargs={"args": [], "kwargs": {}},
        task_path="analytics.tasks.batch_mastery",
        backend_name="default",
        run_after=NOW,
        finished_at=finished_at,
        exception_class_path="",
        traceback="",
    )


DEFAULT_WINDOWS = {"events": 90, "snapshots": 365, "audit_log": 365, "batch_jobs": 30}
QUERYSETS = {
    "events": lambda: InboxEvent.objects.order_by("occurred_at").values_list("pk", flat=True),
    "snapshots": lambda: Snapshot.objects.order_by("day").values_list("pk", flat=True),
    "audit_log": lambda: AuditLog.objects.values_list("pk", flat=True),
    "batch_jobs": lambda: DBTaskResult.objects.values_list("pk", flat=True),
}


def moment(i: int, window: int, expired_each: int) -> datetime:
    """Row i: the first `expired_each` a day past the window, the rest a day inside it
    (staggered by minutes, so they are not all one timestamp)."""
    if i < expired_each:
        return NOW - timedelta(days=window + 1, minutes=i)
    return NOW - timedelta(days=window - 1) + timedelta(minutes=i)


@pytest.fixture
def aged(db):
    """`aged(windows)` builds, per kind, rows a day past its window (returned as expired)
    and a day inside it (kept); finished-at-NULL batch jobs are always kept."""

    def build(windows: dict[str, int], *, expired_each: int = 7, kept_each: int = 4):
        n = expired_each + kept_each
        # one event a day in one topic: as many snapshots as events
        ingest(
            [
                learning_event(TARGET, TOPICS[0], NOW - timedelta(days=day, hours=2))
                for day in range(n)
            ]
        )
        audit_log_write(request=None, action="student.retrieve", student_refs=[TARGET] * n)
        for _ in range(n):
            task_result(NOW)
        unfinished = task_result(None)
        ids = {kind: list(qs().order_by("pk")) for kind, qs in QUERYSETS.items()}
        ids["batch_jobs"].remove(unfinished.pk)
        assert all(len(pks) == n for pks in ids.values())

        for i, pk in enumerate(ids["events"]):
            at = moment(i, windows["events"], expired_each)
            InboxEvent.objects.filter(pk=pk).update(occurred_at=at)
        for i, pk in enumerate(ids["snapshots"]):
            # (student, topic, day) is unique: one day per row, each side of the boundary
            days = (
                windows["snapshots"] + 1 + i
                if i < expired_each
                else windows["snapshots"] - 1 - (i - expired_each)
            )
            Snapshot.objects.filter(pk=pk).update(day=(NOW - timedelta(days=days)).date())
        for i, pk in enumerate(ids["audit_log"]):
            backdate_audit([pk], moment(i, windows["audit_log"], expired_each))
        for i, pk in enumerate(ids["batch_jobs"]):
            DBTaskResult.objects.filter(pk=pk).update(
                finished_at=moment(i, windows["batch_jobs"], expired_each),
                enqueued_at=NOW - timedelta(days=400),
            )
        DBTaskResult.objects.filter(pk=unfinished.pk).update(enqueued_at=NOW - timedelta(days=400))
        rows = {
            kind: (set(pks[:expired_each]), set(pks[expired_each:])) for kind, pks in ids.items()
        }
        rows["batch_jobs"][1].add(unfinished.pk)
        return rows

    return build


def purge(**options) -> dict[str, int]:
    """`expired_purge`'s counts of the kinds built here; the other declared kinds (the
    analytics tables) have no rows in these tests, so nothing of theirs is purged."""
    counts = expired_purge(**options)
    assert {kind: n for kind, n in counts.items() if kind not in DEFAULT_WINDOWS and n} == {}
    return {kind: n for kind, n in counts.items() if kind in DEFAULT_WINDOWS}


def remaining() -> dict[str, set]:
    return {kind: set(qs()) for kind, qs in QUERYSETS.items()}


def test_purge_removes_exactly_what_is_past_each_window(aged):
    rows = aged(DEFAULT_WINDOWS)
    counts = purge(chunk=3, now=NOW)
    assert counts == {kind: len(expired) for kind, (expired, _) in rows.items()}
    assert counts == {"events": 7, "snapshots": 7, "audit_log": 7, "batch_jobs": 7}
    assert remaining() == {kind: kept for kind, (_, kept) in rows.items()}
    # the student and its mastery record are not retention's business
    assert Student.objects.filter(student_id=TARGET).exists()


def test_a_second_purge_deletes_nothing(aged):
    rows = aged(DEFAULT_WINDOWS)
    purge(chunk=3, now=NOW)
    assert purge(chunk=3, now=NOW) == dict.fromkeys(DEFAULT_WINDOWS, 0)
    assert remaining() == {kind: kept for kind, (_, kept) in rows.items()}


def test_a_purge_of_exactly_one_chunk_per_kind_stops(aged):
    rows = aged(DEFAULT_WINDOWS, expired_each=3, kept_each=2)
    assert purge(chunk=3, now=NOW) == dict.fromkeys(DEFAULT_WINDOWS, 3)
    assert remaining() == {kind: kept for kind, (_, kept) in rows.items()}


def test_dry_run_counts_and_deletes_nothing(aged):
    aged(DEFAULT_WINDOWS)
    before = remaining()
    out = io.StringIO()
    call_command("purge_expired", "--dry-run", stdout=out)
    assert remaining() == before
    lines = out.getvalue().splitlines()
    for kind, days in DEFAULT_WINDOWS.items():
        [line] = [line for line in lines if line.startswith(kind)]
        assert "would delete 7" in line
        assert f"{days} days" in line


def test_the_command_deletes_and_prints_counts_per_kind(aged):
    rows = aged(DEFAULT_WINDOWS)
    out = io.StringIO()
    call_command("purge_expired", stdout=out)
    for kind in DEFAULT_WINDOWS:
        assert any(
            line.startswith(kind) and "deleted 7" in line for line in out.getvalue().splitlines()
        )
    assert remaining() == {kind: kept for kind, (_, kept) in rows.items()}


def test_windows_come_from_settings(aged):
    windows = {"events": 20, "snapshots": 40, "audit_log": 25, "batch_jobs": 5}
    rows = aged(windows)
    with override_settings(
        RETENTION_EVENTS_DAYS=20,
        RETENTION_SNAPSHOTS_DAYS=40,
        RETENTION_AUDIT_DAYS=25,
        RETENTION_BATCH_JOBS_DAYS=5,
    ):
        assert purge(chunk=3, now=NOW) == dict.fromkeys(DEFAULT_WINDOWS, 7)
    assert remaining() == {kind: kept for kind, (_, kept) in rows.items()}


@override_settings(RETENTION_EVENTS_DAYS=10)
def test_an_event_older_than_the_window_is_refused_at_ingest(db):
    """Otherwise a purged event's twin could be applied again after the purge."""
    old = learning_event(TARGET, TOPICS[0], timezone.now() - timedelta(days=11))
    result = ingest_batch([old], source="http")
    assert [(o.status, o.code) for o in result.outcomes] == [("rejected", "expired")]
