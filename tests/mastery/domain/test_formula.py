import math
import subprocess
import sys
from pathlib import Path

import pytest

from mastery.domain.formula import (
    COMPONENTS,
    DEFAULT_WEIGHTS,
    LEVELS,
    Components,
    ScoringPolicy,
    Weights,
    breakdown,
    level_for,
    mastery_score,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_default_weights_match_the_spec():
    assert DEFAULT_WEIGHTS.as_dict() == {
        "completion": 0.4,
        "quiz": 0.3,
        "quality": 0.2,
        "consistency": 0.1,
    }


@pytest.mark.parametrize(
    "values",
    [
        (0.4, 0.3, 0.2, 0.2),
        (0.4, 0.3, 0.2, 0.0),
        (1.1, -0.1, 0.0, 0.0),
        (-0.1, 0.5, 0.3, 0.3),
        (math.nan, 0.3, 0.2, 0.1),
        (math.inf, 0.0, 0.0, 0.0),
        (True, 0.0, 0.0, 0.0),
        ("0.4", 0.3, 0.2, 0.1),
        (0.4, 0.3, 0.2, 0.1 + 2e-9),
    ],
)
def test_invalid_weights_are_refused(values):
    with pytest.raises(ValueError, match=r"must (be|sum)"):
        Weights(*values)


@pytest.mark.parametrize(
    "values", [(1.0, 0.0, 0.0, 0.0), (0.25, 0.25, 0.25, 0.25), (0.4, 0.3, 0.2, 0.1 + 5e-10)]
)
def test_valid_weights_are_accepted(values):
    assert Weights(*values).completion == values[0]


def test_weights_from_mapping():
    mapping = {"quiz": 0.3, "consistency": 0.1, "completion": 0.4, "quality": 0.2}
    assert Weights.from_mapping(mapping) == DEFAULT_WEIGHTS


@pytest.mark.parametrize(
    "mapping",
    [
        {"completion": 0.5, "quiz": 0.3, "quality": 0.2},
        {"completion": 0.4, "quiz": 0.3, "quality": 0.2, "consistency": 0.1, "speed": 0.0},
        {},
    ],
)
def test_weights_from_mapping_refuses_missing_or_extra_keys(mapping):
    with pytest.raises(ValueError, match="weights keys"):
        Weights.from_mapping(mapping)


@pytest.mark.parametrize(
    "values",
    [(1.5, 0, 0, 0), (0, -0.01, 0, 0), (0, 0, math.nan, 0), (0, 0, 0, math.inf), (0, 0, 0, None)],
)
def test_components_outside_unit_interval_are_refused(values):
    with pytest.raises(ValueError, match="must be"):
        Components(*values)


@pytest.mark.parametrize(
    ("components", "expected"),
    [
        ((0, 0, 0, 0), 0.0),
        ((1, 1, 1, 1), 1.0),
        ((1, 0, 0, 0), 0.4),
        ((0.5, 0.8, 0.6, 3 / 14), 0.5814),
        ((1 / 3, 1 / 3, 1 / 3, 1 / 3), 0.3333),
        ((0.3, 0.7, 0.9, 0.5), 0.56),
        ((0.12345, 0.0, 0.0, 0.0), 0.0494),
    ],
)
def test_mastery_score_is_weighted_sum_rounded_to_four_decimals(components, expected):
    assert mastery_score(Components(*components), DEFAULT_WEIGHTS) == expected


def test_mastery_score_never_exceeds_one_from_float_error():
    weights = Weights(0.1, 0.2, 0.3, 0.4)
    assert mastery_score(Components(1, 1, 1, 1), weights) == 1.0


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0.0, "beginner"),
        (0.4999, "beginner"),
        (0.5, "developing"),
        (0.6999, "developing"),
        (0.7, "proficient"),
        (0.8999, "proficient"),
        (0.9, "mastered"),
        (1.0, "mastered"),
    ],
)
def test_level_boundaries(score, level):
    assert level_for(score) == level


@pytest.mark.parametrize("score", [-0.0001, 1.0001, math.nan])
def test_level_refuses_scores_outside_unit_interval(score):
    with pytest.raises(ValueError, match=r"score must be in \[0, 1\]"):
        level_for(score)


def test_levels_are_ascending_and_start_at_zero():
    lowers = [lower for lower, _ in LEVELS]
    assert lowers[0] == 0.0
    assert lowers == sorted(lowers)


def test_breakdown_lists_score_weight_and_contribution_per_component():
    result = breakdown(Components(0.5, 0.8, 0.6, 3 / 14), DEFAULT_WEIGHTS)
    assert list(result) == list(COMPONENTS)
    assert result["completion"] == {"score": 0.5, "weight": 0.4, "contribution": 0.2}
    assert result["quiz"] == {"score": 0.8, "weight": 0.3, "contribution": 0.24}
    assert result["consistency"]["contribution"] == 0.0214
    assert result["quality"]["contribution"] == 0.12


def test_policy_hash_is_sixteen_hex_chars_and_deterministic():
    policy = ScoringPolicy(DEFAULT_WEIGHTS)
    assert len(policy.policy_hash) == 16
    assert int(policy.policy_hash, 16) >= 0
    assert policy.policy_hash == ScoringPolicy(Weights(0.4, 0.3, 0.2, 0.1)).policy_hash


def test_policy_hash_is_stable_across_processes():
    code = (
        "from mastery.domain.formula import ScoringPolicy, DEFAULT_WEIGHTS;"
        "print(ScoringPolicy(DEFAULT_WEIGHTS).policy_hash)"
    )
    hashes = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO_ROOT,
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "random")
    }
    assert hashes == {ScoringPolicy(DEFAULT_WEIGHTS).policy_hash}


@pytest.mark.parametrize(
    "changed",
    [
        ScoringPolicy(Weights(0.5, 0.2, 0.2, 0.1)),
        ScoringPolicy(DEFAULT_WEIGHTS, recent_window=6),
        ScoringPolicy(DEFAULT_WEIGHTS, consistency_days=7),
        ScoringPolicy(DEFAULT_WEIGHTS, default_exercises_total=12),
    ],
)
def test_policy_hash_changes_with_any_field(changed):
    assert changed.policy_hash != ScoringPolicy(DEFAULT_WEIGHTS).policy_hash


@pytest.mark.parametrize(
    "kwargs",
    [
        {"recent_window": 0},
        {"consistency_days": 0},
        {"default_exercises_total": 0},
        {"recent_window": True},
        {"consistency_days": 1.5},
    ],
)
def test_policy_refuses_non_positive_windows(kwargs):
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        ScoringPolicy(DEFAULT_WEIGHTS, **kwargs)
