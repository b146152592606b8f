"""Overall mastery, the cohort mean and "at risk", as pure functions."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mastery.domain.overall import AT_RISK_BELOW, at_risk, cohort_mean, overall_mastery

scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def test_overall_mastery_is_the_mean_of_topic_scores_rounded_to_four_decimals():
    assert overall_mastery([0.2, 0.4, 0.45]) == 0.35
    assert overall_mastery([1 / 3]) == 0.3333


def test_a_student_without_topics_has_no_overall_mastery():
    assert overall_mastery([]) is None


@given(st.lists(scores, min_size=1, max_size=50))
def test_overall_mastery_lies_between_the_weakest_and_strongest_topic(values):
    assert min(values) - 1e-4 <= overall_mastery(values) <= max(values) + 1e-4


def test_cohort_mean_weighs_each_student_once_and_skips_those_without_topics():
    assert cohort_mean([0.2, 1.0, None]) == pytest.approx(0.6)
    assert cohort_mean([None, None]) is None
    assert cohort_mean([]) is None


def test_at_risk_is_any_topic_below_the_developing_level():
    assert AT_RISK_BELOW == 0.5
    assert at_risk([0.9, 0.4999])
    assert not at_risk([0.5, 0.9])
    assert not at_risk([])
