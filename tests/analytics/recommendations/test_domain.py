"""The recommendation rules and the learning path of SPEC §3.2, pure: against the
definition read step by step (a component's formula replayed after the steps), and as
properties over generated scores and prerequisite graphs."""

import math
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.domain.recommendations import (
    ACTIONS,
    PairProgress,
    RecommendationRules,
    TopicNode,
    active_days_to_threshold,
    exercises_to_threshold,
    learning_path,
    perfect_results_to_threshold,
    prerequisite_cycles,
    prerequisite_depths,
    priority_for,
    recommendation_for,
    recommendations_for,
)
from mastery.domain.formula import COMPONENTS, DEFAULT_WEIGHTS

TODAY = date(2026, 11, 20)
MINUTES = {"practice": 15, "review": 20, "refactor": 30, "schedule": 25}
RULES = RecommendationRules(threshold=0.7, weights=DEFAULT_WEIGHTS, minutes=MINUTES)

scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def progress(**changes) -> PairProgress:
    return PairProgress(topic="python.loops", **changes)


# --- one recommendation per component below the threshold ---------------------------------


@given(components=st.fixed_dictionaries(dict.fromkeys(COMPONENTS, scores)))
def test_one_recommendation_per_component_below_the_threshold_and_none_at_or_above(components):
    found = recommendations_for(progress(**components), RULES, today=TODAY)

    below = {name for name, value in components.items() if round(value, 4) < 0.7}
    assert sorted(r.component for r in found) == sorted(below)
    assert {r.action for r in found} == {ACTIONS[name] for name in below}
    assert [r.impact for r in found] == sorted((r.impact for r in found), reverse=True)


@pytest.mark.parametrize("score", [0.7, 0.70001, 0.69999999, 0.9, 1.0])
def test_a_score_at_or_above_the_threshold_gets_nothing(score):
    # 0.69999999 is 0.7 at the precision of scores: advising 0.70 -> 0.70 would be absurd.
    assert recommendation_for(progress(quiz=score), "quiz", RULES, today=TODAY) is None


def test_a_score_just_below_the_threshold_gets_its_recommendation():
    found = recommendation_for(progress(quiz=0.6999), "quiz", RULES, today=TODAY)

    assert (found.action, found.score, found.impact) == ("review", 0.6999, 0.0)


def test_the_actions_are_those_of_the_spec():
    assert ACTIONS == {
        "completion": "practice",
        "quiz": "review",
        "quality": "refactor",
        "consistency": "schedule",
    }


# --- impact and priority ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("component", "score", "impact", "priority"),
    [
        ("completion", 0.5, 0.08, "high"),  # 0.4 * 0.2: the high bound itself
        ("completion", 0.5001, 0.08, "high"),  # 0.07996 shown as 0.08
        ("completion", 0.5002, 0.0799, "medium"),
        ("quiz", 0.6, 0.03, "medium"),  # 0.3 * 0.1: the medium bound itself
        ("quiz", 0.6001, 0.03, "medium"),
        ("quiz", 0.6002, 0.0299, "low"),
        ("quality", 0.3, 0.08, "high"),  # 0.2 * 0.4
        ("consistency", 0.0, 0.07, "medium"),  # 0.1 * 0.7
        ("quality", 0.55, 0.03, "medium"),
    ],
)
def test_impact_is_weight_times_the_gap_and_priority_has_its_bounds(
    component, score, impact, priority
):
    found = recommendation_for(progress(**{component: score}), component, RULES, today=TODAY)

    assert found.impact == impact
    assert found.priority == priority


@pytest.mark.parametrize(
    ("impact", "priority"),
    [
        (0.08, "high"),
        (0.0800001, "high"),
        (0.0799, "medium"),
        (0.07996, "high"),  # 0.0800 at the precision of scores
        (0.03, "medium"),
        (0.0299, "low"),
        (0.0, "low"),
        (0.28, "high"),
    ],
)
def test_priority_bounds(impact, priority):
    assert priority_for(impact) == priority


# --- steps and minutes: the formula replayed after the steps -------------------------------


@given(
    total=st.integers(min_value=1, max_value=400),
    done_share=scores,
    threshold=st.floats(min_value=0.05, max_value=1.0),
)
def test_exercises_left_are_the_fewest_that_reach_the_threshold(total, done_share, threshold):
    done = min(total - 1, math.floor(done_share * total))
    if round(done / total, 4) >= threshold:
        return

    more, then = exercises_to_threshold(done, total, threshold)

    assert more >= 1
    assert round((done + more) / total, 4) >= threshold
    assert round((done + more - 1) / total, 4) < threshold
    assert then == (done + more) / total


@pytest.mark.parametrize(
    ("done", "total", "more", "minutes"),
    [(4, 10, 3, 45), (0, 10, 7, 105), (6, 10, 1, 15), (1, 3, 2, 30), (0, 1, 1, 15)],
)
def test_practice_minutes_are_minutes_per_exercise_times_exercises_left(done, total, more, minutes):
    found = recommendation_for(
        progress(completion=done / total, exercises_done=done, exercises_total=total),
        "completion",
        RULES,
        today=TODAY,
    )

    assert (found.steps, found.estimated_minutes) == (more, minutes)


def test_the_message_gives_the_numbers_of_the_spec_example():
    found = recommendation_for(
        progress(completion=0.4, exercises_done=4, exercises_total=10),
        "completion",
        RULES,
        today=TODAY,
    )

    assert found.message == (
        "3 more exercises in python.loops would lift completion from 0.40 to 0.70, +0.12 mastery."
    )
    assert (found.target, found.mastery_gain, found.priority) == (0.7, 0.12, "high")


def replayed_mean(recent: list[float], perfect: int, window: int) -> float:
    """The component's definition: the mean of the `window` most recent results."""
    results = list(reversed(recent)) + [1.0] * perfect  # oldest first
    kept = results[-window:]
    return sum(kept) / len(kept)


@given(
    recent=st.lists(scores, max_size=5),
    threshold=st.floats(min_value=0.05, max_value=1.0),
)
def test_quizzes_at_full_marks_are_the_fewest_that_reach_the_threshold(recent, threshold):
    more, then = perfect_results_to_threshold(tuple(recent), 5, threshold)

    assert round(replayed_mean(recent, more, 5), 4) >= threshold
    assert then == pytest.approx(replayed_mean(recent, more, 5))
    if more > 1:
        assert round(replayed_mean(recent, more - 1, 5), 4) < threshold


@pytest.mark.parametrize(
    ("recent", "more"),
    [
        ((), 1),  # no quiz yet: one at full marks makes the mean 1.0
        ((0.5, 0.5, 0.5, 0.5, 0.5), 2),  # 0.6, then 0.7
        ((0.0, 0.0, 0.0, 0.0, 0.0), 4),  # 0.2, 0.4, 0.6, 0.8
        ((0.4,), 1),  # (1.0 + 0.4) / 2
    ],
)
def test_review_and_refactor_minutes(recent, more):
    mean = sum(recent) / len(recent) if recent else 0.0
    review = recommendation_for(progress(quiz=mean, quiz_recent=recent), "quiz", RULES, today=TODAY)
    refactor = recommendation_for(
        progress(quality=mean, quality_recent=recent), "quality", RULES, today=TODAY
    )

    assert (review.steps, review.estimated_minutes) == (more, 20 * more)
    assert (refactor.steps, refactor.estimated_minutes) == (more, 30 * more)


def replayed_consistency(active: set[date], extra: int, start: date, window: int) -> float:
    """The component's definition: distinct active days in the window ending on the
    latest active day, over the window."""
    days = active | {start + timedelta(days=n) for n in range(extra)}
    last = max(days)
    return len({d for d in days if (last - d).days < window}) / window


@given(
    offsets=st.sets(st.integers(min_value=0, max_value=40), max_size=20),
    threshold=st.floats(min_value=0.05, max_value=1.0),
)
def test_days_in_a_row_are_the_fewest_that_reach_the_threshold(offsets, threshold):
    active = {TODAY - timedelta(days=n) for n in offsets}

    more, then, start = active_days_to_threshold(active, 14, threshold, today=TODAY)

    assert start == (TODAY + timedelta(days=1) if TODAY in active else TODAY)
    assert round(replayed_consistency(active, more, start, 14), 4) >= threshold
    assert then == pytest.approx(replayed_consistency(active, more, start, 14))
    if more > 1:
        assert round(replayed_consistency(active, more - 1, start, 14), 4) < threshold


def test_schedule_counts_days_from_today_as_old_days_leave_the_window():
    # Active on 5 of the last 7 days (today included): 0.36 now.
    active = tuple(TODAY - timedelta(days=n) for n in (0, 1, 3, 4, 6))
    found = recommendation_for(
        progress(consistency=5 / 14, active_days=active), "consistency", RULES, today=TODAY
    )

    # Tomorrow on, 5 more days: 10 active days in the 14 ending on the last one.
    assert (found.steps, found.estimated_minutes, found.target) == (5, 125, 0.7143)
    assert found.message == (
        "Work on python.loops on 5 days in a row from 2026-11-21: consistency would rise "
        "from 0.36 to 0.71, +0.04 mastery."
    )


def test_minutes_follow_the_settings():
    rules = RecommendationRules(
        threshold=0.7,
        weights=DEFAULT_WEIGHTS,
        minutes={"practice": 7, "review": 11, "refactor": 13, "schedule": 17},
    )
    found = {
        r.action: r.estimated_minutes
        for r in recommendations_for(
            progress(exercises_done=0, exercises_total=10), rules, today=TODAY
        )
    }

    assert found == {"practice": 7 * 7, "review": 11, "refactor": 13, "schedule": 17 * 10}


@pytest.mark.parametrize(
    "changes",
    [
        {"threshold": 0.0},
        {"threshold": 1.5},
        {"minutes": {**MINUTES, "practice": 0}},
        {"minutes": {**MINUTES, "practice": 2.5}},
        {"minutes": {"practice": 1}},
        {"recent_window": 0},
    ],
)
def test_bad_rules_are_refused(changes):
    arguments = {"threshold": 0.7, "weights": DEFAULT_WEIGHTS, "minutes": MINUTES, **changes}
    with pytest.raises(ValueError, match=r"threshold|minutes|recent_window"):
        RecommendationRules(**arguments)


def test_the_rules_hash_changes_with_what_changes_the_advice():
    other = RecommendationRules(threshold=0.8, weights=DEFAULT_WEIGHTS, minutes=MINUTES)
    same = RecommendationRules(threshold=0.7, weights=DEFAULT_WEIGHTS, minutes=dict(MINUTES))

    assert RULES.rules_hash == same.rules_hash != other.rules_hash
    assert len(RULES.rules_hash) == 16


# --- the learning path --------------------------------------------------------------------

slugs = st.sampled_from([f"t{n}" for n in range(8)])


@st.composite
def catalogues(draw, acyclic: bool):
    """Topics with random mastery and prerequisites; if `acyclic`, each topic only names
    topics listed before it, so there is no cycle."""
    names = draw(st.lists(slugs, min_size=1, max_size=8, unique=True))
    nodes = []
    for position, name in enumerate(names):
        pool = names[:position] if acyclic else names
        prerequisites = draw(st.lists(st.sampled_from(pool), unique=True) if pool else st.just([]))
        mastery = draw(st.sampled_from([0.0, 0.2, 0.5, 0.69, 0.7, 0.9]) | scores)
        nodes.append(TopicNode(name, mastery, tuple(prerequisites)))
    return nodes


def unmastered_prerequisites(node: TopicNode, by_topic: dict[str, TopicNode]) -> set[str]:
    return {p for p in node.prerequisites if p in by_topic and round(by_topic[p].mastery, 4) < 0.7}


@given(nodes=catalogues(acyclic=True))
def test_the_path_never_lists_a_topic_before_an_unmastered_prerequisite(nodes):
    by_topic = {n.topic: n for n in nodes}

    path = learning_path(nodes, 0.7)

    position = {step.topic: n for n, step in enumerate(path.steps)}
    for step in path.steps:
        for prerequisite in unmastered_prerequisites(by_topic[step.topic], by_topic):
            assert position[prerequisite] < position[step.topic]
    assert path.problems == ()


@given(nodes=catalogues(acyclic=False))
@settings(max_examples=300)
def test_every_topic_is_placed_once_and_locked_ones_name_exactly_their_blockers(nodes):
    by_topic = {n.topic: n for n in nodes}

    path = learning_path(nodes, 0.7)

    listed = [step.topic for step in path.steps]
    assert sorted(listed + list(path.mastered)) == sorted(by_topic)
    assert all(round(by_topic[t].mastery, 4) >= 0.7 for t in path.mastered)
    statuses = [step.status for step in path.steps]
    assert statuses == sorted(statuses, key=lambda s: s != "unlocked")  # unlocked first
    for step in path.steps:
        blockers = unmastered_prerequisites(by_topic[step.topic], by_topic)
        assert {b.topic for b in step.blocked_by} == blockers
        assert step.status == ("locked" if blockers else "unlocked")
    unlocked = [by_topic[t].mastery for t in path.unlocked]
    assert unlocked == sorted(unlocked)  # weakest first


@given(nodes=catalogues(acyclic=False))
def test_outside_a_cycle_no_topic_comes_before_what_blocks_it(nodes):
    by_topic = {n.topic: n for n in nodes}

    path = learning_path(nodes, 0.7)

    cycle_of = {
        t: n
        for n, problem in enumerate(path.problems)
        if problem.code == "prerequisite_cycle"
        for t in problem.topics
    }
    position = {step.topic: n for n, step in enumerate(path.steps)}
    for step in path.steps:
        for prerequisite in unmastered_prerequisites(by_topic[step.topic], by_topic):
            same_cycle = step.topic in cycle_of and cycle_of[step.topic] == cycle_of.get(
                prerequisite
            )
            assert same_cycle or position[prerequisite] < position[step.topic]


def test_the_demo_catalogue_in_order():
    nodes = [
        TopicNode("python.basics", 0.82),
        TopicNode("python.strings", 0.3, ("python.basics",)),
        TopicNode("python.loops", 0.55, ("python.basics",)),
        TopicNode("python.functions", 0.1, ("python.loops",)),
        TopicNode("python.classes", 0.0, ("python.functions", "python.strings")),
    ]

    path = learning_path(nodes, 0.7)

    assert [(s.topic, s.status) for s in path.steps] == [
        ("python.strings", "unlocked"),
        ("python.loops", "unlocked"),
        ("python.functions", "locked"),
        ("python.classes", "locked"),
    ]
    assert [(b.topic, b.mastery) for b in path.steps[3].blocked_by] == [
        ("python.functions", 0.1),
        ("python.strings", 0.3),
    ]
    assert path.mastered == ("python.basics",)


def test_a_cycle_is_reported_and_its_topics_still_listed():
    nodes = [
        TopicNode("a", 0.1, ("c",)),
        TopicNode("b", 0.2, ("a",)),
        TopicNode("c", 0.3, ("b",)),
        TopicNode("d", 0.0, ("c",)),
        TopicNode("e", 0.4),
    ]

    path = learning_path(nodes, 0.7)

    assert [(p.code, p.topics) for p in path.problems] == [("prerequisite_cycle", ("a", "b", "c"))]
    assert [s.topic for s in path.steps] == ["e", "a", "b", "c", "d"]
    assert [b.topic for b in path.steps[-1].blocked_by] == ["c"]


def test_a_topic_that_is_its_own_prerequisite_is_reported():
    path = learning_path([TopicNode("a", 0.1, ("a",)), TopicNode("b", 0.9, ("b",))], 0.7)

    assert [(p.code, p.topics) for p in path.problems] == [
        ("prerequisite_cycle", ("a",)),
        ("prerequisite_cycle", ("b",)),
    ]
    assert [(s.topic, s.status) for s in path.steps] == [("a", "locked")]


def test_a_dangling_prerequisite_is_reported_and_blocks_nothing():
    path = learning_path([TopicNode("a", 0.1, ("gone", "b")), TopicNode("b", 0.8)], 0.7)

    assert [(p.code, p.topics) for p in path.problems] == [("missing_prerequisite", ("a", "gone"))]
    assert [(s.topic, s.status) for s in path.steps] == [("a", "unlocked")]


def test_cycles_are_grouped_by_topics_that_reach_each_other():
    graph = {"a": ["b"], "b": ["a"], "c": ["d"], "d": ["c", "a"], "e": ["d"]}

    assert prerequisite_cycles(graph) == [("a", "b"), ("c", "d")]
    assert prerequisite_cycles({"a": ["b"], "b": []}) == []


def test_depths_draw_a_chain_and_survive_a_cycle():
    assert prerequisite_depths({"c": ["b"], "b": ["a"], "x": ["a", "c"]}) == {
        "a": 0,
        "b": 1,
        "c": 2,
        "x": 3,
    }
    assert prerequisite_depths({"a": ["b"], "b": ["a"], "c": ["a"]}) == {"a": 0, "b": 0, "c": 1}


@given(nodes=catalogues(acyclic=False))
def test_depths_cover_every_topic_and_grow_along_edges_outside_cycles(nodes):
    graph = {n.topic: list(n.prerequisites) for n in nodes}
    depth = prerequisite_depths(graph)
    in_cycle = {t for group in prerequisite_cycles(graph) for t in group}

    assert set(depth) == set(graph)
    for topic, prerequisites in graph.items():
        for prerequisite in prerequisites:
            if not (topic in in_cycle and prerequisite in in_cycle):
                assert depth[prerequisite] < depth[topic]
