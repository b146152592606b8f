"""Reads of the inbox."""

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime

import orjson
from django.db import connection

from ingest.models import InboxEvent
from mastery.domain.facts import PairEvent

Pair = tuple[int, int]  # (student pk, topic pk)


def pair_events_since(starts: Mapping[Pair, datetime]) -> dict[Pair, list[PairEvent]]:
    """Each pair's stored events that occurred at or after its instant, in one query (the
    replay of a late event, `mastery.services.mastery_records_apply_events`)."""
    pairs = list(starts)
    found: dict[Pair, list[PairEvent]] = defaultdict(list)
    if not pairs:
        return found
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT e.student_id, e.topic_id, e.event_id, e.event_type, e.occurred_at, e.payload
                FROM {InboxEvent._meta.db_table} e
                JOIN unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) AS p(st, tp, since)
                  ON e.student_id = p.st AND e.topic_id = p.tp AND e.occurred_at >= p.since""",
            [[p[0] for p in pairs], [p[1] for p in pairs], [starts[p] for p in pairs]],
        )
        for student_pk, topic_pk, event_id, event_type, occurred_at, payload in cursor:
            if isinstance(payload, str):
                payload = orjson.loads(payload)
            found[(student_pk, topic_pk)].append(
                PairEvent(event_id, event_type, occurred_at, payload)
            )
    return found
