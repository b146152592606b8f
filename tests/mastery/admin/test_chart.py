"""The student page's history chart: pure geometry from a daily series."""

from datetime import date, timedelta

from mastery.admin.chart import PLOT_BOTTOM, PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, history_chart
from mastery.domain.series import carry_forward

START = date(2026, 5, 1)


def series(days: int, **snapshots):
    points = [
        (topic, START + timedelta(days=d), v) for topic, pts in snapshots.items() for d, v in pts
    ]
    return carry_forward(
        start=START, end=START + timedelta(days=days - 1), before={}, snapshots=points
    )


def test_values_map_onto_the_plot_bottom_to_top_and_days_left_to_right():
    chart = history_chart(series(3, loops=[(0, 0.0), (2, 1.0)]))
    [line] = chart["overall"]
    first, middle, last = (tuple(map(float, p.split(","))) for p in line.split())
    assert first == (PLOT_LEFT, PLOT_BOTTOM)
    assert last == (PLOT_RIGHT, PLOT_TOP)
    assert middle == ((PLOT_LEFT + PLOT_RIGHT) / 2, PLOT_BOTTOM)  # carried forward


def test_days_before_the_first_snapshot_break_the_line_and_have_no_dot():
    chart = history_chart(series(5, loops=[(2, 0.5)]))
    assert len(chart["overall"]) == 1
    assert len(chart["overall"][0].split()) == 3
    assert [d["title"] for d in chart["dots"]] == [
        f"{START + timedelta(days=d):%Y-%m-%d}: 0.50" for d in (2, 3, 4)
    ]
    assert not chart["empty"]


def test_one_line_per_topic_with_its_own_colour_and_a_legend_entry():
    chart = history_chart(series(7, a=[(0, 0.2)], b=[(3, 0.8)]))
    assert [t["label"] for t in chart["topics"]] == ["a", "b"]
    assert len({t["color"] for t in chart["topics"]}) == 2
    assert [entry["label"] for entry in chart["legend"]] == ["overall", "a", "b"]


def test_level_guides_sit_at_each_band_above_zero_and_ticks_are_weekly_from_the_end():
    chart = history_chart(series(15, a=[(0, 0.5)]))
    assert [g["name"] for g in chart["guides"]] == ["developing", "proficient", "mastered"]
    assert [t["label"] for t in chart["ticks"]] == ["May 15", "May 8", "May 1"]


def test_an_empty_history_says_so():
    chart = history_chart(series(30))
    assert chart["empty"]
    assert chart["overall"] == []
    assert chart["dots"] == []
    assert chart["start"] == START
    assert chart["end"] == START + timedelta(days=29)


def test_a_forecast_band_extends_the_days_and_starts_from_todays_value():
    history = series(3, loops=[(0, 0.2), (2, 0.4)])
    ahead = [
        (START + timedelta(days=3), 0.5, 0.4, 0.6),
        (START + timedelta(days=4), 0.6, 0.4, 0.8),
    ]
    chart = history_chart(history, band=ahead)
    step = (PLOT_RIGHT - PLOT_LEFT) / 4  # five days across the plot
    [line] = chart["overall"]
    assert [float(p.split(",")[0]) for p in line.split()] == [
        PLOT_LEFT,
        PLOT_LEFT + step,
        PLOT_LEFT + 2 * step,
    ]
    forecast = chart["forecast"]
    start, *rest = forecast["line"].split()
    assert start == line.split()[-1]  # drawn on from today's point
    assert [float(p.split(",")[0]) for p in rest] == [PLOT_LEFT + 3 * step, PLOT_RIGHT]
    # the band: today, the upper edge forward, the lower edge back
    area = [tuple(map(float, p.split(","))) for p in forecast["area"].split()]
    assert len(area) == 1 + 2 * len(ahead)
    assert area[2][1] < area[3][1]  # upper above lower on the last day (SVG y grows down)
    assert chart["forecast_end"] == START + timedelta(days=4)
    assert chart["legend"][-1]["label"] == "forecast (80 %)"
    assert chart["ticks"][0]["label"] == "May 5"


def test_no_forecast_is_drawn_without_a_value_today():
    chart = history_chart(series(3), band=[(START + timedelta(days=3), 0.5, 0.4, 0.6)])
    assert chart["forecast"] is None
    assert [t["label"] for t in chart["ticks"]] == ["May 3"]
