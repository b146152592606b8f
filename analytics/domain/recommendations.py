"""Recommendations and the learning path of SPEC §3.2, as pure rules.

A recommendation says what to do about one component of one topic that is below the
threshold, and why in numbers: how many steps (exercises, quizzes, reviews, days) would
bring it to the threshold, what that adds to mastery, and how long it takes. The counts
are exact for the formula of SPEC §2.1 (they replay its windows), assuming each step is
done well: quizzes and reviews at full marks, days in a row.

The learning path orders the catalogue's topics by the prerequisite graph. Whether a graph
may be *saved* is `mastery.domain.prerequisites` (the admin refuses cycles); the path only
has to survive a cycle or a dangling prerequisite already in the data: it reports them and
never loops.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from mastery.domain.formula import COMPONENTS, Weights
from mastery.domain.prerequisites import prerequisites_cycle

ACTIONS: Mapping[str, str] = {
    "completion": "practice",
    "quiz": "review",
    "quality": "refactor",
    "consistency": "schedule",
}
# What one step of each action is, for estimates and messages.
STEP_UNITS: Mapping[str, str] = {
    "practice": "exercise",
    "review": "quiz",
    "refactor": "review",
    "schedule": "day",
}
HIGH_PRIORITY_FROM = 0.08
MEDIUM_PRIORITY_FROM = 0.03
# Scores, impacts and gains are compared and shown at the precision of mastery scores, so
# that 0.4 * (0.7 - 0.5) is exactly the boundary 0.08 and a quiz mean of 0.69999999 is 0.7.
DECIMALS = 4


def _rounded(value: float) -> float:
    return round(value, DECIMALS)


@dataclass(frozen=True)
class RecommendationRules:
    """Everything the rules read: the threshold, the formula's weights and windows, and
    the minutes one step of each action takes (`minutes[action]`)."""

    threshold: float
    weights: Weights
    minutes: Mapping[str, int]
    recent_window: int = 5
    consistency_days: int = 14

    def __post_init__(self) -> None:
        if isinstance(self.threshold, bool) or not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold!r}")
        if set(self.minutes) != set(ACTIONS.values()):
            raise ValueError(f"minutes must name exactly {sorted(ACTIONS.values())}")
        for action, minutes in self.minutes.items():
            if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
                raise ValueError(f"minutes for {action} must be an integer >= 1, got {minutes!r}")
        for name in ("recent_window", "consistency_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

    def canonical_json(self) -> str:
        return json.dumps(
            {
                "threshold": self.threshold,
                "weights": self.weights.as_dict(),
                "minutes": dict(self.minutes),
                "recent_window": self.recent_window,
                "consistency_days": self.consistency_days,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @property
    def rules_hash(self) -> str:
        """Stored with each recommendation: under other rules the same score is advised
        differently, so it is a new recommendation."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PairProgress:
    """What the rules need of one student in one topic: the four component scores and the
    facts they come from (recent quiz and review ratios most recent first, active days)."""

    topic: str
    completion: float = 0.0
    quiz: float = 0.0
    quality: float = 0.0
    consistency: float = 0.0
    exercises_done: int = 0
    exercises_total: int = 10
    quiz_recent: tuple[float, ...] = ()
    quality_recent: tuple[float, ...] = ()
    active_days: tuple[date, ...] = ()

    def score(self, component: str) -> float:
        return _rounded(getattr(self, component))


@dataclass(frozen=True)
class Recommendation:
    topic: str
    component: str
    score: float
    action: str
    impact: float
    priority: str
    steps: int
    target: float
    mastery_gain: float
    estimated_minutes: int
    message: str


def impact_of(weight: float, threshold: float, score: float) -> float:
    """What reaching the threshold adds to mastery: weight * (threshold - score)."""
    return _rounded(weight * (threshold - score))


def priority_for(impact: float) -> str:
    """high from 0.08, medium from 0.03, else low (bounds included)."""
    impact = _rounded(impact)
    if impact >= HIGH_PRIORITY_FROM:
        return "high"
    if impact >= MEDIUM_PRIORITY_FROM:
        return "medium"
    return "low"


def _reached(value: float, threshold: float) -> bool:
    return _rounded(value) >= threshold


def exercises_to_threshold(done: int, total: int, threshold: float) -> tuple[int, float]:
    """(more exercises, completion then): the fewest distinct exercises that bring
    done ÷ total to the threshold. A count the topic's size has overtaken (a record not
    yet rescored) still gets one step."""
    done = min(max(done, 0), total - 1)
    # From just below the answer (a rounded share may reach it a little early), upwards.
    needed = max(done + 1, math.floor((threshold - 10**-DECIMALS) * total))
    while needed < total and not _reached(needed / total, threshold):
        needed += 1
    needed = min(needed, total)
    return needed - done, min(1.0, needed / total)


def perfect_results_to_threshold(
    recent: tuple[float, ...], window: int, threshold: float
) -> tuple[int, float]:
    """(more results, mean then): how many results at full marks bring the mean of the
    `window` most recent ones (`recent`, most recent first) to the threshold."""
    for steps in range(1, window + 1):
        kept = ((1.0,) * steps + tuple(recent))[:window]
        mean = math.fsum(kept) / len(kept)
        if _reached(mean, threshold):
            return steps, mean
    return window, 1.0


def active_days_to_threshold(
    active_days: Iterable[date], window: int, threshold: float, *, today: date
) -> tuple[int, float, date]:
    """(more days, consistency then, first of them): how many days of work in a row, from
    today (or the day after the latest active day), bring the share of active days in the
    window ending on the last of them to the threshold. Old days leave the window as it
    moves, as they do in the formula."""
    days = set(active_days)
    latest = max(days, default=None)
    start = today if latest is None else max(today, latest + timedelta(days=1))
    for steps in range(1, window + 1):
        end = start + timedelta(days=steps - 1)
        first = end - timedelta(days=window - 1)
        active = {d for d in days if first <= d <= end} | {
            start + timedelta(days=n) for n in range(steps)
        }
        share = len(active) / window
        if _reached(share, threshold):
            return steps, share, start
    return window, 1.0, start


def _count(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _message(
    action: str, topic: str, steps: int, score: float, target: float, gain: float, start: date
) -> str:
    numbers = f"from {score:.2f} to {target:.2f}, +{gain:.2f} mastery"
    if action == "practice":
        more = _count(steps, "more exercise", "more exercises")
        return f"{more} in {topic} would lift completion {numbers}."
    if action == "review":
        quizzes = _count(steps, "more quiz", "more quizzes")
        return (
            f"Review {topic} and take {quizzes}: at full marks they would lift "
            f"the quiz average {numbers}."
        )
    if action == "refactor":
        return (
            f"Refactor and resubmit {_count(steps, 'exercise', 'exercises')} in {topic} "
            f"for review: reviewed at 1.0 they would lift quality {numbers}."
        )
    return (
        f"Work on {topic} on {_count(steps, 'day', 'days')} in a row from {start.isoformat()}: "
        f"consistency would rise {numbers}."
    )


def recommendation_for(
    progress: PairProgress, component: str, rules: RecommendationRules, *, today: date
) -> Recommendation | None:
    """The recommendation for one component, or None when it is at or above the threshold."""
    score = progress.score(component)
    if score >= rules.threshold:
        return None
    action = ACTIONS[component]
    start = today
    if component == "completion":
        steps, target = exercises_to_threshold(
            progress.exercises_done, progress.exercises_total, rules.threshold
        )
    elif component in ("quiz", "quality"):
        recent = progress.quiz_recent if component == "quiz" else progress.quality_recent
        steps, target = perfect_results_to_threshold(recent, rules.recent_window, rules.threshold)
    else:
        steps, target, start = active_days_to_threshold(
            progress.active_days, rules.consistency_days, rules.threshold, today=today
        )
    target = max(_rounded(target), score)
    weight = getattr(rules.weights, component)
    impact = impact_of(weight, rules.threshold, score)
    gain = _rounded(weight * (target - score))
    return Recommendation(
        topic=progress.topic,
        component=component,
        score=score,
        action=action,
        impact=impact,
        priority=priority_for(impact),
        steps=steps,
        target=target,
        mastery_gain=gain,
        estimated_minutes=steps * rules.minutes[action],
        message=_message(action, progress.topic, steps, score, target, gain, start),
    )


def recommendations_for(
    progress: PairProgress, rules: RecommendationRules, *, today: date
) -> list[Recommendation]:
    """One recommendation per component below the threshold, by impact."""
    found = (recommendation_for(progress, c, rules, today=today) for c in COMPONENTS)
    return by_impact(r for r in found if r is not None)


def by_impact(recommendations: Iterable[Recommendation]) -> list[Recommendation]:
    """Largest impact first; ties by topic, then in the formula's component order."""
    return sorted(
        recommendations, key=lambda r: (-r.impact, r.topic, COMPONENTS.index(r.component))
    )


# --- the learning path ---------------------------------------------------------------


@dataclass(frozen=True)
class TopicNode:
    """A topic of the catalogue, the student's mastery in it, and its direct prerequisites."""

    topic: str
    mastery: float
    prerequisites: tuple[str, ...] = ()


@dataclass(frozen=True)
class Blocker:
    topic: str
    mastery: float


@dataclass(frozen=True)
class PathStep:
    topic: str
    mastery: float
    status: str  # "unlocked" or "locked"
    blocked_by: tuple[Blocker, ...] = ()


@dataclass(frozen=True)
class PathProblem:
    """Something wrong in the prerequisite data, reported rather than looped on."""

    code: str  # "prerequisite_cycle" or "missing_prerequisite"
    topics: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class LearningPath:
    steps: tuple[PathStep, ...]
    mastered: tuple[str, ...]
    problems: tuple[PathProblem, ...] = ()

    @property
    def unlocked(self) -> tuple[str, ...]:
        return tuple(step.topic for step in self.steps if step.status == "unlocked")


def _reachable(start: str, graph: Mapping[str, Iterable[str]]) -> set[str]:
    """Every topic `start` depends on, directly or not (itself only through a cycle)."""
    seen: set[str] = set()
    stack = list(graph.get(start, ()))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(graph.get(current, ()))
    return seen


def prerequisite_cycles(graph: Mapping[str, Iterable[str]]) -> list[tuple[str, ...]]:
    """The groups of topics that depend on each other through their prerequisites (each
    group sorted, groups by their first topic). A topic is on a cycle when the one cycle
    rule, `prerequisites_cycle`, would refuse giving it its own prerequisites again."""
    names = sorted(graph)
    index = {name: n for n, name in enumerate(names)}
    numbered = {index[t]: [index[p] for p in graph[t] if p in index] for t in names}
    on_cycle = [t for t in names if prerequisites_cycle(index[t], numbered[index[t]], numbered)]
    reach = {t: _reachable(t, graph) for t in on_cycle}
    groups: list[tuple[str, ...]] = []
    placed: set[str] = set()
    for topic in on_cycle:
        if topic not in placed:
            group = tuple(t for t in on_cycle if t in reach[topic] and topic in reach[t])
            placed.update(group)
            groups.append(group)
    return groups


def _ordered(before: Mapping[str, set[str]], key) -> list[str]:
    """Every topic of `before` after the topics in its set (which must hold no cycle);
    among those ready, the smallest `key` first."""
    waiting = {topic: set(earlier) for topic, earlier in before.items()}
    later: dict[str, list[str]] = {topic: [] for topic in before}
    for topic, earlier in waiting.items():
        for prerequisite in earlier:
            later[prerequisite].append(topic)
    ready = [(key(topic), topic) for topic, earlier in waiting.items() if not earlier]
    heapq.heapify(ready)
    order = []
    while ready:
        _, topic = heapq.heappop(ready)
        order.append(topic)
        for dependent in later[topic]:
            waiting[dependent].discard(topic)
            if not waiting[dependent]:
                heapq.heappush(ready, (key(dependent), dependent))
    return order


def _without_cycle_edges(
    edges: Mapping[str, Iterable[str]], cycles: list[tuple[str, ...]]
) -> dict[str, set[str]]:
    """The edges minus those between two topics of one cycle: what is left has no cycle."""
    cycle_of = {topic: n for n, group in enumerate(cycles) for topic in group}
    return {
        topic: {p for p in earlier if p not in cycle_of or cycle_of.get(topic) != cycle_of[p]}
        for topic, earlier in edges.items()
    }


def learning_path(nodes: Iterable[TopicNode], threshold: float) -> LearningPath:
    """The topics to work on, in order (SPEC §3.2).

    First the unlocked topics: below the threshold, every known prerequisite at or above
    it; weakest first. Then the locked ones, each naming the prerequisites below the
    threshold that block it, ordered so that a topic comes after everything that blocks it
    (except between topics of one cycle, where no such order exists). A prerequisite that
    is not in the catalogue blocks nothing and is reported, as is each cycle.
    """
    known = {node.topic: node for node in nodes}

    def done(topic: str) -> bool:
        return _reached(known[topic].mastery, threshold)

    graph = {t: sorted({p for p in node.prerequisites if p in known}) for t, node in known.items()}
    problems = [
        PathProblem(
            "missing_prerequisite",
            (topic, *missing),
            f"{topic} names prerequisites that are not topics: {', '.join(missing)}.",
        )
        for topic, node in sorted(known.items())
        if (missing := tuple(sorted({p for p in node.prerequisites if p not in known})))
    ]
    cycles = prerequisite_cycles(graph)
    problems += [
        PathProblem(
            "prerequisite_cycle",
            group,
            "These topics depend on each other through their prerequisites: "
            f"{', '.join(group)}. The path orders them by mastery; fix their prerequisites.",
        )
        for group in cycles
    ]
    blockers = {
        t: sorted((p for p in graph[t] if not done(p)), key=lambda p: (known[p].mastery, p))
        for t in known
        if not done(t)
    }
    order = _ordered(
        _without_cycle_edges(blockers, cycles),
        key=lambda t: (1 if blockers[t] else 0, known[t].mastery, t),
    )
    steps = tuple(
        PathStep(
            topic=topic,
            mastery=_rounded(known[topic].mastery),
            status="locked" if blockers[topic] else "unlocked",
            blocked_by=tuple(Blocker(p, _rounded(known[p].mastery)) for p in blockers[topic]),
        )
        for topic in order
    )
    return LearningPath(
        steps=steps,
        mastered=tuple(sorted(t for t in known if done(t))),
        problems=tuple(problems),
    )


def prerequisite_depths(graph: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Each topic's column in a drawing of the graph: 0 without prerequisites, else one
    more than its deepest prerequisite. Edges inside a cycle are left out, so a cycle in
    the data still gets a drawing."""
    topics = set(graph) | {p for prerequisites in graph.values() for p in prerequisites}
    full = {t: sorted(set(graph.get(t, ()))) for t in topics}
    below = _without_cycle_edges(full, prerequisite_cycles(full))
    depth: dict[str, int] = {}
    for topic in _ordered(below, key=lambda t: t):
        depth[topic] = 1 + max((depth[p] for p in below[topic]), default=-1)
    return depth


def prerequisite_neighbourhood(
    graph: Mapping[str, Iterable[str]], topic: str
) -> dict[str, list[str]]:
    """The part of the graph that concerns `topic`: it, everything it depends on, and
    everything that depends on it, with the edges among them."""
    dependents: dict[str, list[str]] = {}
    for name, prerequisites in graph.items():
        for prerequisite in prerequisites:
            dependents.setdefault(prerequisite, []).append(name)
    kept = {topic} | _reachable(topic, graph) | _reachable(topic, dependents)
    return {name: sorted(p for p in graph.get(name, ()) if p in kept) for name in sorted(kept)}
