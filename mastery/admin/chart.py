"""The history chart of the student page: pure geometry for a server-rendered SVG (no
script, no Django), from the daily series of SPEC §3.1."""

from collections.abc import Sequence

from mastery.domain.formula import LEVELS
from mastery.domain.series import DailySeries

CHART_WIDTH, CHART_HEIGHT = 800, 250
PLOT_LEFT, PLOT_TOP, PLOT_RIGHT, PLOT_BOTTOM = 40, 12, 580, 222
PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4")


def _x(index: int, count: int) -> float:
    if count <= 1:
        return float(PLOT_LEFT)
    return round(PLOT_LEFT + index * (PLOT_RIGHT - PLOT_LEFT) / (count - 1), 1)


def _y(value: float) -> float:
    return round(PLOT_BOTTOM - min(1.0, max(0.0, value)) * (PLOT_BOTTOM - PLOT_TOP), 1)


def _segments(values: Sequence[float | None]) -> list[str]:
    """SVG `points` strings, one per run of days that have a value."""
    runs, current = [], []
    for i, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(f"{_x(i, len(values))},{_y(value)}")
    if current:
        runs.append(current)
    return [" ".join(run) for run in runs]


def history_chart(history: DailySeries) -> dict:
    """Geometry of the history chart for the template: level guides, weekly date ticks,
    one thin line per topic and the overall mean as a thick line with dated points."""
    count = len(history.days)
    guides = [
        {"y": _y(lower), "label": f"{lower:.1f}", "name": name}
        for lower, name in LEVELS
        if lower > 0.0
    ]
    axis = [{"y": _y(v), "label": f"{v:.1f}"} for v in (0.0, 1.0)]
    ticks = [
        {"x": _x(i, count), "label": f"{history.days[i]:%b} {history.days[i].day}"}
        for i in range(count - 1, -1, -7)
    ]
    topics = [
        {"label": slug, "color": PALETTE[n % len(PALETTE)], "segments": _segments(values)}
        for n, (slug, values) in enumerate(history.topics.items())
    ]
    legend = [
        {"label": "overall", "color": "currentColor", "y": PLOT_TOP + 8, "bold": True},
        *(
            {"label": t["label"], "color": t["color"], "y": PLOT_TOP + 8 + 16 * (n + 1)}
            for n, t in enumerate(topics[:12])
        ),
    ]
    dots = [
        {
            "x": _x(i, count),
            "y": _y(value),
            "title": f"{history.days[i]:%Y-%m-%d}: {value:.2f}",
        }
        for i, value in enumerate(history.overall)
        if value is not None
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": PLOT_LEFT,
        "right": PLOT_RIGHT,
        "top": PLOT_TOP,
        "bottom": PLOT_BOTTOM,
        "legend_x": PLOT_RIGHT + 84,
        "guides": guides,
        "axis": axis,
        "ticks": ticks,
        "topics": topics,
        "overall": _segments(history.overall),
        "dots": dots,
        "legend": legend,
        "empty": not dots,
        "start": history.days[0] if history.days else None,
        "end": history.days[-1] if history.days else None,
    }
