"""Overall mastery, the cohort mean and "at risk", as pure functions."""

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from mastery.domain.overall import (
    AT_RISK_BELOW,
    at_risk,
    cohort_mean,
    overall_mastery,
    score_mean,
)

scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
stored_scores = st.integers(0, 10_000).map(lambda n: n / 10_000)  # as records keep them


def reference_mean(values: list[float]) -> float:
    """The rule as written, in fractions: the mean in ten-thousandths, ties up."""
    mean = Fraction(sum(round(value * 10_000) for value in values), len(values))
    whole, rest = divmod(mean, 1)
    return (whole + (rest >= Fraction(1, 2))) / 10_000


def decimal_mean(values: list[float]) -> float:
    """PostgreSQL's `round(avg(x::numeric), 4)`: the exact mean of the values' 15-digit
    decimals (`float8::numeric`), half away from zero."""
    decimals = [Decimal(f"{value:.15g}") for value in values]
    mean = sum(decimals) / len(decimals)
    return float(mean.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def test_overall_mastery_is_the_mean_of_topic_scores_rounded_to_four_decimals():
    assert overall_mastery([0.2, 0.4, 0.45]) == 0.35
    assert overall_mastery([1 / 3]) == 0.3333


def test_a_student_without_topics_has_no_overall_mastery():
    assert overall_mastery([]) is None


@given(st.lists(scores, min_size=1, max_size=50))
def test_overall_mastery_lies_between_the_weakest_and_strongest_topic(values):
    assert min(values) - 1e-4 <= overall_mastery(values) <= max(values) + 1e-4


def test_cohort_mean_weighs_each_student_once_and_skips_those_without_topics():
    assert cohort_mean([0.2, 1.0, None]) == 0.6
    assert cohort_mean([0.6999, 0.7]) == 0.7  # rounded as an overall mastery is
    assert cohort_mean([None, None]) is None
    assert cohort_mean([]) is None


def test_a_mean_just_below_a_level_bound_rounds_onto_it():
    # 0.49996666...: unrounded it is "beginner", rounded it is 0.5, "developing".
    assert overall_mastery([0.4999, 0.5, 0.5]) == 0.5


def test_an_exact_tie_rounds_half_up_whatever_the_binary_value():
    # The doubles nearest 0.69995 and 0.50005 are below the tie (Python's round gives
    # 0.6999 and 0.5); the rule rounds the exact mean, half away from zero.
    assert round((0.6999 + 0.7) / 2, 4) == 0.6999
    assert overall_mastery([0.6999, 0.7]) == 0.7
    assert overall_mastery([0.5, 0.5001]) == 0.5001
    assert overall_mastery([0.0001, 0.0002]) == 0.0002


@given(st.lists(st.one_of(stored_scores, scores), min_size=1, max_size=30))
def test_the_mean_is_the_rule(values):
    assert score_mean(values) == reference_mean(values)


@given(st.lists(stored_scores, min_size=1, max_size=30))
def test_on_stored_scores_it_is_the_exact_decimal_mean(values):
    assert score_mean(values) == decimal_mean(values)


@given(st.lists(st.one_of(stored_scores, scores), min_size=1, max_size=30), st.randoms())
def test_the_order_of_the_values_does_not_matter(values, random):
    shuffled = random.sample(values, len(values))
    assert score_mean(shuffled) == score_mean(values)


def test_at_risk_is_any_topic_below_the_developing_level():
    assert AT_RISK_BELOW == 0.5
    assert at_risk([0.9, 0.4999])
    assert not at_risk([0.5, 0.9])
    assert not at_risk([])
