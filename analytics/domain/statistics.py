"""The statistics of a cohort comparison (SPEC §3.3): Welch's t-test, Holm's step-down
adjustment over the pairs, Hedges' g with the average-variance denominator, and the 95 %
intervals of the mean difference and of g. Pure: no Django.

The inputs are each cohort's summary (n, mean, sample standard deviation), which
PostgreSQL computes for all the cohorts in one query; no test needs more than that.

Formulas and sources:
- Welch's t = (m1 - m2) / SE with SE² = s1²/n1 + s2²/n2, and the Welch-Satterthwaite
  df = SE⁴ / ((s1²/n1)²/(n1 - 1) + (s2²/n2)²/(n2 - 1)) (Welch 1947; Satterthwaite 1946).
  t and the two-sided p-value come from `scipy.stats.ttest_ind_from_stats(equal_var=False)`,
  the interval m1 - m2 ± t(0.975, df)·SE from `scipy.stats.t`.
- Holm (1979): sort the m p-values ascending; the adjusted p of the k-th is
  max over j ≤ k of min(1, (m - j + 1)·p(j)). scipy has no Holm (its
  `false_discovery_control` is Benjamini-Hochberg, which controls another error rate).
- Hedges' g with the average-variance denominator (Delacre, Lakens, Ley, Liu & Leys
  2021, "Why Hedges' g*s based on the non-pooled standard deviation should be reported
  with Welch's t-test"): d = (m1 - m2) / s_av with s_av² = (s1² + s2²)/2, the standardiser
  that does not assume equal variances, as Welch does not; g = J(df*)·d with Hedges'
  (1981) exact correction J(m) = Γ(m/2) / (√(m/2)·Γ((m - 1)/2)) and
  df* = (n1 - 1)(n2 - 1)(s1² + s2²)² / ((n2 - 1)s1⁴ + (n1 - 1)s2⁴).
  Its interval: Bonett's (2008, Psychological Methods 13(2)) variance of d for unequal
  variances, Var(d) = d²(s1⁴/(n1 - 1) + s2⁴/(n2 - 1)) / (8·s_av⁴)
  + (s1²/(n1 - 1) + s2²/(n2 - 1)) / s_av², scaled to g as Var(g) = J²·Var(d)
  (Borenstein et al. 2009, eq. 4.24), and g ± z(0.975)·√Var(g).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from scipy import special, stats

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05
# Cohen's (1988) conventional bounds of |g|: below 0.2 negligible, then small, medium, large.
EFFECT_BOUNDS = ((0.2, "negligible"), (0.5, "small"), (0.8, "medium"))

EN_DASH, MINUS_SIGN = "\u2013", "\u2212"

TOO_FEW = "too_few_students"
ZERO_VARIANCE = "zero_variance"
REASONS = {
    TOO_FEW: "A cohort has fewer than 2 consenting students with a value: no test is possible.",
    ZERO_VARIANCE: "Every student in both cohorts has the same value: the test is undefined.",
}


@dataclass(frozen=True)
class Sample:
    """One cohort's summary: `std` is the sample standard deviation (n - 1), None below 2."""

    n: int
    mean: float | None
    std: float | None


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def flipped(self) -> "Interval":
        return Interval(-self.high, -self.low)


@dataclass(frozen=True)
class Comparison:
    """Cohort a against cohort b (differences are a - b). The test statistics are None with
    a `reason` where they are undefined; `p_adjusted` and `significant` are set by
    `compare_pairs` over the whole family of pairs."""

    mean_difference: float | None
    mean_difference_ci: Interval | None = None
    t: float | None = None
    df: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    significant: bool | None = None
    effect_size: float | None = None
    effect_size_ci: Interval | None = None
    reason: str | None = None


def welch_comparison(a: Sample, b: Sample) -> Comparison:
    """Welch's test of a against b with its effect size, before any multiplicity adjustment."""
    difference = None if a.mean is None or b.mean is None else a.mean - b.mean
    if a.n < 2 or b.n < 2 or a.std is None or b.std is None or difference is None:
        return Comparison(mean_difference=difference, reason=TOO_FEW)
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    if va + vb == 0.0:
        return Comparison(mean_difference=difference, reason=ZERO_VARIANCE)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    result = stats.ttest_ind_from_stats(a.mean, a.std, a.n, b.mean, b.std, b.n, equal_var=False)
    margin = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * se
    g, g_ci = hedges_g_average_variance(a, b)
    return Comparison(
        mean_difference=difference,
        mean_difference_ci=Interval(difference - margin, difference + margin),
        t=float(result.statistic),
        df=df,
        p_value=float(result.pvalue),
        effect_size=g,
        effect_size_ci=g_ci,
    )


def hedges_correction(df: float) -> float:
    """Hedges' exact small-sample correction J(df) (Hedges 1981), via log-gamma so that
    large df do not overflow."""
    return math.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / math.sqrt(df / 2)


def hedges_g_average_variance(a: Sample, b: Sample) -> tuple[float, Interval]:
    """g of a against b with the average-variance denominator, and its 95 % interval (see
    the module docstring). Needs n ≥ 2 in each and a positive average variance."""
    var_a, var_b = a.std**2, b.std**2
    average = (var_a + var_b) / 2
    d = (a.mean - b.mean) / math.sqrt(average)
    df_star = (
        (a.n - 1) * (b.n - 1) * (var_a + var_b) ** 2 / ((b.n - 1) * var_a**2 + (a.n - 1) * var_b**2)
    )
    j = hedges_correction(df_star)
    variance_d = (
        d**2 * (var_a**2 / (a.n - 1) + var_b**2 / (b.n - 1)) / (8 * average**2)
        + (var_a / (a.n - 1) + var_b / (b.n - 1)) / average
    )
    g = j * d
    margin = float(stats.norm.ppf(0.5 + CONFIDENCE / 2)) * j * math.sqrt(variance_d)
    return g, Interval(g - margin, g + margin)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's (1979) step-down adjusted p-values, in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def compare_pairs(samples: Sequence[Sample]) -> list[tuple[int, int, Comparison]]:
    """Every pair (i, j), i < j, in the order of `samples`, each with Welch's test; the
    p-values of the pairs that have one are Holm-adjusted together (the family is the
    pairs actually tested), and `significant` is p_adjusted < 0.05."""
    pairs = [
        (i, j, welch_comparison(samples[i], samples[j]))
        for i in range(len(samples))
        for j in range(i + 1, len(samples))
    ]
    tested = [k for k, (_, _, c) in enumerate(pairs) if c.p_value is not None]
    adjusted = holm_adjust([pairs[k][2].p_value for k in tested])
    for k, p_adjusted in zip(tested, adjusted, strict=True):
        i, j, comparison = pairs[k]
        pairs[k] = (
            i,
            j,
            replace(comparison, p_adjusted=p_adjusted, significant=p_adjusted < SIGNIFICANCE),
        )
    return pairs


def effect_magnitude(g: float) -> str:
    """Cohen's words for |g|."""
    size = abs(g)
    return next((word for bound, word in EFFECT_BOUNDS if size < bound), "large")


def comparison_sentence(name_a: str, name_b: str, comparison: Comparison) -> str:
    """The result in a teacher's words: "Year 10 A is ahead by 0.08 (95 % CI 0.02-0.14);
    this is unlikely to be chance (p = 0.01 after correction); the effect is medium
    (g = 0.52)". The cohort ahead is named first, so every figure reads as positive."""
    if comparison.reason is not None:
        return f"No test between {name_a} and {name_b}: {REASONS[comparison.reason]}"
    difference, interval = comparison.mean_difference, comparison.mean_difference_ci
    leader = name_a
    if difference < 0:
        leader, difference, interval = name_b, -difference, interval.flipped()
    if round(difference, 2) == 0:
        opening = f"{name_a} and {name_b} are level (difference {difference:.3f})"
    else:
        opening = f"{leader} is ahead by {difference:.2f}"
    chance = (
        "this is unlikely to be chance" if comparison.significant else "this could well be chance"
    )
    g = comparison.effect_size
    return (
        f"{opening} (95 % CI {_interval_text(interval)}); {chance} "
        f"({_p_text(comparison.p_adjusted)} after correction); "
        f"the effect is {effect_magnitude(g)} (g = {abs(g):.2f})"
    )


def _interval_text(interval: Interval) -> str:
    """The interval as "0.02-0.14" (an en dash), or as "-0.02 to 0.08" (a minus sign) when
    it starts below zero, where a dash would read as one."""
    low, high = f"{interval.low:.2f}".replace("-", MINUS_SIGN), f"{interval.high:.2f}"
    return f"{low} to {high}" if interval.low < 0 else f"{low}{EN_DASH}{high}"


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"
