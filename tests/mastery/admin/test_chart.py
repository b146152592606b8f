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
