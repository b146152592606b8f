"""The comparison statistics against published worked examples (not against scipy, which
the code itself calls), and the properties a comparison must have."""

import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.domain.statistics import (
    TOO_FEW,
    ZERO_VARIANCE,
    Comparison,
    Interval,
    Sample,
    compare_pairs,
    comparison_sentence,
    effect_magnitude,
    hedges_correction,
    holm_adjust,
    welch_comparison,
)


def sample_of(values: list[float]) -> Sample:
    return Sample(len(values), statistics.fmean(values), statistics.stdev(values))


# Moore, McCabe & Craig, "Introduction to the Practice of Statistics", Examples 7.14-7.15:
# Degree of Reading Power scores after directed reading activities (treatment) or not.
DRP_TREATMENT = [24, 61, 59, 46, 43, 44, 52, 43, 58, 67, 62, 57, 71, 49, 54, 43, 53, 57, 49, 56, 33]
DRP_CONTROL = [42, 33, 46, 37, 43, 41, 10, 42, 55, 19, 17, 55, 26, 54, 60, 28, 62, 20, 53, 48, 37,
               85, 42]  # fmt: skip


def test_welch_matches_the_textbooks_reading_scores_example():
    """Published: t = 2.31, df = 37.86, one-sided P = 0.0132 (so two-sided 0.026), and
    the 95 % interval for the difference 1.23 to 18.68."""
    result = welch_comparison(sample_of(DRP_TREATMENT), sample_of(DRP_CONTROL))
    assert result.t == pytest.approx(2.31, abs=0.005)
    assert result.df == pytest.approx(37.86, abs=0.005)
    assert result.p_value / 2 == pytest.approx(0.0132, abs=0.00005)
    assert result.mean_difference == pytest.approx(9.95, abs=0.005)
    assert result.mean_difference_ci.low == pytest.approx(1.23, abs=0.005)
    assert result.mean_difference_ci.high == pytest.approx(18.68, abs=0.005)


def test_welch_matches_the_nist_handbooks_mileage_example():
    """NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.5.3 (AUTO83B.DAT, US against
    Japanese cars, summary statistics as printed): unequal variances, T = -12.94627 with
    136.8750 degrees of freedom."""
    us, japan = Sample(249, 20.14458, 6.41470), Sample(79, 30.48101, 6.10771)
    result = welch_comparison(us, japan)
    assert result.t == pytest.approx(-12.94627, abs=5e-6)
    assert result.df == pytest.approx(136.8750, abs=5e-5)
    assert result.p_value < 1e-20
    assert result.mean_difference_ci.high < 0


@pytest.mark.parametrize(
    ("first", "second", "t", "df", "p"),
    [
        # Wikipedia, "Welch's t-test", worked examples 1 and 2 (t, df and p as published).
        (
            [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7,
             21.4],
            [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5,
             24.4],
            -2.46, 24.99, 0.021,
        ),
        (
            [17.2, 20.9, 22.6, 18.1, 21.7, 21.4, 23.5, 24.2, 14.7, 21.8],
            [21.5, 22.8, 21.0, 23.0, 21.6, 23.6, 22.5, 20.7, 23.4, 21.8, 20.7, 21.7, 21.5, 22.5,
             23.6, 21.5, 22.5, 23.5, 21.5, 21.8],
            -1.57, 9.90, 0.149,
        ),
    ],
)  # fmt: skip
def test_welch_matches_published_worked_examples(first, second, t, df, p):
    result = welch_comparison(sample_of(first), sample_of(second))
    assert result.t == pytest.approx(t, abs=0.005)
    assert result.df == pytest.approx(df, abs=0.005)
    assert result.p_value == pytest.approx(p, abs=0.0005)


def test_holm_matches_the_published_four_hypothesis_example():
    """Holm-Bonferroni method (Wikipedia's example after Holm 1979): p = 0.01, 0.04, 0.03,
    0.005 at alpha 0.05. H4 (0.005 < 0.05/4) and H1 (0.01 < 0.05/3) are rejected; H3
    (0.03 > 0.05/2) is not, and the procedure stops there, so H2 is kept although
    0.04 < 0.05."""
    p = [0.01, 0.04, 0.03, 0.005]
    adjusted = holm_adjust(p)
    assert [q < 0.05 for q in adjusted] == [True, False, False, True]
    # By hand: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, made monotone.
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_keeps_a_single_p_value():
    assert holm_adjust([0.4, 0.6]) == pytest.approx([0.8, 0.8])
    assert holm_adjust([0.7, 0.9, 0.95]) == [1.0, 1.0, 1.0]
    assert holm_adjust([0.03]) == [0.03]
    assert holm_adjust([]) == []


# Lakens (2013), "Calculating and reporting effect sizes to facilitate cumulative science",
# Frontiers in Psychology 4:863, Table 1: ratings of two movies by two groups of 10.
MOVIE_1 = [9, 7, 8, 9, 8, 9, 9, 10, 9, 9]
MOVIE_2 = [9, 6, 7, 8, 7, 9, 8, 8, 8, 7]


def test_hedges_g_matches_the_published_movie_ratings_example():
    """Published: Cohen's d_s = 1.13 and Hedges' g_s = 1.08, t(18) = 2.52. With equal
    group sizes the average-variance denominator equals the pooled one, and the
    correction at Welch's df* rounds to the same g."""
    result = welch_comparison(sample_of(MOVIE_1), sample_of(MOVIE_2))
    assert result.t == pytest.approx(2.52, abs=0.005)
    assert result.effect_size == pytest.approx(1.08, abs=0.005)
    d = result.mean_difference / math.sqrt(
        (statistics.variance(MOVIE_1) + statistics.variance(MOVIE_2)) / 2
    )
    assert d == pytest.approx(1.13, abs=0.005)
    assert effect_magnitude(result.effect_size) == "large"


def test_hedges_correction_is_the_exact_gamma_ratio():
    """J(2) = Gamma(1) / Gamma(1/2) = 1/sqrt(pi) and J(3) = Gamma(3/2) / sqrt(3/2) =
    sqrt(pi/6) exactly; for larger df it approaches Hedges' (1981) approximation
    1 - 3/(4 df - 1), and 1."""
    assert hedges_correction(2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-12)
    assert hedges_correction(3) == pytest.approx(math.sqrt(math.pi / 6), rel=1e-12)
    for df in (30, 100, 10_000):
        assert hedges_correction(df) == pytest.approx(1 - 3 / (4 * df - 1), abs=5e-5)
    assert hedges_correction(1e7) == pytest.approx(1.0, abs=1e-6)


def test_hedges_g_interval_is_bonetts_variance_scaled_by_the_correction():
    """An independent reading of the documented formula, on unequal sizes and variances."""
    a, b = Sample(12, 0.62, 0.10), Sample(30, 0.55, 0.18)
    va, vb = a.std**2, b.std**2
    s_av2 = (va + vb) / 2
    d = (a.mean - b.mean) / math.sqrt(s_av2)
    df_star = 11 * 29 * (va + vb) ** 2 / (29 * va**2 + 11 * vb**2)
    j = math.gamma(df_star / 2) / (math.sqrt(df_star / 2) * math.gamma((df_star - 1) / 2))
    var_d = d**2 * (va**2 / 11 + vb**2 / 29) / (8 * s_av2**2) + (va / 11 + vb / 29) / s_av2
    half_width = 1.959963984540054 * j * math.sqrt(var_d)

    result = welch_comparison(a, b)

    assert result.effect_size == pytest.approx(j * d, rel=1e-9)
    assert result.effect_size_ci.low == pytest.approx(j * d - half_width, rel=1e-9)
    assert result.effect_size_ci.high == pytest.approx(j * d + half_width, rel=1e-9)


def test_a_cohort_below_two_students_gets_its_difference_but_no_test():
    one, many = Sample(1, 0.7, None), Sample(5, 0.5, 0.1)
    result = welch_comparison(one, many)
    assert result.reason == TOO_FEW
    assert result.mean_difference == pytest.approx(0.2)
    assert result.t is result.p_value is result.effect_size is result.mean_difference_ci is None
    empty = welch_comparison(Sample(0, None, None), many)
    assert empty.reason == TOO_FEW
    assert empty.mean_difference is None


def test_identical_values_in_both_cohorts_have_no_test():
    result = welch_comparison(Sample(4, 0.5, 0.0), Sample(3, 0.6, 0.0))
    assert result.reason == ZERO_VARIANCE
    assert result.mean_difference == pytest.approx(-0.1)
    assert result.t is None
    assert result.effect_size is None


def test_zero_variance_in_one_cohort_only_still_tests():
    result = welch_comparison(Sample(4, 0.5, 0.0), Sample(6, 0.6, 0.1))
    assert result.reason is None
    assert result.df == pytest.approx(5.0)  # all the uncertainty comes from the second
    assert result.t == pytest.approx(-0.1 / math.sqrt(0.01 / 6))


def test_holm_runs_over_the_tested_pairs_only():
    samples = [Sample(10, 0.5, 0.1), Sample(10, 0.6, 0.1), Sample(1, 0.9, None)]
    pairs = {(i, j): c for i, j, c in compare_pairs(samples)}
    assert list(pairs) == [(0, 1), (0, 2), (1, 2)]
    assert pairs[(0, 1)].p_adjusted == pytest.approx(pairs[(0, 1)].p_value)  # family of one
    assert pairs[(0, 2)].p_adjusted is None
    assert pairs[(0, 2)].significant is None


samples = st.builds(
    Sample,
    n=st.integers(2, 400),
    mean=st.floats(0, 1),
    std=st.floats(0.001, 0.5),
)


@given(samples, samples)
def test_swapping_the_cohorts_flips_the_signs_and_keeps_the_p_value(a, b):
    forward, backward = welch_comparison(a, b), welch_comparison(b, a)
    assert backward.t == pytest.approx(-forward.t, rel=1e-9, abs=1e-12)
    assert backward.mean_difference == pytest.approx(-forward.mean_difference, abs=1e-12)
    assert backward.effect_size == pytest.approx(-forward.effect_size, rel=1e-9, abs=1e-12)
    assert backward.df == pytest.approx(forward.df, rel=1e-9)
    assert backward.p_value == pytest.approx(forward.p_value, rel=1e-9, abs=1e-300)
    flipped_ci = forward.mean_difference_ci.flipped()
    assert backward.mean_difference_ci.low == pytest.approx(flipped_ci.low, abs=1e-12)
    assert backward.mean_difference_ci.high == pytest.approx(flipped_ci.high, abs=1e-12)
    g_ci = forward.effect_size_ci.flipped()
    assert backward.effect_size_ci.low == pytest.approx(g_ci.low, rel=1e-9, abs=1e-12)
    interval = forward.mean_difference_ci
    assert interval.low <= forward.mean_difference <= interval.high


@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_never_lowers_a_p_value_and_keeps_the_order(p_values):
    adjusted = holm_adjust(p_values)
    assert all(q >= p for p, q in zip(p_values, adjusted, strict=True))
    assert all(q <= 1.0 for q in adjusted)
    ranked = sorted(range(len(p_values)), key=lambda i: p_values[i])
    in_order = [adjusted[i] for i in ranked]
    assert in_order == sorted(in_order)


def test_the_teacher_reads_who_is_ahead_how_sure_and_how_big():
    comparison = Comparison(
        mean_difference=-0.08,
        mean_difference_ci=Interval(-0.14, -0.02),
        t=-2.6,
        df=50.0,
        p_value=0.004,
        p_adjusted=0.012,
        significant=True,
        effect_size=-0.52,
        effect_size_ci=Interval(-0.9, -0.1),
    )
    assert comparison_sentence("Year 10 B", "Year 10 A", comparison) == (
        "Year 10 A is ahead by 0.08 (95 % CI 0.02\u20130.14); this is unlikely to be chance "
        "(p = 0.01 after correction); the effect is medium (g = 0.52)"
    )


def test_a_difference_that_may_be_noise_says_so():
    comparison = Comparison(
        mean_difference=0.03,
        mean_difference_ci=Interval(-0.02, 0.08),
        t=1.1,
        df=40.0,
        p_value=0.28,
        p_adjusted=0.56,
        significant=False,
        effect_size=0.15,
        effect_size_ci=Interval(-0.2, 0.5),
    )
    sentence = comparison_sentence("7A", "7B", comparison)
    assert sentence.startswith("7A is ahead by 0.03 (95 % CI \u22120.02 to 0.08)")
    assert "this could well be chance (p = 0.56 after correction)" in sentence
    assert sentence.endswith("the effect is negligible (g = 0.15)")


def test_an_untested_pair_gives_its_reason():
    sentence = comparison_sentence("7A", "7B", Comparison(mean_difference=0.1, reason=TOO_FEW))
    assert sentence.startswith("No test between 7A and 7B: ")
    assert "fewer than 2 consenting students" in sentence
