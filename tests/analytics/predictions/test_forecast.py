"""The forecasts of SPEC §3.1, pure: the line, the forecasters, confidence, the band and
the reasons, on constructed series whose answers are worked out by hand."""

import math
from datetime import timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from analytics.domain.forecast import (
    COMPONENTS_METHOD,
    DEFAULT_FORECASTER,
    LINEAR,
    NAIVE,
    Forecaster,
    band,
    band_half_width,
    component_changes,
    confidence,
    fit_line,
    forecast,
    outlook,
    predict,
    series_value,
    trajectory,
)
from mastery.domain.formula import COMPONENTS, DEFAULT_WEIGHTS
from mastery.domain.series import carry_forward
from tests.analytics.predictions.support import TODAY, mastery_snap, pair, snap

WEIGHTS = DEFAULT_WEIGHTS
# The 0.90 quantile of Student's t with 3 degrees of freedom, from the printed tables
# (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.2): the 80 % two-sided interval.
T_90_3DF = 1.638


def view_of(*pairs, today=TODAY):
    return outlook(pairs, today=today, weights=WEIGHTS)


# --- the least-squares line ----------------------------------------------------------------


def test_the_line_through_a_textbook_example():
    # x = 1..5, y = 2, 4, 5, 4, 5: x̄ = 3, ȳ = 4, Sxx = 10, Sxy = 6, residuals
    # -0.8, 0.6, 1.0, -0.6, -0.2, so SSE = 2.4 and s = √(2.4 / 3).
    fit = fit_line([(1, 2), (2, 4), (3, 5), (4, 4), (5, 5)])
    assert fit.slope == pytest.approx(0.6)
    assert fit.intercept == pytest.approx(2.2)
    assert fit.sse == pytest.approx(2.4)
    assert fit.residual_sd == pytest.approx(math.sqrt(0.8))


def test_the_band_is_the_80_percent_prediction_interval_of_the_line():
    fit = fit_line([(1, 2), (2, 4), (3, 5), (4, 4), (5, 5)])
    # At x0 = 6: t · s · √(1 + 1/5 + (6 - 3)² / 10) = 1.638 · 0.8944 · √2.1
    expected = T_90_3DF * math.sqrt(0.8) * math.sqrt(1 + 1 / 5 + 9 / 10)
    assert band_half_width(fit, 6) == pytest.approx(expected, abs=2e-3)


def test_points_exactly_on_a_line_are_fitted_exactly_and_forecast_along_it():
    history = pair(*(mastery_snap(d, round(0.5 - 0.01 * d, 4)) for d in range(0, 20, 2)))
    view = view_of(history)
    assert [x for x, _ in view.points] == list(range(-18, 1, 2))
    assert view.fit.slope == pytest.approx(0.01)
    assert view.fit.intercept == pytest.approx(0.5)
    assert view.fit.sse == pytest.approx(0.0, abs=1e-12)
    prediction = predict(view, DEFAULT_FORECASTER, threshold=0.5)
    assert prediction.predicted == pytest.approx(0.57)
    assert prediction.slope_per_day == pytest.approx(0.01)
    assert (prediction.current, prediction.data_points, prediction.method) == (0.5, 10, LINEAR)
    assert not prediction.intervention_needed


def test_only_days_with_a_snapshot_are_points_and_the_value_before_the_window_carries():
    history = pair(mastery_snap(40, 0.2), mastery_snap(10, 0.4), mastery_snap(3, 0.6))
    view = view_of(history)
    assert view.points == ((-10, 0.4), (-3, 0.6))
    assert view.window_start == TODAY - timedelta(days=29)  # 0.2 carried in
    assert view.mastery_then == 0.2
    assert view.current == 0.6


def test_overall_points_are_the_days_any_topic_has_a_snapshot_with_the_mean_that_day():
    loops = pair(mastery_snap(6, 0.2), mastery_snap(2, 0.4), topic="loops")
    basics = pair(mastery_snap(4, 0.8), topic="basics")
    view = view_of(loops, basics)
    # day -6: loops only; day -4: loops carried 0.2 and basics 0.8; day -2: 0.4 and 0.8
    assert view.points == ((-6, 0.2), (-4, 0.5), (-2, 0.6))
    assert view.current == 0.6


def test_snapshots_after_today_are_not_seen():
    history = pair(mastery_snap(5, 0.3), mastery_snap(2, 0.4), mastery_snap(-3, 0.9))
    view = view_of(history)
    assert view.current == 0.4
    assert view.data_points == 2


@pytest.mark.parametrize(
    "snaps",
    [(), (mastery_snap(3, 0.42),), (mastery_snap(45, 0.42),)],
    ids=["no snapshot", "one point", "none in the window"],
)
def test_below_two_points_the_value_stays_with_confidence_and_slope_zero(snaps):
    view = view_of(pair(*snaps))
    for forecaster in (DEFAULT_FORECASTER, Forecaster(COMPONENTS_METHOD), Forecaster(NAIVE)):
        prediction = predict(view, forecaster, threshold=0.5)
        expected = 0.42 if snaps else 0.0
        assert (prediction.predicted, prediction.current) == (expected, expected)
        assert (prediction.confidence, prediction.slope_per_day) == (0.0, 0.0)
        assert prediction.method == NAIVE
        assert prediction.intervention_needed  # 0.42 and 0.0 are below 0.5
    assert band(view, DEFAULT_FORECASTER, 7) == (0.0, 1.0)


@pytest.mark.parametrize(("step", "expected"), [(0.05, 1.0), (-0.05, 0.0)])
def test_the_forecast_and_its_band_are_clipped_to_0_and_1(step, expected):
    start = 0.8 if step > 0 else 0.2
    noisy = [0.0, 0.01, -0.01, 0.0, 0.01]
    history = pair(
        *(mastery_snap(d, round(start - step * d + noisy[d], 4)) for d in range(4, -1, -1))
    )
    view = view_of(history)
    assert forecast(view, DEFAULT_FORECASTER, 7) == expected
    lower, upper = band(view, DEFAULT_FORECASTER, 7)
    assert 0.0 <= lower <= upper <= 1.0
    assert expected in (lower, upper)


def test_three_points_give_a_real_band_and_two_the_whole_range():
    two = view_of(pair(mastery_snap(2, 0.4), mastery_snap(0, 0.5)))
    three = view_of(pair(mastery_snap(4, 0.3), mastery_snap(2, 0.42), mastery_snap(0, 0.5)))
    assert band(two, DEFAULT_FORECASTER, 3) == (0.0, 1.0)
    lower, upper = band(three, DEFAULT_FORECASTER, 3)
    assert 0.0 < lower < forecast(three, DEFAULT_FORECASTER, 3) < upper < 1.0


def test_shrinkage_moves_the_forecast_from_the_line_toward_the_current_value():
    history = pair(*(mastery_snap(d, round(0.5 - 0.01 * d, 4)) for d in range(10)))
    view = view_of(history)
    line = forecast(view, Forecaster(LINEAR, 1.0), 7)
    half = forecast(view, Forecaster(LINEAR, 0.5), 7)
    assert line == pytest.approx(0.57)
    assert half == pytest.approx(0.5 + 0.5 * (0.57 - 0.5))
    assert forecast(view, Forecaster(NAIVE), 7) == 0.5


def test_the_trajectory_runs_from_tomorrow_with_a_band_around_each_day():
    history = pair(*(mastery_snap(d, round(0.5 - 0.01 * d + (0.01 if d % 3 == 0 else 0), 4))
                     for d in range(12)))  # fmt: skip
    points = trajectory(view_of(history), DEFAULT_FORECASTER, 14)
    assert [p.day for p in points] == [TODAY + timedelta(days=h) for h in range(1, 15)]
    assert all(p.lower <= p.mastery <= p.upper for p in points)
    widths = [p.upper - p.lower for p in points]
    assert widths == sorted(widths)  # further from the points, wider


# --- confidence ------------------------------------------------------------------------------

points_strategy = st.lists(
    st.tuples(st.integers(-29, 0), st.floats(0.0, 1.0, allow_nan=False)),
    min_size=2,
    max_size=25,
    unique_by=lambda p: p[0],
)


@given(points=points_strategy, new_x=st.integers(-29, 0))
@settings(max_examples=200, deadline=None)
def test_confidence_never_decreases_when_a_point_is_added_at_the_same_fit(points, new_x):
    assume(new_x not in {x for x, _ in points})
    fit = fit_line(points)
    assume(fit is not None)
    on_line = (*points, (new_x, fit.at(new_x)))
    refit = fit_line(on_line)
    assert refit.slope == pytest.approx(fit.slope, abs=1e-9)
    assert refit.intercept == pytest.approx(fit.intercept, abs=1e-9)
    assert confidence(refit) >= confidence(fit) - 1e-12


@given(points=points_strategy, factor=st.floats(1.5, 10.0))
@settings(max_examples=200, deadline=None)
def test_confidence_falls_and_the_band_widens_as_the_residual_spread_grows(points, factor):
    fit = fit_line(points)
    assume(fit is not None and len(points) >= 3 and fit.sse > 1e-9)
    spread = [(x, fit.at(x) + factor * (y - fit.at(x))) for x, y in points]
    wider = fit_line(spread)
    assert wider.slope == pytest.approx(fit.slope, abs=1e-9)
    assert wider.residual_sd == pytest.approx(factor * fit.residual_sd)
    assert confidence(wider) < confidence(fit)
    assert band_half_width(wider, 7) == pytest.approx(factor * band_half_width(fit, 7))


def test_confidence_is_zero_below_two_points_and_its_formula_otherwise():
    assert confidence(fit_line([(0, 0.5)])) == 0.0
    assert confidence(fit_line([(-1, 0.4), (0, 0.5)])) == pytest.approx(1 / 5)  # s = 0
    fit = fit_line([(1, 2), (2, 4), (3, 5), (4, 4), (5, 5)])
    assert confidence(fit) == pytest.approx(4 / 8 / (1 + 0.8 / 0.05**2))


# --- the components forecaster --------------------------------------------------------------


def test_components_follow_the_exercise_rate_and_the_activity_window():
    # Exercises: 0 done until 14 days ago, 7 done today: 0.5 a day over a size of 20.
    # Active on 7 of the last 14 days (r = 0.5), consistency 0.5 now.
    days = [0, 2, 4, 6, 8, 10, 12]
    history = pair(
        snap(20, done=0, quiz=0.6, quality=0.7, consistency=1 / 14),
        *(
            snap(d, done=7 - n, completion=(7 - n) / 20, quiz=0.6, quality=0.7, consistency=0.5)
            for n, d in enumerate(days)
        ),
        total=20,
    )
    view = view_of(history)
    h = 7
    completion = 0.35 + 0.5 * h / 20
    chance = 1 - 0.5**h
    kept = 4  # active days 0, 2, 4, 6 are still in a window ending 7 days from now
    moved = min(1.0, (kept + 0.5 * h / chance) / 14)
    consistency = (1 - chance) * 0.5 + chance * moved
    expected = 0.4 * completion + 0.3 * 0.6 + 0.2 * 0.7 + 0.1 * consistency
    assert forecast(view, Forecaster(COMPONENTS_METHOD), h) == pytest.approx(expected)


def test_components_of_an_inactive_pair_stay_where_they_are():
    history = pair(
        snap(25, done=2, completion=0.2, quiz=0.5, consistency=0.1),
        snap(20, done=3, completion=0.3, quiz=0.5, consistency=0.15),
    )
    view = view_of(history)
    assert forecast(view, Forecaster(COMPONENTS_METHOD), 7) == pytest.approx(view.current)


# --- reasons -----------------------------------------------------------------------------


def test_a_falling_quiz_is_named_with_its_exact_share_of_the_drop():
    history = pair(
        snap(20, done=4, completion=0.4, quiz=0.8, quality=0.6, consistency=0.2),
        snap(10, done=5, completion=0.5, quiz=0.6, quality=0.6, consistency=0.3),
        snap(1, done=5, completion=0.5, quiz=0.5, quality=0.6, consistency=0.2),
    )
    prediction = predict(view_of(history), DEFAULT_FORECASTER, threshold=0.5)
    [drop] = [r for r in prediction.reasons if r.code == "component_drop"]
    assert drop.message == "quiz fell from 0.80 to 0.50: \u22120.09 mastery"
    parts = drop.details["components"]
    assert parts["quiz"] == {"from": 0.8, "to": 0.5, "contribution": -0.09}
    assert parts["completion"]["contribution"] == pytest.approx(0.04)
    assert drop.details["mastery_change"] == pytest.approx(-0.05)


component_values = st.fixed_dictionaries(
    {name: st.floats(0.0, 1.0, allow_nan=False) for name in COMPONENTS}
)


@given(
    paths=st.lists(
        st.lists(st.tuples(st.integers(0, 45), component_values), min_size=1, max_size=8),
        min_size=1,
        max_size=4,
    )
)
@settings(max_examples=200, deadline=None)
def test_contributions_sum_to_the_mastery_change_within_rounding(paths):
    pairs = [
        pair(*(snap(d, **values) for d, values in dict(path).items()), topic=f"t{n}")
        for n, path in enumerate(paths)
    ]
    view = view_of(*pairs)
    changes = component_changes(view)
    assume(changes is not None)
    total = sum(part["contribution"] for part in changes["components"].values())
    # Each topic's mastery and the overall mean are rounded to 4 decimals, and so are the
    # four contributions: a few units of the fourth decimal at most.
    assert total == pytest.approx(changes["mastery_change"], abs=5e-4)
    assert changes["mastery_change"] == pytest.approx(view.current - view.mastery_then, abs=1e-4)


def test_a_declining_inactive_stale_subject_says_so_most_important_first():
    history = pair(*(mastery_snap(d, round(0.3 + 0.02 * (d - 10), 4)) for d in range(30, 9, -2)))
    prediction = predict(view_of(history), DEFAULT_FORECASTER, threshold=0.5)
    assert [r.code for r in prediction.reasons] == [
        "predicted_below_threshold",
        "declining",
        "inactive",
    ]
    declining = prediction.reasons[1]
    assert declining.details["slope_per_day"] == pytest.approx(-0.02)
    assert prediction.reasons[2].details["days"] == 10
    assert prediction.stale


def test_a_subject_without_any_snapshot_is_inactive_and_flagged_at_zero():
    prediction = predict(view_of(pair()), DEFAULT_FORECASTER, threshold=0.5)
    assert [r.code for r in prediction.reasons] == ["predicted_below_threshold", "inactive"]
    assert prediction.reasons[1].message == "no activity yet"
    assert prediction.stale


def test_a_subject_seen_six_days_ago_is_neither_inactive_nor_stale():
    history = pair(mastery_snap(8, 0.7), mastery_snap(6, 0.7))
    prediction = predict(view_of(history), DEFAULT_FORECASTER, threshold=0.5)
    assert prediction.reasons == ()
    assert not prediction.stale


# --- the series value a prediction is measured against -------------------------------------


@given(
    snapshots=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 20), st.floats(0, 1)),
        max_size=30,
    ),
    day=st.integers(0, 25),
)
@settings(max_examples=200, deadline=None)
def test_the_series_value_on_a_day_is_the_daily_series_of_that_day(snapshots, day):
    by_pair = {}
    for topic, d, value in snapshots:
        by_pair.setdefault(topic, {})[d] = round(value, 4)
    pairs = [
        pair(*(mastery_snap(-d, v, today=TODAY) for d, v in days.items()), topic=topic)
        for topic, days in by_pair.items()
    ]
    series = carry_forward(
        start=TODAY,
        end=TODAY + timedelta(days=25),
        before={},
        snapshots=[
            (topic, TODAY + timedelta(days=d), v)
            for topic, days in by_pair.items()
            for d, v in days.items()
        ],
    )
    assert series_value(pairs, TODAY + timedelta(days=day)) == series.overall[day]
