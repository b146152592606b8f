"""The rolling-origin back-test, pure, on series whose figures are worked out by hand."""

from datetime import date, timedelta

import pytest

from analytics.domain.backtest import CANDIDATES, backtest, report_table
from analytics.domain.forecast import COMPONENTS_METHOD, LINEAR, NAIVE, Forecaster
from mastery.domain.formula import DEFAULT_WEIGHTS
from tests.analytics.predictions.support import mastery_snap, pair, snap

END = date(2026, 4, 30)


def run(*students, horizon=7, since=None, forecasters=CANDIDATES):
    return backtest(
        students,
        end=END,
        horizon=horizon,
        weights=DEFAULT_WEIGHTS,
        threshold=0.5,
        since=since,
        forecasters=forecasters,
    )


def rows(report, scope="topic"):
    return {row["forecaster"]: row for row in report["scopes"][scope]["rows"]}


LINES = tuple(f for f in CANDIDATES if f.method != COMPONENTS_METHOD)


def daily(values_by_days_ago: dict[int, float], topic="loops"):
    """A pair known by its mastery only (its components are not looked at: no `components`
    forecaster on these)."""
    snaps = (mastery_snap(d, v, today=END) for d, v in values_by_days_ago.items())
    return pair(*snaps, topic=topic)


def test_a_flat_history_costs_nothing_and_naive_is_served():
    # Active every day for 90 days, nothing else moving: consistency fills up over the first
    # 14 days, then mastery stays at 0.4·0.25 + 0.3·1 + 0.2·0.5 + 0.1·1 = 0.6.
    steady = pair(
        *(
            snap(d, today=END, completion=0.25, quiz=1.0, quality=0.5,
                 consistency=min(90 - d, 14) / 14)
            for d in range(90)
        )
    )  # fmt: skip
    report = run([steady], since=END - timedelta(days=40))
    topic = report["scopes"]["topic"]
    assert topic["cases"] == 40 - 7 + 1
    for row in topic["rows"]:
        assert (row["forecaster"], row["mae"], row["coverage"]) == (row["forecaster"], 0.0, 1.0)
    assert topic["served"] == {"method": NAIVE, "shrinkage": None}
    assert rows(report)["naive"]["precision"] is None  # nothing flagged
    assert rows(report)["naive"]["recall"] is None  # nothing below


def test_a_straight_line_is_forecast_exactly_by_the_line_and_naive_misses_by_7_steps():
    line = daily({d: round(0.2 + 0.01 * (40 - d), 4) for d in range(41)})
    report = run([line], forecasters=LINES)
    by_name = rows(report)
    # From the second day on the line is exact; on the first, one point: "no change".
    cases = 41 - 7
    assert by_name["naive"]["mae"] == pytest.approx(0.07)
    assert by_name["linear (shrinkage 1.00)"]["mae"] == pytest.approx(0.07 / cases, abs=1e-5)
    assert by_name["linear (shrinkage 0.50)"]["mae"] == pytest.approx(
        (0.07 + 0.035 * (cases - 1)) / cases, abs=1e-5
    )
    assert report["scopes"]["topic"]["served"] == {"method": LINEAR, "shrinkage": 1.0}


def test_one_step_costs_naive_exactly_the_step_on_the_origins_before_it():
    # 0.3 for 20 days, then 0.7 from day 20 on, to day 39; horizon 7.
    values = {39 - d: (0.3 if d < 20 else 0.7) for d in range(40)}
    naive = Forecaster(NAIVE)
    report = run([daily(values)], forecasters=(naive,))
    row = rows(report)["naive"]
    # origins 0..32; those 13..19 target a day after the step: 7 misses of 0.4
    assert row["cases"] == 33
    assert row["mae"] == pytest.approx(7 * 0.4 / 33, abs=1e-5)
    assert row["rmse"] == pytest.approx((7 * 0.4**2 / 33) ** 0.5, abs=1e-5)
    # flags (below 0.5) on origins 0..19; below on target days 0..19, i.e. origins 0..12
    assert row["precision"] == pytest.approx(13 / 20)
    assert row["recall"] == pytest.approx(1.0)


def test_since_moves_the_first_origin_and_the_scopes_are_scored_apart():
    loops = daily(dict.fromkeys(range(30), 0.6), topic="loops")
    basics = daily(dict.fromkeys(range(30), 0.4), topic="basics")
    report = run([loops, basics], since=END - timedelta(days=10), forecasters=LINES)
    assert report["scopes"]["topic"]["cases"] == 2 * 4  # origins 10..7 days before the end
    assert report["scopes"]["overall"]["cases"] == 4
    overall = rows(report, "overall")["naive"]
    assert overall["mae"] == 0.0
    assert overall["precision"] is None  # the mean, 0.5, is not below 0.5


def test_a_subject_without_a_point_in_the_window_is_not_a_case():
    report = run([daily({60: 0.4, 59: 0.45})], forecasters=LINES)
    # origins from 60 to 30 days before the end see a point within their 30 days; later
    # ones do not, though their targets are in range
    assert report["scopes"]["topic"]["cases"] == 31


def test_the_table_puts_every_forecaster_beside_naive_and_names_the_served_one():
    line = daily({d: round(0.2 + 0.01 * (40 - d), 4) for d in range(41)})
    table = report_table(run([line], forecasters=LINES))
    assert "| linear (shrinkage 1.00) **(served)** |" in table
    assert "| naive | 0.0700 |" in table
    assert "lower)." in table
    # per scope: the header, its rule and a row per forecaster
    assert len([row for row in table.splitlines() if row.startswith("| ")]) == 2 * (len(LINES) + 2)
