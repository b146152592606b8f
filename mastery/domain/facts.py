"""Incremental, order-independent facts of one (student, topic) pair (SPEC §2.1).

`PairFacts` keeps exactly what the components need and no more, and `fold` merges events
into it so that the result depends only on the *set* of events folded in: repeats,
order and batching do not matter. "Most recent" orders by the key
`(occurred_at, event_id)`: the larger key is the more recent, so two events at the same
instant are ordered by `event_id` as plain string comparison.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import orjson

from mastery.domain.formula import Components, ScoringPolicy, mastery_score

EXERCISE_COMPLETED = "exercise.completed"
QUIZ_SUBMITTED = "quiz.submitted"
CODE_REVIEWED = "code.reviewed"
SESSION_COMPLETED = "session.completed"
EVENT_TYPES = (EXERCISE_COMPLETED, QUIZ_SUBMITTED, CODE_REVIEWED, SESSION_COMPLETED)

RECORD_VERSION = 1

# (occurred_at, event_id, ratio in [0, 1])
RecentEntry = tuple[datetime, str, float]
# (occurred_at, event_id, exercises_total)
ReportedTotal = tuple[datetime, str, int]


def _as_utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


class FoldEvent(Protocol):
    """What `fold` reads of an event: an already-validated one, `occurred_at` in UTC.

    `PairEvent` is one; so is ingestion's parsed event, folded as it was decoded, with no
    copy and no second validation per event.
    """

    @property
    def event_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...


def _key(event: FoldEvent) -> tuple[datetime, str]:
    return (event.occurred_at, event.event_id)


def _day(event: FoldEvent) -> date:
    return event.occurred_at.date()


@dataclass(frozen=True)
class PairEvent:
    """One already-validated event of a pair, as the fold needs it; `occurred_at` is kept in UTC."""

    event_id: str
    event_type: str
    occurred_at: datetime
    payload: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "occurred_at", _as_utc(self.occurred_at, "occurred_at"))
        if self.event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event_type {self.event_type!r}")

    @property
    def key(self) -> tuple[datetime, str]:
        """Recency key: larger is more recent."""
        return (self.occurred_at, self.event_id)


@dataclass(frozen=True)
class PairFacts:
    """What a mastery record keeps to update its components without re-reading events.

    `quiz_recent` / `quality_recent` hold the `recent_window` most recent entries, most
    recent first; `active_days` the distinct UTC days with an event inside the
    `consistency_days` window ending on the latest event's day, ascending. Older entries
    are dropped for good: the window only moves forward as events arrive.
    """

    exercise_ids: frozenset[str] = frozenset()
    quiz_recent: tuple[RecentEntry, ...] = ()
    quality_recent: tuple[RecentEntry, ...] = ()
    active_days: tuple[date, ...] = ()
    latest_at: datetime | None = None
    latest_event_id: str | None = None

    def __post_init__(self) -> None:
        if (self.latest_at is None) != (self.latest_event_id is None):
            raise ValueError("latest_at and latest_event_id must both be set or both be None")

    @classmethod
    def empty(cls) -> PairFacts:
        return cls()


def _most_recent(entries: set[RecentEntry], window: int) -> tuple[RecentEntry, ...]:
    # Comparing whole tuples keeps the choice deterministic even for malformed twins.
    if len(entries) <= 2 * window:  # the usual size: sorting beats building a heap
        return tuple(sorted(entries, reverse=True)[:window])
    return tuple(heapq.nlargest(window, entries))


def _days_in_window(
    days: set[date] | tuple[date, ...], last_day: date, length: int
) -> tuple[date, ...]:
    first_day = last_day - timedelta(days=length - 1)
    ordered = sorted(days)
    if ordered and first_day <= ordered[0] and ordered[-1] <= last_day:  # nothing to drop
        return tuple(ordered)
    return tuple(day for day in ordered if first_day <= day <= last_day)


def fold(facts: PairFacts, events: Iterable[FoldEvent], policy: ScoringPolicy) -> PairFacts:
    """Merge `events` into `facts`; a pure set union followed by the policy's windows."""
    exercise_ids = set(facts.exercise_ids)
    quiz = set(facts.quiz_recent)
    quality = set(facts.quality_recent)
    days = set(facts.active_days)
    latest = None if facts.latest_at is None else (facts.latest_at, facts.latest_event_id)
    changed = False
    for event in events:
        changed = True
        occurred_at, event_type, payload = event.occurred_at, event.event_type, event.payload
        key = (occurred_at, event.event_id)
        if latest is None or key > latest:
            latest = key
        days.add(occurred_at.date())
        if event_type == EXERCISE_COMPLETED:
            exercise_ids.add(payload["exercise_id"])
        elif event_type == QUIZ_SUBMITTED:
            ratio = payload["score"] / payload["max_score"]
            quiz.add((occurred_at, event.event_id, float(ratio)))
        elif event_type == CODE_REVIEWED:
            quality.add((occurred_at, event.event_id, float(payload["quality_score"])))
    if not changed or latest is None:
        return facts
    latest_at, latest_event_id = latest
    return PairFacts(
        exercise_ids=frozenset(exercise_ids),
        quiz_recent=_most_recent(quiz, policy.recent_window),
        quality_recent=_most_recent(quality, policy.recent_window),
        active_days=_days_in_window(days, latest_at.date(), policy.consistency_days),
        latest_at=latest_at,
        latest_event_id=latest_event_id,
    )


def _mean_ratio(entries: tuple[RecentEntry, ...]) -> float:
    if not entries:
        return 0.0
    return math.fsum(ratio for _, _, ratio in entries) / len(entries)


def components_of(facts: PairFacts, exercises_total: int, policy: ScoringPolicy) -> Components:
    """The four components from stored facts.

    The policy's windows are applied again here, so re-scoring stored facts under a new
    policy is exact for new weights or narrower windows; wider windows than the facts were
    folded with cannot be recovered without the events.
    """
    if isinstance(exercises_total, bool) or not isinstance(exercises_total, int):
        raise ValueError(f"exercises_total must be an int, got {exercises_total!r}")
    if exercises_total < 1:
        raise ValueError(f"exercises_total must be >= 1, got {exercises_total!r}")
    if facts.latest_at is None:
        consistency = 0.0
    else:
        window = _days_in_window(facts.active_days, facts.latest_at.date(), policy.consistency_days)
        consistency = len(window) / policy.consistency_days
    return Components(
        completion=min(1.0, len(facts.exercise_ids) / exercises_total),
        quiz=_mean_ratio(facts.quiz_recent[: policy.recent_window]),
        quality=_mean_ratio(facts.quality_recent[: policy.recent_window]),
        consistency=consistency,
    )


def daily_states(
    facts: PairFacts, events: Iterable[FoldEvent], policy: ScoringPolicy
) -> list[tuple[date, PairFacts]]:
    """Facts at the end of each UTC day that has events, folding day by day from `facts`.

    This is what daily snapshots are written from; the last state equals `fold(facts, events)`.
    """
    ordered = sorted(events, key=_key)
    if ordered and _day(ordered[0]) == _day(ordered[-1]):  # the usual case: one day
        return [(_day(ordered[0]), fold(facts, ordered, policy))]
    states: list[tuple[date, PairFacts]] = []
    current = facts
    for day, group in itertools.groupby(ordered, key=_day):
        current = fold(current, group, policy)
        states.append((day, current))
    return states


def latest_reported_total(
    current: ReportedTotal | None, events: Iterable[FoldEvent]
) -> ReportedTotal | None:
    """The topic size carried by the most recent `exercise.completed` that has one."""
    best = current
    for event in events:
        if event.event_type != EXERCISE_COMPLETED:
            continue
        total = event.payload.get("exercises_total")
        if total is None:
            continue
        candidate = (event.occurred_at, event.event_id, int(total))
        if best is None or candidate > best:
            best = candidate
    return best


def effective_exercises_total(
    admin_value: int | None, reported: ReportedTotal | None, default: int
) -> int:
    """An admin's value wins, then the latest reported one, then the default."""
    if admin_value is not None:
        if isinstance(admin_value, bool) or not isinstance(admin_value, int) or admin_value < 1:
            raise ValueError(f"admin exercises_total must be an int >= 1, got {admin_value!r}")
        return admin_value
    if reported is not None:
        return reported[2]
    return default


def reference_mastery(
    events: Iterable[PairEvent], exercises_total: int, policy: ScoringPolicy
) -> tuple[Components, float]:
    """SPEC §2.1 computed directly from the whole event set, deliberately without `fold`.

    Slow and obvious on purpose: tests hold the incremental path to this one.
    """
    by_id: dict[str, PairEvent] = {}
    for event in events:
        by_id.setdefault(event.event_id, event)
    ordered = sorted(by_id.values(), key=lambda event: (event.occurred_at, event.event_id))
    if not ordered:
        components = Components(0.0, 0.0, 0.0, 0.0)
        return components, mastery_score(components, policy.weights)

    completed = {e.payload["exercise_id"] for e in ordered if e.event_type == EXERCISE_COMPLETED}
    completion = min(1.0, len(completed) / exercises_total)

    quizzes = [e for e in ordered if e.event_type == QUIZ_SUBMITTED][-policy.recent_window :]
    quiz_ratios = [e.payload["score"] / e.payload["max_score"] for e in quizzes]
    quiz = math.fsum(quiz_ratios) / len(quiz_ratios) if quiz_ratios else 0.0

    reviews = [e for e in ordered if e.event_type == CODE_REVIEWED][-policy.recent_window :]
    qualities = [float(e.payload["quality_score"]) for e in reviews]
    quality = math.fsum(qualities) / len(qualities) if qualities else 0.0

    utc_days = [e.occurred_at.astimezone(UTC).date() for e in ordered]
    last_day = utc_days[-1]
    recent_days = {day for day in utc_days if (last_day - day).days < policy.consistency_days}
    consistency = len(recent_days) / policy.consistency_days

    components = Components(completion, quiz, quality, consistency)
    return components, mastery_score(components, policy.weights)


def _parse_utc(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is UTC:  # as stored: skip the conversion
        return parsed
    return _as_utc(parsed, "timestamp")


def _entries_to_record(entries: tuple[RecentEntry, ...]) -> list[list[Any]]:
    return [[at.isoformat(), event_id, ratio] for at, event_id, ratio in entries]


def _entries_from_record(rows: list[list[Any]]) -> tuple[RecentEntry, ...]:
    return tuple((_parse_utc(at), str(event_id), float(ratio)) for at, event_id, ratio in rows)


def facts_to_record(facts: PairFacts) -> dict[str, Any]:
    """JSON-safe form of the facts for storage (ISO strings, lists, sorted ids)."""
    return {
        "version": RECORD_VERSION,
        "exercise_ids": sorted(facts.exercise_ids),
        "quiz_recent": _entries_to_record(facts.quiz_recent),
        "quality_recent": _entries_to_record(facts.quality_recent),
        "active_days": [day.isoformat() for day in facts.active_days],
        "latest_at": None if facts.latest_at is None else facts.latest_at.isoformat(),
        "latest_event_id": facts.latest_event_id,
    }


def facts_json(facts: PairFacts) -> bytes:
    """`facts_to_record` as a JSON document, in one orjson call: what records and snapshots
    store.

    orjson writes a UTC datetime and a date exactly as `isoformat()` does, so the bytes are
    those of `orjson.dumps(facts_to_record(facts))`, only without the Python loop.
    """
    return orjson.dumps(
        {
            "version": RECORD_VERSION,
            "exercise_ids": sorted(facts.exercise_ids),
            "quiz_recent": facts.quiz_recent,
            "quality_recent": facts.quality_recent,
            "active_days": facts.active_days,
            "latest_at": facts.latest_at,
            "latest_event_id": facts.latest_event_id,
        }
    )


def facts_from_record(record: Mapping[str, Any]) -> PairFacts:
    """Inverse of `facts_to_record`; raises ValueError on an unknown record version."""
    if record.get("version") != RECORD_VERSION:
        raise ValueError(f"unsupported facts record version {record.get('version')!r}")
    latest_at = record["latest_at"]
    return PairFacts(
        exercise_ids=frozenset(str(item) for item in record["exercise_ids"]),
        quiz_recent=_entries_from_record(record["quiz_recent"]),
        quality_recent=_entries_from_record(record["quality_recent"]),
        active_days=tuple(date.fromisoformat(day) for day in record["active_days"]),
        latest_at=None if latest_at is None else _parse_utc(latest_at),
        latest_event_id=record["latest_event_id"],
    )
