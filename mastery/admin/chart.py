"""The history chart of the student page: pure geometry for a server-rendered SVG (no
script, no Django), from the daily series of SPEC §3.1, and optionally the forecast after it
(a line in its band)."""

from collections.abc import Sequence
from datetime import date

from mastery.domain.formula import LEVELS
from mastery.domain.series import DailySeries

CHART_WIDTH, CHART_HEIGHT = 800, 250
PLOT_LEFT, PLOT_TOP, PLOT_RIGHT, PLOT_BOTTOM = 40, 12, 580, 222
PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4")
FORECAST_COLOR = "#1f78b4"

# One forecast day: (day, mastery, lower, upper).
BandDay = tuple[date, float, float, float]


def _x(index: int, count: int) -> float:
    if count <= 1:
        return float(PLOT_LEFT)
    return round(PLOT_LEFT + index * (PLOT_RIGHT - PLOT_LEFT) / (count - 1), 1)


def _y(value: float) -> float:
    return round(PLOT_BOTTOM - min(1.0, max(0.0, value)) * (PLOT_BOTTOM - PLOT_TOP), 1)


def _segments(values: Sequence[float | None], count: int) -> list[str]:
    """SVG `points` strings, one per run of days that have a value."""
    runs, current = [], []
    for i, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(f"{_x(i, count)},{_y(value)}")
    if current:
        runs.append(current)
    return [" ".join(run) for run in runs]


def _forecast(history: DailySeries, band: Sequence[BandDay], count: int) -> dict | None:
    """The forecast drawn on from the last day's overall value: its line and its band."""
    if not band:
        return None
    last = len(history.days) - 1
    start = f"{_x(last, count)},{_y(history.overall[-1])}"
    xs = [_x(last + 1 + i, count) for i in range(len(band))]
    upper = [f"{x},{_y(day[3])}" for x, day in zip(xs, band, strict=True)]
    lower = [f"{x},{_y(day[2])}" for x, day in zip(xs, band, strict=True)]
    line = [f"{x},{_y(day[1])}" for x, day in zip(xs, band, strict=True)]
    end_day, end_value, end_lower, end_upper = band[-1]
    return {
        "line": " ".join([start, *line]),
        "area": " ".join([start, *upper, *reversed(lower)]),
        "today_x": _x(last, count),
        "color": FORECAST_COLOR,
        "title": f"forecast for {end_day:%Y-%m-%d}: {end_value:.2f} "
        f"(80 % band {end_lower:.2f} to {end_upper:.2f})",
    }


def history_chart(history: DailySeries, band: Sequence[BandDay] = ()) -> dict:
    """Geometry of the history chart for the template: level guides, weekly date ticks,
    one thin line per topic and the overall mean as a thick line with dated points; with a
    `band` (the days after the history, oldest first), the axis runs on to its last day and
    the forecast is drawn as a dashed line in its shaded band."""
    if not history.days or history.overall[-1] is None:
        band = ()  # a forecast starts from today's value
    days = [*history.days, *(day for day, *_ in band)]
    count = len(days)
    guides = [
        {"y": _y(lower), "label": f"{lower:.1f}", "name": name}
        for lower, name in LEVELS
        if lower > 0.0
    ]
    axis = [{"y": _y(v), "label": f"{v:.1f}"} for v in (0.0, 1.0)]
    ticks = [
        {"x": _x(i, count), "label": f"{days[i]:%b} {days[i].day}"}
        for i in range(count - 1, -1, -7)
    ]
    topics = [
        {"label": slug, "color": PALETTE[n % len(PALETTE)], "segments": _segments(values, count)}
        for n, (slug, values) in enumerate(history.topics.items())
    ]
    forecast = _forecast(history, band, count)
    legend = [
        {"label": "overall", "color": "currentColor", "y": PLOT_TOP + 8, "bold": True},
        *(
            {"label": t["label"], "color": t["color"], "y": PLOT_TOP + 8 + 16 * (n + 1)}
            for n, t in enumerate(topics[:12])
        ),
    ]
    if forecast is not None:
        legend.append(
            {
                "label": "forecast (80 %)",
                "color": FORECAST_COLOR,
                "y": PLOT_TOP + 8 + 16 * len(legend),
            }
        )
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
        "overall": _segments(history.overall, count),
        "forecast": forecast,
        "dots": dots,
        "legend": legend,
        "empty": not dots,
        "start": history.days[0] if history.days else None,
        "end": history.days[-1] if history.days else None,
        "forecast_end": band[-1][0] if forecast is not None else None,
    }
