import json
import math
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.domain.events import (
    MAX_BATCH,
    REJECTION_CODES,
    EventRejected,
    LearningEvent,
    parse_event,
)
from mastery.domain.facts import PairEvent

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
RETENTION_DAYS = 90


def event(event_type="quiz.submitted", payload=None, **overrides):
    default_payloads = {
        "exercise.completed": {"exercise_id": "ex-1"},
        "quiz.submitted": {"quiz_id": "q7", "score": 8, "max_score": 10},
        "code.reviewed": {"submission_id": "sub-9", "quality_score": 0.75},
        "session.completed": {"duration_minutes": 42},
    }
    document = {
        "event_id": "e-1",
        "event_type": event_type,
        "student_id": "s-1042",
        "topic": "python.loops",
        "occurred_at": "2026-11-20T14:03:11Z",
        "payload": default_payloads.get(event_type, {}) if payload is None else payload,
    }
    document.update(overrides)
    return document


def without(document, *path):
    document = json.loads(json.dumps(document))
    target = document
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return document


def with_payload(event_type="quiz.submitted", **changes):
    document = event(event_type)
    document["payload"] = {**document["payload"], **changes}
    return document


def parse(raw, **kwargs):
    return parse_event(raw, now=NOW, retention_days=RETENTION_DAYS, **kwargs)


def reject(raw):
    with pytest.raises(EventRejected) as caught:
        parse(raw)
    return caught.value


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


REJECTIONS = [
    # Not JSON at all.
    ("truncated", b'{"event_id": "e-1", ', "invalid_json"),
    ("not utf-8", b'\xff\xfe{"event_id": "e-1"}', "invalid_json"),
    ("NaN literal", b'{"x": NaN}', "invalid_json"),
    ("Infinity literal", b'{"event_id": "e-1", "x": Infinity}', "invalid_json"),
    ("overflowing number", b'{"event_id": "e-1", "x": 1e309}', "invalid_json"),
    ("empty bytes", b"", "invalid_json"),
    ("plain text", "hello", "invalid_json"),
    # JSON, but not an object.
    ("array", b'[{"event_id": "e-1"}]', "invalid_shape"),
    ("string", b'"e-1"', "invalid_shape"),
    ("null", b"null", "invalid_shape"),
    ("number", b"42", "invalid_shape"),
    # Missing fields.
    ("no event_id", without(event(), "event_id"), "missing_field"),
    ("null event_id", event(event_id=None), "missing_field"),
    ("no event_type", without(event(), "event_type"), "missing_field"),
    ("no student_id", without(event(), "student_id"), "missing_field"),
    ("no topic", without(event(), "topic"), "missing_field"),
    ("no occurred_at", without(event(), "occurred_at"), "missing_field"),
    ("no payload", without(event(), "payload"), "missing_field"),
    ("no score", without(event(), "payload", "score"), "missing_field"),
    ("no max_score", without(event(), "payload", "max_score"), "missing_field"),
    ("no quiz_id", without(event(), "payload", "quiz_id"), "missing_field"),
    (
        "no exercise_id",
        without(event("exercise.completed"), "payload", "exercise_id"),
        "missing_field",
    ),
    (
        "no quality_score",
        without(event("code.reviewed"), "payload", "quality_score"),
        "missing_field",
    ),
    (
        "no duration",
        without(event("session.completed"), "payload", "duration_minutes"),
        "missing_field",
    ),
    # Wrong type, pattern, length or range.
    ("overlong event_id", event(event_id="e" * 101), "invalid_field"),
    ("empty event_id", event(event_id=""), "invalid_field"),
    ("event_id with newline", event(event_id="e-1\n"), "invalid_field"),
    ("numeric event_id", event(event_id=5), "invalid_field"),
    ("numeric event_type", event(event_type=5), "invalid_field"),
    ("student_id with space", event(student_id="s 1042"), "invalid_field"),
    ("student_id accented", event(student_id="séb"), "invalid_field"),
    ("overlong student_id", event(student_id="s" * 65), "invalid_field"),
    ("empty student_id", event(student_id=""), "invalid_field"),
    ("topic upper case", event(topic="Python.Loops"), "invalid_field"),
    ("topic with slash", event(topic="python/loops"), "invalid_field"),
    ("overlong topic", event(topic="t" * 101), "invalid_field"),
    ("naive occurred_at", event(occurred_at="2026-11-20T14:03:11"), "invalid_field"),
    ("date only occurred_at", event(occurred_at="2026-11-20"), "invalid_field"),
    ("prose occurred_at", event(occurred_at="yesterday"), "invalid_field"),
    ("epoch occurred_at", event(occurred_at=1763647391), "invalid_field"),
    ("string payload", event(payload="score=8"), "invalid_field"),
    ("list payload", event(payload=[8, 10]), "invalid_field"),
    ("bool score", with_payload(score=True), "invalid_field"),
    ("string score", with_payload(score="8"), "invalid_field"),
    ("negative score", with_payload(score=-1), "invalid_field"),
    ("zero max_score", with_payload(score=0, max_score=0), "invalid_field"),
    ("score above max", with_payload(score=11, max_score=10), "invalid_field"),
    ("NaN score", with_payload(score=math.nan), "invalid_field"),
    ("infinite max_score", with_payload(max_score=math.inf), "invalid_field"),
    ("overlong quiz_id", with_payload(quiz_id="q" * 101), "invalid_field"),
    ("quality above one", with_payload("code.reviewed", quality_score=1.5), "invalid_field"),
    ("negative quality", with_payload("code.reviewed", quality_score=-0.1), "invalid_field"),
    ("bool quality", with_payload("code.reviewed", quality_score=False), "invalid_field"),
    (
        "overlong exercise_id",
        with_payload("exercise.completed", exercise_id="x" * 101),
        "invalid_field",
    ),
    (
        "numeric exercise_id",
        with_payload("exercise.completed", exercise_id=7),
        "invalid_field",
    ),
    ("zero total", with_payload("exercise.completed", exercises_total=0), "invalid_field"),
    ("float total", with_payload("exercise.completed", exercises_total=12.0), "invalid_field"),
    ("huge total", with_payload("exercise.completed", exercises_total=100_001), "invalid_field"),
    (
        "negative duration",
        with_payload("session.completed", duration_minutes=-5),
        "invalid_field",
    ),
    (
        "week-long-plus duration",
        with_payload("session.completed", duration_minutes=1440 * 7 + 1),
        "invalid_field",
    ),
    ("NaN in an extra field", event(extra={"x": math.nan}), "invalid_field"),
    # Unknown type.
    ("unknown type", event(event_type="lesson.viewed"), "unknown_event_type"),
    ("wrong case type", event(event_type="Quiz.Submitted"), "unknown_event_type"),
    # Time window.
    ("past retention", event(occurred_at=iso(NOW - timedelta(days=90, seconds=1))), "expired"),
    ("six minutes ahead", event(occurred_at=iso(NOW + timedelta(minutes=6))), "future"),
    ("far future", event(occurred_at="9999-12-31T23:59:59Z"), "future"),
]


@pytest.mark.parametrize(
    ("raw", "code"),
    [pytest.param(raw, code, id=name) for name, raw, code in REJECTIONS],
)
def test_bad_event_is_rejected_with_its_code(raw, code):
    rejected = reject(raw)
    assert rejected.code == code
    assert rejected.code in REJECTION_CODES
    assert rejected.message
    assert str(rejected).startswith(code)


def _is_strict_json(document):
    try:
        json.dumps(document, allow_nan=False)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        pytest.param(raw, code, id=name)
        for name, raw, code in REJECTIONS
        if isinstance(raw, dict) and _is_strict_json(raw)
    ],
)
def test_bad_event_is_rejected_the_same_from_bytes_and_from_a_mapping(raw, code):
    assert reject(json.dumps(raw).encode()).code == code
    assert reject(raw).code == code


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (without(event(), "payload", "score"), "payload.score is required"),
        (without(event(), "topic"), "topic is required"),
        (with_payload(score=11, max_score=10), "payload.score must be <= payload.max_score"),
        (event(payload=[1]), "payload must be an object"),
    ],
)
def test_rejection_message_names_the_field(raw, message):
    assert reject(raw).message == message


@pytest.mark.parametrize(
    ("raw", "event_id"),
    [
        (b"{", None),
        (b"[]", None),
        (event(event_id="x" * 101), None),
        (without(event(), "event_id"), None),
        (event(event_id="abc", event_type="nope"), "abc"),
        (event(event_id="abc", student_id="bad id"), "abc"),
        ({**with_payload(score=True), "event_id": "abc"}, "abc"),
        (event(event_id="abc", occurred_at=iso(NOW + timedelta(hours=1))), "abc"),
    ],
)
def test_rejection_carries_the_event_id_once_it_was_read(raw, event_id):
    assert reject(raw).event_id == event_id


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        # event_id is checked before event_type, event_type before the other fields ...
        (event(event_id="", event_type="nope"), "invalid_field"),
        (event(event_type="nope", student_id="bad id"), "unknown_event_type"),
        # ... top-level fields before the payload, the payload before the time window.
        (event(topic="BAD", payload=[]), "invalid_field"),
        (
            {**with_payload(score=True), "occurred_at": iso(NOW - timedelta(days=400))},
            "invalid_field",
        ),
    ],
)
def test_checks_run_in_a_fixed_order(raw, code):
    assert reject(raw).code == code


@pytest.mark.parametrize(
    ("document", "payload"),
    [
        (
            event("exercise.completed", payload={"exercise_id": "ex-1", "exercises_total": 12}),
            {"exercise_id": "ex-1", "exercises_total": 12},
        ),
        (event("exercise.completed"), {"exercise_id": "ex-1"}),
        (event("quiz.submitted"), {"quiz_id": "q7", "score": 8, "max_score": 10}),
        (
            with_payload(score=2.5, max_score=2.5),
            {"quiz_id": "q7", "score": 2.5, "max_score": 2.5},
        ),
        (
            with_payload(score=0, max_score=0.5),
            {"quiz_id": "q7", "score": 0, "max_score": 0.5},
        ),
        (event("code.reviewed"), {"submission_id": "sub-9", "quality_score": 0.75}),
        (
            with_payload("code.reviewed", quality_score=1),
            {"submission_id": "sub-9", "quality_score": 1},
        ),
        (event("session.completed"), {"duration_minutes": 42}),
        (with_payload("session.completed", duration_minutes=0), {"duration_minutes": 0}),
        (
            with_payload("session.completed", source="lms", tags=["a"]),
            {"duration_minutes": 42, "source": "lms", "tags": ["a"]},
        ),
    ],
)
def test_valid_event_of_each_type_is_accepted(document, payload):
    parsed = parse(orjson.dumps(document))
    assert isinstance(parsed, LearningEvent)
    assert parsed.event_type == document["event_type"]
    assert parsed.event_id == "e-1"
    assert parsed.student_id == "s-1042"
    assert parsed.topic == "python.loops"
    assert parsed.occurred_at == datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
    assert parsed.payload == payload


@pytest.mark.parametrize(
    "student_id", ["a", "S.1:x@y-z_0", "s" * 64, "user@example.com", "lti:course-1:42"]
)
def test_student_id_charset(student_id):
    assert parse(event(student_id=student_id)).student_id == student_id


@pytest.mark.parametrize("topic", ["a", "python.loops", "c-1_x.y", "t" * 100])
def test_topic_charset(topic):
    assert parse(event(topic=topic)).topic == topic


def test_event_id_of_printable_unicode_is_accepted():
    assert parse(event(event_id="ünïcode id 9b2f")).event_id == "ünïcode id 9b2f"


def test_unknown_top_level_fields_are_kept_in_the_hash():
    plain = parse(event())
    extra = parse(event(source={"system": "lms"}))
    assert plain.content_hash != extra.content_hash


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        ("2026-11-20T16:03:11+02:00", datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)),
        ("2026-11-20T09:03:11.250-05:00", datetime(2026, 11, 20, 14, 3, 11, 250000, tzinfo=UTC)),
        ("2026-11-20T14:03:11+00:00", datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)),
    ],
)
def test_occurred_at_is_converted_to_utc(occurred_at, expected):
    parsed = parse(event(occurred_at=occurred_at))
    assert parsed.occurred_at == expected
    assert parsed.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "moment",
    [NOW + timedelta(minutes=5), NOW - timedelta(days=RETENTION_DAYS), NOW],
    ids=["five minutes ahead", "exactly at retention", "now"],
)
def test_time_window_edges_are_accepted(moment):
    assert parse(event(occurred_at=iso(moment))).occurred_at == moment


def test_max_future_can_be_widened():
    ahead = event(occurred_at=iso(NOW + timedelta(minutes=30)))
    assert parse(ahead, max_future=timedelta(hours=1)).occurred_at == NOW + timedelta(minutes=30)


def test_now_must_be_timezone_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_event(event(), now=datetime(2026, 11, 20), retention_days=RETENTION_DAYS)


def test_bytes_text_and_mapping_give_the_same_event():
    document = event()
    from_bytes = parse(orjson.dumps(document))
    assert parse(json.dumps(document)) == from_bytes
    assert parse(document) == from_bytes
    assert parse(bytearray(orjson.dumps(document))) == from_bytes


def test_content_hash_ignores_key_order_and_whitespace():
    compact = b'{"event_id":"e-1","event_type":"quiz.submitted","student_id":"s-1042",'
    compact += b'"topic":"python.loops","occurred_at":"2026-11-20T14:03:11Z",'
    compact += b'"payload":{"quiz_id":"q7","score":8,"max_score":10}}'
    reordered = json.dumps(
        {
            "payload": {"max_score": 10, "score": 8, "quiz_id": "q7"},
            "topic": "python.loops",
            "occurred_at": "2026-11-20T14:03:11Z",
            "student_id": "s-1042",
            "event_type": "quiz.submitted",
            "event_id": "e-1",
        },
        indent=4,
    )
    assert parse(compact).content_hash == parse(reordered).content_hash
    assert len(parse(compact).content_hash) == 64


@pytest.mark.parametrize(
    "changed",
    [
        with_payload(score=9),
        with_payload(score=8.0),
        event(occurred_at="2026-11-20T14:03:12Z"),
        event(occurred_at="2026-11-20T15:03:11+01:00"),
        event(student_id="s-1043"),
        event(extra=None),
    ],
    ids=["score", "int vs float", "time", "same instant other offset", "student", "extra field"],
)
def test_content_hash_changes_with_any_value(changed):
    assert parse(changed).content_hash != parse(event()).content_hash


def test_as_pair_event_keeps_what_the_fold_needs():
    parsed = parse(event())
    assert parsed.as_pair_event() == PairEvent(
        "e-1",
        "quiz.submitted",
        datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC),
        {"quiz_id": "q7", "score": 8, "max_score": 10},
    )


def test_parse_refuses_non_event_input_types():
    with pytest.raises(TypeError):
        parse(42)


def test_max_batch():
    assert MAX_BATCH == 1000


# NUL is refused (PostgreSQL cannot store it), so extras here never contain one.
json_text = st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00")
json_keys = st.text(json_text, max_size=8)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(json_text, max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(json_keys, children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(extras=st.dictionaries(json_keys, json_values, max_size=4), data=st.data())
def test_content_hash_is_invariant_under_key_order_for_any_extras(extras, data):
    document = {**extras, **event()}
    keys = data.draw(st.permutations(list(document)))
    reordered = {key: document[key] for key in keys}
    first = parse(orjson.dumps(document))
    assert parse(json.dumps(reordered, indent=2).encode()).content_hash == first.content_hash
    assert parse(reordered).content_hash == first.content_hash


def test_a_nul_character_anywhere_is_refused_because_postgresql_cannot_store_it():
    document = (
        b'{"event_id": "n1", "event_type": "session.completed", "student_id": "s-1",'
        b' "topic": "t", "occurred_at": "2026-11-20T10:00:00Z",'
        b' "payload": {"duration_minutes": 5, "note": "a\\u0000b"}}'
    )
    with pytest.raises(EventRejected) as caught:
        parse_event(document, now=datetime(2026, 11, 21, tzinfo=UTC), retention_days=90)
    assert caught.value.code == "invalid_field"
    assert "NUL" in caught.value.message
