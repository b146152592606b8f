"""A student's overall mastery, a cohort's mean and "at risk", defined once (SPEC §2.1).

The selectors (`mastery.selectors`) compute the same in SQL; tests hold them to these.
"""

from collections.abc import Iterable

# At risk: below the lower bound of the developing level on any topic now.
AT_RISK_BELOW = 0.5


def overall_mastery(scores: Iterable[float]) -> float | None:
    """The mean of a student's topic scores, rounded as scores are; None without topics."""
    values = list(scores)
    if not values:
        return None
    return round(sum(values) / len(values), 4)


def cohort_mean(overalls: Iterable[float | None]) -> float | None:
    """The mean of the overall mastery of a cohort's consenting students (the caller keeps
    only those): each student weighs the same, however many topics it has. Students with
    no topics yet have no overall mastery and do not count."""
    values = [value for value in overalls if value is not None]
    if not values:
        return None
    return sum(values) / len(values)


def at_risk(scores: Iterable[float]) -> bool:
    """Whether any topic is below `AT_RISK_BELOW` now."""
    return any(score < AT_RISK_BELOW for score in scores)
