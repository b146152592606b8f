"""Retention: what is past its window (SPEC §6) is deleted in short chunks."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from compliance.models import AuditLog
from ingest.models import InboxEvent
from mastery.models import Snapshot


def retention_days() -> dict[str, int]:
    """Each kind's retention window in days, from settings (SPEC §6)."""
    return {
        "events": settings.RETENTION_EVENTS_DAYS,
        "snapshots": settings.RETENTION_SNAPSHOTS_DAYS,
        "audit_log": settings.RETENTION_AUDIT_DAYS,
        "batch_jobs": settings.RETENTION_BATCH_JOBS_DAYS,
    }


def _expired_kinds(now: datetime) -> dict[str, tuple[str, str, list]]:
    """kind -> (table, condition, params) of the rows past their window (SPEC §6)."""
    from django_tasks_db.models import DBTaskResult

    days = retention_days()
    cutoff = {kind: now - timedelta(days=n) for kind, n in days.items()}
    return {
        "events": (InboxEvent._meta.db_table, "occurred_at < %s", [cutoff["events"]]),
        "snapshots": (Snapshot._meta.db_table, "day < %s", [cutoff["snapshots"].date()]),
        "audit_log": (AuditLog._meta.db_table, "created_at < %s", [cutoff["audit_log"]]),
        "batch_jobs": (
            DBTaskResult._meta.db_table,
            "finished_at IS NOT NULL AND finished_at < %s",
            [cutoff["batch_jobs"]],
        ),
    }


def expired_purge(
    *, dry_run: bool = False, chunk: int = 5000, now: datetime | None = None
) -> dict[str, int]:
    """Delete what is past retention, kind by kind, in chunks of `chunk` rows, each chunk
    its own short transaction: no long locks, safe beside ingestion and when run twice."""
    counts = {}
    for kind, (table, condition, params) in _expired_kinds(now or timezone.now()).items():
        total = 0
        with connection.cursor() as cursor:
            if dry_run:
                cursor.execute(f"SELECT count(*) FROM {table} WHERE {condition}", params)
                counts[kind] = cursor.fetchone()[0]
                continue
            while True:
                with transaction.atomic():
                    cursor.execute(
                        f"""DELETE FROM {table} WHERE ctid = ANY(ARRAY(
                                SELECT ctid FROM {table} WHERE {condition}
                                LIMIT %s FOR UPDATE SKIP LOCKED))""",
                        [*params, chunk],
                    )
                    deleted = cursor.rowcount
                total += deleted
                if deleted < chunk:
                    break
        counts[kind] = total
    return counts
