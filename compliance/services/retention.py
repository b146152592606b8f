"""Retention: what is past its window (SPEC §6) is deleted in short chunks.

The kinds and their windows are the apps' privacy declarations (`mastery_project.privacy`):
a setting holding the days, the column they are measured on, and any further condition.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateField, DateTimeField, QuerySet
from django.utils import timezone

from mastery_project import privacy


def _retained() -> list[privacy.StudentData]:
    return [data for data in privacy.declarations() if data.retention_setting]


def retention_days() -> dict[str, int]:
    """Each kind's retention window in days, from settings (SPEC §6)."""
    return {data.kind: getattr(settings, data.retention_setting) for data in _retained()}


def _expired(data: privacy.StudentData, now: datetime) -> QuerySet:
    """The rows of `data` past their window at `now`."""
    cutoff = now - timedelta(days=getattr(settings, data.retention_setting))
    field = data.model._meta.get_field(data.retention_field)
    if isinstance(field, DateField) and not isinstance(field, DateTimeField):
        cutoff = cutoff.astimezone(UTC).date()  # a day column holds UTC days
    rows = data.model._base_manager.filter(**{f"{data.retention_field}__lt": cutoff})
    return rows.filter(data.retention_filter) if data.retention_filter else rows


def expired_purge(
    *, dry_run: bool = False, chunk: int = 5000, now: datetime | None = None
) -> dict[str, int]:
    """Delete what is past retention, kind by kind, in chunks of `chunk` rows, each chunk
    its own short transaction: no long locks, safe beside ingestion and when run twice.

    In SQL: the audit log refuses deletes through the ORM, and the purge is its exception."""
    now = now or timezone.now()
    counts = {}
    for data in _retained():
        expired = _expired(data, now).order_by()
        if dry_run:
            counts[data.kind] = expired.count()
            continue
        table = connection.ops.quote_name(data.model._meta.db_table)
        pk = connection.ops.quote_name(data.model._meta.pk.column)
        total = 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                batch = expired.values("pk").select_for_update(skip_locked=True, of=("self",))
                sql, params = batch[:chunk].query.sql_with_params()
                cursor.execute(f"DELETE FROM {table} WHERE {pk} = ANY(ARRAY({sql}))", params)
                deleted = cursor.rowcount
            total += deleted
            if deleted < chunk:
                break
        counts[data.kind] = total
    return counts
