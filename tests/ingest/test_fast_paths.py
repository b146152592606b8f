"""The hot path's shortcuts give exactly what the plain definitions give.

- The fast validator (msgspec) only ever accepts what the exact one accepts, as the same
  event; whatever it does not accept, the exact one judges (code, message, event_id).
- `facts_json` writes the bytes `orjson.dumps(facts_to_record(...))` writes.
- The fold reads a parsed event as it is, with the result it gives for its `PairEvent`.
"""

import copy
import json
import math
from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.domain.events import EventRejected, _exact_event, _fast_event, parse_event
from mastery.domain.facts import PairFacts, daily_states, facts_json, facts_to_record, fold
from mastery.domain.formula import DEFAULT_WEIGHTS, ScoringPolicy

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
RETENTION_DAYS = 90
MAX_FUTURE = timedelta(minutes=5)
POLICY = ScoringPolicy(DEFAULT_WEIGHTS)

VALID = {
    "exercise.completed": {"exercise_id": "ex-1", "exercises_total": 12},
    "quiz.submitted": {"quiz_id": "q7", "score": 8, "max_score": 10},
    "code.reviewed": {"submission_id": "sub-9", "quality_score": 0.75},
    "session.completed": {"duration_minutes": 42},
}
TOP_FIELDS = ["event_id", "event_type", "student_id", "topic", "occurred_at", "payload"]
PAYLOAD_FIELDS = sorted({name for payload in VALID.values() for name in payload})
TRICKY = [
    None,
    True,
    False,
    0,
    1,
    -1,
    0.5,
    1.0,
    1.5,
    12.0,
    10**20,
    -(10**20),
    math.nan,
    math.inf,
    -math.inf,
    "",
    " ",
    "x" * 100,
    "x" * 101,
    "a\nb",
    "é",
    "ok",
    "ex-2",
    "Quiz.Submitted",
    "lesson.viewed",
    "quiz.submitted",
    "s 1",
    "UPPER",
    "2026-11-20T14:03:11",
    "2026-11-20",
    "2026-11-20T14:03:11Z",
    "2026-11-20T14:03:11+05:30",
    "2025-01-01T00:00:00Z",
    "2026-11-20T15:06:00Z",
    "9999-12-31T23:59:59Z",
    "yesterday",
    [],
    [1],
    {},
    {"a": 1},
    "a\x00b",
    100_000,
    100_001,
    1440 * 7,
    1440 * 7 + 1,
]


def document(event_type: str) -> dict:
    return {
        "event_id": "e-1", "event_type": event_type, "student_id": "s-1042",
        "topic": "python.loops", "occurred_at": "2026-11-20T14:03:11.250Z",
        "payload": dict(VALID[event_type]),
    }  # fmt: skip


def judged(raw: dict) -> tuple:
    """The exact validator's verdict, in comparable form."""
    try:
        return ("accepted", _exact_event(raw, NOW, RETENTION_DAYS, MAX_FUTURE))
    except EventRejected as exc:
        return ("rejected", exc.code, exc.message, exc.event_id)


@st.composite
def mutated_documents(draw):
    raw = document(draw(st.sampled_from(sorted(VALID))))
    for _ in range(draw(st.integers(0, 3))):
        value = copy.deepcopy(draw(st.sampled_from(TRICKY)))
        if draw(st.booleans()):
            field = draw(st.sampled_from(TOP_FIELDS))
            target = raw
        else:
            field = draw(st.sampled_from(PAYLOAD_FIELDS))
            target = raw["payload"] if isinstance(raw.get("payload"), dict) else raw
        if draw(st.integers(0, 5)) == 0:
            target.pop(field, None)
        else:
            target[field] = value
    if draw(st.integers(0, 5)) == 0:
        raw["extra"] = copy.deepcopy(draw(st.sampled_from(TRICKY)))
    return raw


@settings(max_examples=1500, deadline=None)
@given(mutated_documents())
def test_the_fast_validator_accepts_only_what_the_exact_one_accepts(raw):
    oldest, newest = NOW - timedelta(days=RETENTION_DAYS), NOW + MAX_FUTURE
    try:
        verdict = ("accepted", _fast_event(raw, NOW, oldest, newest))
    except EventRejected as exc:  # only the content hash may refuse, as the exact one does
        verdict = ("rejected", exc.code, exc.message, exc.event_id)
    if verdict != ("accepted", None):  # None: not accepted, the exact one decides
        assert judged(raw) == verdict


def verdict_of(raw) -> tuple:
    try:
        return ("accepted", parse_event(raw, now=NOW, retention_days=RETENTION_DAYS))
    except EventRejected as exc:
        return ("rejected", exc.code, exc.message, exc.event_id)


@settings(max_examples=300, deadline=None)
@given(mutated_documents())
def test_parse_event_gives_the_exact_verdict_from_a_mapping_and_from_bytes(raw):
    assert verdict_of(raw) == judged(raw)
    encoded = json.dumps(raw).encode()  # NaN and huge integers as Python writes them
    try:
        decoded = orjson.loads(encoded)
    except orjson.JSONDecodeError:
        assert verdict_of(encoded)[:2] == ("rejected", "invalid_json")
    else:
        assert verdict_of(encoded) == judged(decoded)


def test_every_valid_event_takes_the_fast_path():
    oldest, newest = NOW - timedelta(days=RETENTION_DAYS), NOW + MAX_FUTURE
    for event_type in VALID:
        assert _fast_event(document(event_type), NOW, oldest, newest) is not None


moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


@st.composite
def parsed_events(draw):
    event_type = draw(st.sampled_from(sorted(VALID)))
    raw = document(event_type)
    raw["event_id"] = draw(st.text("abcdef0123", min_size=1, max_size=6))
    raw["occurred_at"] = draw(moments).isoformat()
    if event_type == "quiz.submitted":
        raw["payload"]["score"] = draw(st.integers(0, 10))
    if event_type == "exercise.completed":
        raw["payload"]["exercise_id"] = draw(st.sampled_from(["a", "b", "c"]))
    return parse_event(raw, now=datetime(2027, 1, 1, tzinfo=UTC), retention_days=400)


@settings(max_examples=200, deadline=None)
@given(st.lists(parsed_events(), max_size=25))
def test_folding_parsed_events_is_folding_their_pair_events(events):
    pair_events = [event.as_pair_event() for event in events]
    assert fold(PairFacts(), events, POLICY) == fold(PairFacts(), pair_events, POLICY)
    assert daily_states(PairFacts(), events, POLICY) == daily_states(
        PairFacts(), pair_events, POLICY
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(parsed_events(), max_size=25))
def test_facts_json_is_the_record_form_as_orjson_writes_it(events):
    for _, facts in daily_states(PairFacts(), events, POLICY) or [(None, PairFacts())]:
        assert facts_json(facts) == orjson.dumps(facts_to_record(facts))
