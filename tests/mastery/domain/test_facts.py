import json
import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mastery.domain.facts import (
    CODE_REVIEWED,
    EVENT_TYPES,
    EXERCISE_COMPLETED,
    QUIZ_SUBMITTED,
    SESSION_COMPLETED,
    PairEvent,
    PairFacts,
    components_of,
    daily_states,
    effective_exercises_total,
    facts_from_record,
    facts_to_record,
    fold,
    latest_reported_total,
    reference_mastery,
)
from mastery.domain.formula import (
    COMPONENTS,
    DEFAULT_WEIGHTS,
    ScoringPolicy,
    Weights,
    mastery_score,
)

POLICY = ScoringPolicy(DEFAULT_WEIGHTS)
BASE = datetime(2026, 3, 1, tzinfo=UTC)
EMPTY = PairFacts.empty()


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return BASE + timedelta(days=day, hours=hour, minutes=minute)


def exercise(event_id, when, exercise_id, total=None):
    payload = {"exercise_id": exercise_id}
    if total is not None:
        payload["exercises_total"] = total
    return PairEvent(event_id, EXERCISE_COMPLETED, when, payload)


def quiz(event_id, when, score, max_score=10):
    return PairEvent(
        event_id, QUIZ_SUBMITTED, when, {"quiz_id": "q", "score": score, "max_score": max_score}
    )


def review(event_id, when, quality_score):
    return PairEvent(
        event_id, CODE_REVIEWED, when, {"submission_id": "s", "quality_score": quality_score}
    )


def session(event_id, when, minutes=30):
    return PairEvent(event_id, SESSION_COMPLETED, when, {"duration_minutes": minutes})


def components(events, exercises_total=10, policy=POLICY):
    return components_of(fold(EMPTY, events, policy), exercises_total, policy)


# Worked examples


def test_no_events_means_all_components_zero():
    assert components([]).as_dict() == dict.fromkeys(COMPONENTS, 0.0)
    assert reference_mastery([], 10, POLICY)[1] == 0.0


def test_completion_counts_distinct_exercise_ids():
    events = [exercise("a", at(0), "ex1"), exercise("b", at(1), "ex1"), exercise("c", at(2), "ex2")]
    assert components(events).completion == 0.2


def test_completion_is_capped_at_one():
    events = [exercise(f"e{i}", at(0), f"ex{i}") for i in range(4)]
    assert components(events, exercises_total=3).completion == 1.0


@pytest.mark.parametrize("total", [0, -1, True, 2.5])
def test_components_refuse_a_non_positive_exercises_total(total):
    with pytest.raises(ValueError, match="exercises_total"):
        components_of(EMPTY, total, POLICY)


def test_quiz_is_mean_of_five_most_recent_ratios():
    scores = [0, 10, 8, 6, 4, 2, 5]  # the oldest two (0 and 10) fall out of the window
    events = [quiz(f"q{i}", at(i), score) for i, score in enumerate(scores)]
    assert components(events).quiz == pytest.approx((8 + 6 + 4 + 2 + 5) / 50)


def test_quiz_uses_score_over_max_score():
    events = [quiz("a", at(0), 3, 4), quiz("b", at(1), 1.5, 2)]
    assert components(events).quiz == 0.75


@pytest.mark.parametrize("reverse", [False, True])
def test_same_instant_is_ordered_by_event_id_larger_is_more_recent(reverse):
    policy = ScoringPolicy(DEFAULT_WEIGHTS, recent_window=1)
    events = [quiz("b", at(0), 10), quiz("a", at(0), 0)]
    if reverse:
        events.reverse()
    assert components(events, policy=policy).quiz == 1.0
    facts = fold(EMPTY, events, policy)
    assert facts.latest_event_id == "b"
    assert [entry[1] for entry in facts.quiz_recent] == ["b"]


def test_tie_at_the_edge_of_the_window_drops_the_smaller_event_id():
    older = [quiz("x", at(0), 0), quiz("y", at(0), 10)]
    newer = [quiz(f"n{i}", at(1 + i), 5) for i in range(4)]
    facts = fold(EMPTY, older + newer, POLICY)
    assert [entry[1] for entry in facts.quiz_recent] == ["n3", "n2", "n1", "n0", "y"]
    assert components_of(facts, 10, POLICY).quiz == pytest.approx(0.6)


def test_quality_is_mean_of_five_most_recent_reviews():
    values = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    events = [review(f"r{i}", at(i), value) for i, value in enumerate(values)]
    assert components(events).quality == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("days", "expected_active"),
    [
        ([0], 1),
        ([0, 0, 0], 1),
        ([0, 13], 2),  # 13 days back from the latest day still counts
        ([0, 14], 1),  # 14 days back does not
        ([0, 1, 14], 2),
        (list(range(20)), 14),
    ],
)
def test_consistency_counts_days_in_the_fourteen_days_ending_on_latest(days, expected_active):
    events = [session(f"s{i}", at(day)) for i, day in enumerate(days)]
    assert components(events).consistency == expected_active / 14


def test_consistency_uses_utc_days():
    # 23:30 at UTC-05:00 is already the next UTC day.
    new_york = timezone(timedelta(hours=-5))
    late = datetime(2026, 3, 1, 23, 30, tzinfo=new_york)
    facts = fold(EMPTY, [session("a", late), session("b", at(1, hour=1))], POLICY)
    assert facts.active_days == (date(2026, 3, 2),)
    assert facts.latest_at.tzinfo == UTC


def test_every_event_type_counts_as_activity():
    events = [
        exercise("a", at(0), "ex"),
        quiz("b", at(1), 5),
        review("c", at(2), 0.5),
        session("d", at(3)),
    ]
    facts = fold(EMPTY, events, POLICY)
    assert len(facts.active_days) == 4
    assert (facts.latest_at, facts.latest_event_id) == (at(3), "d")


def test_late_old_event_cannot_revive_a_day_outside_the_window():
    facts = fold(EMPTY, [session("new", at(30))], POLICY)
    facts = fold(facts, [session("old", at(2))], POLICY)
    assert facts.active_days == (at(30).date(),)
    assert facts.latest_event_id == "new"


def test_later_event_slides_the_window_forward():
    facts = fold(EMPTY, [session("a", at(0)), session("b", at(5))], POLICY)
    facts = fold(facts, [session("c", at(14))], POLICY)
    assert facts.active_days == (at(5).date(), at(14).date())


def test_duplicate_event_is_not_counted_twice():
    events = [quiz("a", at(0), 2), quiz("b", at(1), 8)]
    once = fold(EMPTY, events, POLICY)
    assert fold(once, events, POLICY) == once
    assert components_of(once, 10, POLICY).quiz == 0.5


def test_fold_of_nothing_returns_the_same_facts():
    facts = fold(EMPTY, [session("a", at(0))], POLICY)
    assert fold(facts, [], POLICY) is facts


def test_pair_event_requires_an_aware_datetime_and_a_known_type():
    with pytest.raises(ValueError, match="timezone-aware"):
        PairEvent("a", SESSION_COMPLETED, datetime(2026, 3, 1, 12), {})
    with pytest.raises(ValueError, match="unknown event_type"):
        PairEvent("a", "lesson.viewed", at(0), {})


def test_narrower_policy_rescored_from_stored_facts_matches_reference():
    events = [quiz(f"q{i}", at(i), i) for i in range(8)] + [session("s", at(0))]
    facts = fold(EMPTY, events, POLICY)
    narrower = ScoringPolicy(Weights(0.25, 0.25, 0.25, 0.25), recent_window=3, consistency_days=7)
    expected, _ = reference_mastery(events, 10, narrower)
    assert components_of(facts, 10, narrower) == expected


# daily_states


def test_daily_states_gives_end_of_day_facts_for_days_with_events():
    events = [
        quiz("c", at(2), 10),
        session("a", at(0, hour=9)),
        quiz("b", at(0, hour=18), 5),
        review("d", at(2, hour=1), 0.5),
    ]
    states = daily_states(EMPTY, events, POLICY)
    assert [day for day, _ in states] == [at(0).date(), at(2).date()]
    first = states[0][1]
    assert first == fold(EMPTY, events[1:3], POLICY)
    assert components_of(first, 10, POLICY).quiz == 0.5
    assert states[-1][1] == fold(EMPTY, events, POLICY)


def test_daily_states_of_no_events_is_empty():
    assert daily_states(EMPTY, [], POLICY) == []


# exercises_total


@pytest.mark.parametrize(
    ("admin", "reported", "expected"),
    [
        (25, (at(0), "a", 12), 25),
        (None, (at(0), "a", 12), 12),
        (None, None, 10),
        (1, None, 1),
    ],
)
def test_effective_exercises_total_prefers_admin_then_reported_then_default(
    admin, reported, expected
):
    assert effective_exercises_total(admin, reported, 10) == expected


@pytest.mark.parametrize("admin", [0, -3, True])
def test_effective_exercises_total_refuses_bad_admin_value(admin):
    with pytest.raises(ValueError, match="exercises_total"):
        effective_exercises_total(admin, None, 10)


def test_latest_reported_total_is_the_most_recent_carrying_one():
    events = [
        exercise("a", at(3), "ex", total=20),
        exercise("c", at(5), "ex", total=30),
        exercise("b", at(5), "ex", total=40),
        exercise("d", at(9), "ex"),
        quiz("e", at(10), 1),
    ]
    assert latest_reported_total(None, events) == (at(5), "c", 30)
    assert latest_reported_total(None, reversed(events)) == (at(5), "c", 30)
    assert latest_reported_total((at(6), "z", 7), events) == (at(6), "z", 7)
    assert latest_reported_total(None, events[3:]) is None


# Serialization


def test_facts_record_round_trips_through_json():
    events = [
        exercise("a", at(0), "ex1"),
        quiz("b", at(1, minute=1) + timedelta(microseconds=17), 1, 3),
        review("c", at(2), 0.1),
        session("d", at(3)),
    ]
    facts = fold(EMPTY, events, POLICY)
    record = facts_to_record(facts)
    assert facts_from_record(json.loads(json.dumps(record))) == facts
    assert facts_from_record(facts_to_record(EMPTY)) == EMPTY


def test_facts_record_with_unknown_version_is_refused():
    record = facts_to_record(EMPTY) | {"version": 99}
    with pytest.raises(ValueError, match="version"):
        facts_from_record(record)


# Properties: the state depends only on the set of events (SPEC §2.1)

EXERCISE_IDS = [f"ex{i}" for i in range(15)]


@st.composite
def payloads(draw, event_type):
    if event_type == EXERCISE_COMPLETED:
        payload = {"exercise_id": draw(st.sampled_from(EXERCISE_IDS))}
        total = draw(st.none() | st.integers(1, 30))
        if total is not None:
            payload["exercises_total"] = total
        return payload
    if event_type == QUIZ_SUBMITTED:
        max_score = draw(st.integers(1, 20) | st.floats(0.5, 100))
        score = draw(st.floats(0, 1)) * max_score
        return {"quiz_id": "q", "score": score, "max_score": max_score}
    if event_type == CODE_REVIEWED:
        return {"submission_id": "s", "quality_score": draw(st.floats(0, 1))}
    return {"duration_minutes": draw(st.integers(0, 120))}


@st.composite
def event_sets(draw, max_size=40):
    ids = draw(
        st.lists(st.text("abcdef0123", min_size=1, max_size=3), unique=True, max_size=max_size)
    )
    events = []
    for event_id in ids:
        # Few distinct instants per day so that ties in occurred_at are common.
        when = at(draw(st.integers(0, 40)), hour=0, minute=draw(st.sampled_from([0, 1, 600])))
        event_type = draw(st.sampled_from(EVENT_TYPES))
        events.append(PairEvent(event_id, event_type, when, draw(payloads(event_type))))
    return events


policies = st.builds(
    ScoringPolicy,
    weights=st.just(DEFAULT_WEIGHTS),
    recent_window=st.integers(1, 7),
    consistency_days=st.integers(1, 20),
)
property_settings = settings(max_examples=200, deadline=None)


@property_settings
@given(events=event_sets(), policy=policies, data=st.data())
def test_fold_ignores_order_and_repeats(events, policy, data):
    repeated = events + data.draw(st.lists(st.sampled_from(events))) if events else []
    shuffled = data.draw(st.permutations(repeated))
    assert fold(EMPTY, shuffled, policy) == fold(EMPTY, events, policy)


@property_settings
@given(events=event_sets(), policy=policies, data=st.data())
def test_fold_ignores_how_events_are_split_across_calls(events, policy, data):
    shuffled = data.draw(st.permutations(events))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(events)), max_size=6)))
    facts = EMPTY
    for start, end in zip([0, *cuts], [*cuts, len(events)], strict=True):
        facts = fold(facts, shuffled[start:end], policy)
    assert facts == fold(EMPTY, events, policy)


@property_settings
@given(events=event_sets(), policy=policies, exercises_total=st.integers(1, 20), data=st.data())
def test_incremental_components_match_reference(events, policy, exercises_total, data):
    shuffled = data.draw(st.permutations(events))
    half = len(shuffled) // 2
    facts = fold(fold(EMPTY, shuffled[:half], policy), shuffled[half:], policy)
    got = components_of(facts, exercises_total, policy)
    expected, expected_score = reference_mastery(events, exercises_total, policy)
    for name in COMPONENTS:
        assert math.isclose(getattr(got, name), getattr(expected, name), abs_tol=1e-9)
    # Both round to 4 decimals; summation order may move a sum across a rounding edge.
    score = mastery_score(got, policy.weights)
    assert math.isclose(score, expected_score, abs_tol=1e-4 + 1e-12)


@property_settings
@given(events=event_sets(), policy=policies)
def test_daily_states_end_where_fold_ends(events, policy):
    states = daily_states(EMPTY, events, policy)
    days = [day for day, _ in states]
    assert days == sorted({event.occurred_at.date() for event in events})
    if events:
        assert states[-1][1] == fold(EMPTY, events, policy)
    for day, facts in states:
        assert facts == fold(EMPTY, [e for e in events if e.occurred_at.date() <= day], policy)


@property_settings
@given(events=event_sets(), policy=policies)
def test_facts_record_round_trip_is_exact(events, policy):
    facts = fold(EMPTY, events, policy)
    assert facts_from_record(json.loads(json.dumps(facts_to_record(facts)))) == facts


@property_settings
@given(events=event_sets(), data=st.data())
def test_latest_reported_total_ignores_order(events, data):
    shuffled = data.draw(st.permutations(events))
    half = len(shuffled) // 2
    split = latest_reported_total(latest_reported_total(None, shuffled[:half]), shuffled[half:])
    assert split == latest_reported_total(None, events)
