"""A student's overall mastery, a cohort's mean and "at risk", defined once (SPEC §2.1).

`mastery.selectors` writes the same rules in SQL (`ScoreMean`, `score_mean_sql`), and
tests hold the two to exact equality, on the server: both means are `score_mean`, whose
arithmetic is on integers in both languages.
"""

from collections.abc import Iterable

# At risk: below the lower bound of the developing level on any topic now.
AT_RISK_BELOW = 0.5

# Means of scores are scores: 4 decimals, as a record's mastery is stored (SPEC §2.1).
SCORE_DECIMALS = 4
_UNITS = 10**SCORE_DECIMALS


def score_mean(values: Iterable[float]) -> float | None:
    """The mean of `values` to 4 decimals, rounded half away from zero; None without values.

    Each value counts in whole ten-thousandths, `round(value * 10_000)` (a stored score is
    one exactly; Python and PostgreSQL round the same double to the same integer), and the
    mean of those integers is rounded exactly: the result depends neither on the order of
    the values nor on binary fractions, so SQL and Python agree on every tie, such as a
    mean of 0.69995, whose double lies below the tie and which Python's `round` would take
    down.
    """
    units = [round(value * _UNITS) for value in values]
    if not units:
        return None
    total, n = sum(units), len(units)
    rounded = (2 * abs(total) + n) // (2 * n)
    return (rounded if total >= 0 else -rounded) / _UNITS


def overall_mastery(scores: Iterable[float]) -> float | None:
    """The `score_mean` of a student's topic scores; None without topics."""
    return score_mean(scores)


def cohort_mean(overalls: Iterable[float | None]) -> float | None:
    """The `score_mean` of the overall mastery of a cohort's consenting students (the caller
    keeps only those): each student weighs the same, however many topics it has. Students
    with no topics yet have no overall mastery and do not count."""
    return score_mean(value for value in overalls if value is not None)


def at_risk(scores: Iterable[float]) -> bool:
    """Whether any topic is below `AT_RISK_BELOW` now."""
    return any(score < AT_RISK_BELOW for score in scores)
