"""The one ingestion pipeline: HTTP and Kafka both hand it batches of raw events.

parse and validate (pure, `ingest.domain.events`) → in one transaction: register new
students and topics, insert the inbox rows (duplicates skipped, conflicts refused), apply
the new events to mastery records and snapshots (`mastery.services`), bump activity.
Each item gets an outcome; nothing is applied twice, whatever the order of arrival.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from compliance.services.erasure import erased_before
from ingest import metrics
from ingest.domain.events import INVALID_SHAPE, EventRejected, LearningEvent, parse_event
from ingest.models import InboxEvent
from ingest.selectors import pair_events_since
from mastery.models import Student, Topic
from mastery.services import mastery_records_apply_events
from mastery.signals import students_changed_on_commit
from mastery_project.pgcopy import copy_to_temp

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REJECTED = "rejected"
CONFLICT = "conflict"
ERASED = "erased"

RawEvent = bytes | Mapping  # raw Kafka bytes, or an already-parsed JSON object (HTTP)


@dataclass(frozen=True)
class ItemOutcome:
    index: int
    event_id: str | None
    status: str
    code: str | None = None
    message: str | None = None


@dataclass
class BatchResult:
    outcomes: list[ItemOutcome]
    # Students whose state changed: what a cache of derived data must invalidate.
    student_ids: set[str] = field(default_factory=set)

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def accepted(self) -> int:
        return self.count(ACCEPTED)

    @property
    def duplicates(self) -> int:
        return self.count(DUPLICATE)

    @property
    def rejected(self) -> list[ItemOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == REJECTED]


def _conflict(index: int, event_id: str) -> ItemOutcome:
    return ItemOutcome(
        index,
        event_id,
        REJECTED,
        CONFLICT,
        "event_id was already accepted with different content",
    )


def ingest_batch(
    items: Sequence[RawEvent], *, source: str, now: datetime | None = None
) -> BatchResult:
    """Validate and apply a batch; returns one outcome per item, in order.

    Items are raw bytes (Kafka) or already-parsed JSON objects (HTTP). Repeats of an id
    within the batch are judged against the stored event when there is one, else
    against the batch's first valid occurrence.
    """
    now = now or timezone.now()
    started = time.perf_counter()
    outcomes: list[ItemOutcome | None] = [None] * len(items)
    parsed: list[tuple[int, LearningEvent]] = []
    retention_days = settings.RETENTION_EVENTS_DAYS
    for index, raw in enumerate(items):
        if not isinstance(raw, bytes | Mapping):
            message = "an event must be a JSON object"
            outcomes[index] = ItemOutcome(index, None, REJECTED, INVALID_SHAPE, message)
            continue
        try:
            event = parse_event(raw, now=now, retention_days=retention_days)
        except EventRejected as exc:
            outcomes[index] = ItemOutcome(index, exc.event_id, REJECTED, exc.code, exc.message)
            continue
        parsed.append((index, event))
    student_ids: set[str] = set()
    with transaction.atomic():
        first: dict[str, tuple[int, LearningEvent]] = {}
        repeats: list[tuple[int, LearningEvent]] = []
        for index, event in _refuse_erased(parsed, outcomes):
            if event.event_id in first:
                repeats.append((index, event))
            else:
                first[event.event_id] = (index, event)
        if first:
            for index, event, status in _store(list(first.values()), source=source, now=now):
                if status == ACCEPTED:
                    student_ids.add(event.student_id)
                outcomes[index] = _outcome(index, event.event_id, status)
        if repeats:  # judged against what the batch's first occurrence left stored
            known, _ = _classify_known(repeats)
            for index, event, status in known:
                outcomes[index] = _outcome(index, event.event_id, status)
        students_changed_on_commit(student_ids, sender=ingest_batch)
    assert all(outcome is not None for outcome in outcomes), "every item has an outcome"
    result = BatchResult(outcomes, student_ids)
    _observe(result, source=source, seconds=time.perf_counter() - started)
    return result


def _refuse_erased(
    parsed: list[tuple[int, LearningEvent]], outcomes: list[ItemOutcome | None]
) -> list[tuple[int, LearningEvent]]:
    """Events of an erased student that occurred before the erasure are never applied;
    returns the others. Runs inside the batch's transaction (see `erased_before`)."""
    erased = erased_before(event.student_id for _, event in parsed)
    if not erased:
        return parsed
    kept = []
    message = "the student was erased after this event occurred"
    for index, event in parsed:
        at = erased.get(event.student_id)
        if at is not None and event.occurred_at <= at:
            outcomes[index] = ItemOutcome(index, event.event_id, REJECTED, ERASED, message)
        else:
            kept.append((index, event))
    return kept


def _outcome(index: int, event_id: str, status: str) -> ItemOutcome:
    if status == CONFLICT:
        return _conflict(index, event_id)
    return ItemOutcome(index, event_id, status)


def _observe(result: BatchResult, *, source: str, seconds: float) -> None:
    """Count only after the commit: a rolled-back batch is retried, not counted."""
    metrics.BATCH_SIZE.labels(source).observe(len(result.outcomes))
    metrics.APPLY_SECONDS.labels(source).observe(seconds)
    metrics.EVENTS_ACCEPTED.labels(source).inc(result.accepted)
    metrics.EVENTS_DUPLICATE.labels(source).inc(result.duplicates)
    for outcome in result.rejected:
        metrics.EVENTS_REJECTED.labels(source, outcome.code).inc()


def _stored_hashes(event_ids: list[str]) -> dict[str, str]:
    """Each id a probe of the primary key: a batch costs what it holds, whatever the size
    of the inbox (the planner otherwise scans the whole table for a long array)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT e.event_id, e.content_hash FROM unnest(%s::varchar[]) AS k(id)
                CROSS JOIN LATERAL (SELECT event_id, content_hash
                    FROM {InboxEvent._meta.db_table} WHERE event_id = k.id) AS e""",
            [event_ids],
        )
        return dict(cursor.fetchall())


def _classify_known(
    events: list[tuple[int, LearningEvent]],
) -> tuple[list[tuple[int, LearningEvent, str]], list[tuple[int, LearningEvent]]]:
    """Split off events whose id is already in the inbox (duplicate or conflict)."""
    known = _stored_hashes([event.event_id for _, event in events])
    done, new = [], []
    for index, event in events:
        if event.event_id in known:
            same = known[event.event_id] == event.content_hash
            done.append((index, event, DUPLICATE if same else CONFLICT))
        else:
            new.append((index, event))
    return done, new


def _ids_by_key(table: str, column: str, keys: list[str]) -> dict[str, int]:
    """Insert missing keys (other columns take their database defaults); map key -> pk."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} ({column}) SELECT k FROM unnest(%s::varchar[]) AS k
                ORDER BY k ON CONFLICT ({column}) DO NOTHING""",
            [keys],
        )
        cursor.execute(
            f"SELECT {column}, id FROM {table} WHERE {column} = ANY(%s::varchar[])", [keys]
        )
        return dict(cursor.fetchall())


def _store(
    events: list[tuple[int, LearningEvent]], *, source: str, now: datetime
) -> list[tuple[int, LearningEvent, str]]:
    results, new = _classify_known(events)
    if not new:
        return results
    students = _ids_by_key(
        Student._meta.db_table, "student_id", sorted({e.student_id for _, e in new})
    )
    topics = _ids_by_key(Topic._meta.db_table, "slug", sorted({e.topic for _, e in new}))
    with connection.cursor() as cursor:
        copy_to_temp(
            cursor,
            "incoming_events",
            "event_id varchar, event_type varchar, student_id bigint, topic_id bigint,"
            " occurred_at timestamptz, payload jsonb, content_hash varchar",
            (
                (
                    e.event_id, e.event_type, students[e.student_id], topics[e.topic],
                    e.occurred_at, orjson.dumps(e.payload), e.content_hash,
                )
                for _, e in new
            ),
        )  # fmt: skip
        cursor.execute(
            f"""INSERT INTO {InboxEvent._meta.db_table} (event_id, event_type, student_id, topic_id,
                    occurred_at, payload, content_hash, source, received_at)
                SELECT event_id, event_type, student_id, topic_id, occurred_at, payload,
                    content_hash, %s, %s FROM incoming_events
                ON CONFLICT (event_id) DO NOTHING RETURNING event_id""",
            [source, now],
        )
        inserted = {row[0] for row in cursor.fetchall()}
    raced = [(i, e) for i, e in new if e.event_id not in inserted]
    if raced:  # another writer committed the same id meanwhile
        late_known, _ = _classify_known(raced)
        results.extend(late_known)

    # The parsed events themselves are folded (`mastery.domain.facts.FoldEvent`): no copy.
    events_by_pair: dict[tuple[int, int], list[LearningEvent]] = defaultdict(list)
    latest_by_student: dict[int, datetime] = {}
    for index, event in new:
        if event.event_id not in inserted:
            continue
        results.append((index, event, ACCEPTED))
        student_pk = students[event.student_id]
        events_by_pair[(student_pk, topics[event.topic])].append(event)
        latest_by_student[student_pk] = max(
            event.occurred_at, latest_by_student.get(student_pk, event.occurred_at)
        )
    # Bumping activity locks the students' rows (in pk order) first, so two writers of the
    # same student apply one after the other, even to a record that does not exist yet.
    _bump_activity(latest_by_student)
    mastery_records_apply_events(
        events_by_pair=events_by_pair, now=now, stored_events=pair_events_since
    )
    return results


def _bump_activity(latest_by_student: dict[int, datetime]) -> None:
    if not latest_by_student:
        return
    pks = sorted(latest_by_student)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {Student._meta.db_table} WHERE id = ANY(%s::bigint[])"
            " ORDER BY id FOR UPDATE",
            [pks],
        )
        # Only rows that move: a row version written for nothing still costs its WAL.
        cursor.execute(
            f"""UPDATE {Student._meta.db_table} s SET last_activity_at = x.at
                FROM unnest(%s::bigint[], %s::timestamptz[]) AS x(id, at)
                WHERE s.id = x.id AND (s.last_activity_at IS NULL OR s.last_activity_at < x.at)""",
            [pks, [latest_by_student[pk] for pk in pks]],
        )
