"""The mastery formula of SPEC §2.1: weights, components, score, level and policy hash."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from numbers import Real

COMPONENTS = ("completion", "quiz", "quality", "consistency")

# Lower bound (inclusive) of each level band, ascending; the last band includes 1.0.
LEVELS: tuple[tuple[float, str], ...] = (
    (0.0, "beginner"),
    (0.5, "developing"),
    (0.7, "proficient"),
    (0.9, "mastered"),
)

_WEIGHT_SUM_TOLERANCE = 1e-9


def _unit_float(name: str, value: object) -> float:
    """Return `value` as a float in [0, 1] or raise ValueError (bools and NaN are refused)."""
    if type(value) is float and 0.0 <= value <= 1.0:  # the hot path: skip the ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return number


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


@dataclass(frozen=True)
class Weights:
    """Weights of the four components; each in [0, 1], summing to 1."""

    completion: float
    quiz: float
    quality: float
    consistency: float

    def __post_init__(self) -> None:
        for name in COMPONENTS:
            object.__setattr__(self, name, _unit_float(name, getattr(self, name)))
        total = math.fsum(getattr(self, name) for name in COMPONENTS)
        if abs(total - 1.0) > _WEIGHT_SUM_TOLERANCE:
            raise ValueError(f"weights must sum to 1, got {total!r}")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, float]) -> Weights:
        """Build from a mapping such as `MASTERY_WEIGHTS`; keys must be exactly COMPONENTS."""
        missing = [name for name in COMPONENTS if name not in mapping]
        extra = sorted(str(key) for key in mapping if key not in COMPONENTS)
        if missing or extra:
            raise ValueError(f"weights keys: missing {missing}, unexpected {extra}")
        return cls(**{name: mapping[name] for name in COMPONENTS})

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in COMPONENTS}


DEFAULT_WEIGHTS = Weights(0.4, 0.3, 0.2, 0.1)


@dataclass(frozen=True)
class Components:
    """The four component scores of one (student, topic) pair, each in [0, 1]."""

    completion: float
    quiz: float
    quality: float
    consistency: float

    def __post_init__(self) -> None:
        for name in COMPONENTS:
            object.__setattr__(self, name, _unit_float(name, getattr(self, name)))

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in COMPONENTS}


def mastery_score(components: Components, weights: Weights) -> float:
    """Weighted sum of the components, clamped to [0, 1] and rounded to 4 decimals."""
    total = math.fsum(
        (
            components.completion * weights.completion,
            components.quiz * weights.quiz,
            components.quality * weights.quality,
            components.consistency * weights.consistency,
        )
    )
    return round(min(1.0, max(0.0, total)), 4)


def level_for(score: float) -> str:
    """Name of the level band that contains `score` (bands are closed below, open above)."""
    score = _unit_float("score", score)
    level = LEVELS[0][1]
    for lower, name in LEVELS:
        if score >= lower:
            level = name
    return level


def breakdown(components: Components, weights: Weights) -> dict[str, dict[str, float]]:
    """Per component: its score, its weight and its rounded contribution to the mastery score."""
    result: dict[str, dict[str, float]] = {}
    for name in COMPONENTS:
        score = getattr(components, name)
        weight = getattr(weights, name)
        result[name] = {
            "score": score,
            "weight": weight,
            "contribution": round(score * weight, 4),
        }
    return result


@dataclass(frozen=True)
class ScoringPolicy:
    """Everything that turns facts into a score; its hash is stored with each mastery record.

    `recent_window` is how many recent quizzes / code reviews are averaged, `consistency_days`
    the length of the activity window, `default_exercises_total` the fallback topic size.
    """

    weights: Weights
    recent_window: int = 5
    consistency_days: int = 14
    default_exercises_total: int = 10

    def __post_init__(self) -> None:
        if not isinstance(self.weights, Weights):
            raise ValueError(f"weights must be Weights, got {self.weights!r}")
        for item in fields(self):
            if item.name != "weights":
                _positive_int(item.name, getattr(self, item.name))

    def canonical_json(self) -> str:
        """Key-sorted, whitespace-free JSON of every field; float repr makes it process-stable."""
        document = {
            item.name: getattr(self, item.name) for item in fields(self) if item.name != "weights"
        }
        document["weights"] = self.weights.as_dict()
        return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @property
    def policy_hash(self) -> str:
        """First 16 hex chars of the sha256 of the canonical JSON."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()[:16]
