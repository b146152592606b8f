"""Predictions of SPEC §3.1: the least-squares line over the daily series, three
forecasters, confidence, the 80 % prediction band and the reasons behind a flag.

A prediction is about one *subject*: one (student, topic) pair, or all of a student's pairs
(overall). Its daily series is `mastery.domain.series.carry_forward`, the one definition
the history, the admin chart and the back-test share. Everything is computed as of `today`
(a UTC day passed in) from the snapshots on or before it, so the back-test replays the past
through exactly the code the API serves.

- Points: the days of the last `WINDOW_DAYS` (ending today) on which the subject has a
  snapshot, with the series value of that day; x is the day relative to today.
- `linear`: `current + shrinkage·(line(h) - current)`, clipped to [0, 1]; shrinkage 1 is
  the line itself, smaller values pull the forecast toward "no change".
- `components`: mastery is a weighted sum of four components, so each is forecast by its
  own mechanics and the forecasts are combined with the weights (see `_pair_components`).
- `naive`: the current value.
- Confidence: `(n - 1)/(n + 3) · 1/(1 + (s/0.05)²)`, n the points, s the residual
  standard error of the line (0 for two points). 0 below 2 points; the first factor grows
  with n and the second with a smaller spread, so a point added on the line (the same fit,
  one more degree of freedom, s no larger) never lowers it; a spread of 0.05 halves it.
- Band: the forecast ± `t(0.9, n - 2) · s · √(1 + 1/n + (h - x̄)²/Sxx)` (the 80 %
  prediction interval of the line, Student-t with n - 2 degrees of freedom), clipped to
  [0, 1]; [0, 1] itself below 3 points.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

from scipy.stats import t as student_t

from mastery.domain.formula import COMPONENTS, Weights
from mastery.domain.series import carry_forward

WINDOW_DAYS = 30
HORIZON_DAYS = 7
BAND_LEVEL = 0.80
DECLINING_BELOW = -0.01  # slope per day
INACTIVE_AFTER_DAYS = 7  # no event on the last 7 days
STALE_AFTER_DAYS = 7  # the latest point is older than this
CONFIDENCE_SPREAD = 0.05  # the residual spread that halves the confidence
# A component counts as having dropped when it cost at least this much mastery (shown as
# "-0.01" at two decimals, the precision of the message).
COMPONENT_DROP_AT_LEAST = 0.005

LINEAR = "linear"
COMPONENTS_METHOD = "components"
NAIVE = "naive"
METHODS = (LINEAR, COMPONENTS_METHOD, NAIVE)


@dataclass(frozen=True)
class Snap:
    """One snapshot of a pair: the end of a UTC day on which the pair had events."""

    day: date
    mastery: float
    completion: float
    quiz: float
    quality: float
    consistency: float
    exercises_done: int

    def component(self, name: str) -> float:
        return getattr(self, name)


@dataclass(frozen=True)
class PairHistory:
    """A pair's snapshots, oldest first, and its topic's size (completion's denominator)."""

    topic: str
    exercises_total: int
    snapshots: tuple[Snap, ...]
    _days: tuple[date, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.snapshots, key=lambda snap: snap.day))
        object.__setattr__(self, "snapshots", ordered)
        object.__setattr__(self, "_days", tuple(snap.day for snap in ordered))

    def upto(self, day: date) -> tuple[Snap, ...]:
        """The snapshots on or before `day`."""
        return self.snapshots[: bisect.bisect_right(self._days, day)]

    def latest_on(self, day: date) -> Snap | None:
        """The latest snapshot on or before `day` (the state the pair had at its end)."""
        index = bisect.bisect_right(self._days, day)
        return self.snapshots[index - 1] if index else None

    @property
    def first_day(self) -> date | None:
        return self._days[0] if self._days else None


@dataclass(frozen=True)
class Forecaster:
    """What is served: a method and, for `linear`, the weight it gives the line."""

    method: str
    shrinkage: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown forecasting method {self.method!r}")
        if not 0.0 <= self.shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1], got {self.shrinkage!r}")

    @property
    def label(self) -> str:
        if self.method == LINEAR:
            return f"linear (shrinkage {self.shrinkage:.2f})"
        return self.method

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "shrinkage": self.shrinkage if self.method == LINEAR else None,
        }

    @classmethod
    def from_dict(cls, value: dict) -> Forecaster:
        shrinkage = value.get("shrinkage")
        return cls(value["method"], 1.0 if shrinkage is None else float(shrinkage))


# Served before any back-test has run (SPEC §3.1).
DEFAULT_FORECASTER = Forecaster(LINEAR, 1.0)


@dataclass(frozen=True)
class Fit:
    """A least-squares line y = intercept + slope·x over n points."""

    n: int
    slope: float
    intercept: float
    sse: float
    x_mean: float
    sxx: float

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x

    @property
    def residual_sd(self) -> float:
        """s = √(SSE / (n - 2)); 0 for two points, which a line always fits exactly."""
        if self.n <= 2:
            return 0.0
        return math.sqrt(self.sse / (self.n - 2))


def fit_line(points: Sequence[tuple[float, float]]) -> Fit | None:
    """The least-squares line through `points` (x, y); None below 2 distinct x."""
    n = len(points)
    if n < 2:
        return None
    x_mean = math.fsum(x for x, _ in points) / n
    y_mean = math.fsum(y for _, y in points) / n
    sxx = math.fsum((x - x_mean) ** 2 for x, _ in points)
    if sxx == 0.0:
        return None
    sxy = math.fsum((x - x_mean) * (y - y_mean) for x, y in points)
    slope = sxy / sxx
    intercept = y_mean - slope * x_mean
    sse = math.fsum((y - (intercept + slope * x)) ** 2 for x, y in points)
    return Fit(n, slope, intercept, sse, x_mean, sxx)


def confidence(fit: Fit | None) -> float:
    """See the module docstring: 0 without a line, in [0, 1) otherwise."""
    if fit is None:
        return 0.0
    data = (fit.n - 1) / (fit.n + 3)
    spread = 1.0 / (1.0 + (fit.residual_sd / CONFIDENCE_SPREAD) ** 2)
    return data * spread


@lru_cache(maxsize=64)
def _t_quantile(degrees_of_freedom: int) -> float:
    return float(student_t.ppf(0.5 + BAND_LEVEL / 2, degrees_of_freedom))


def band_half_width(fit: Fit | None, x: float) -> float | None:
    """Half the 80 % prediction interval of the line at `x`; None below 3 points."""
    if fit is None or fit.n < 3:
        return None
    spread = math.sqrt(1.0 + 1.0 / fit.n + (x - fit.x_mean) ** 2 / fit.sxx)
    return _t_quantile(fit.n - 2) * fit.residual_sd * spread


def clip(value: float) -> float:
    return min(1.0, max(0.0, value))


@dataclass(frozen=True)
class PairNow:
    """One pair as it stands today: what the components forecaster reads."""

    latest: Snap
    exercises_total: int
    # Distinct exercises a day over the activity window ending today.
    exercise_rate: float
    # The days of the activity window ending today on which the pair had events.
    active_days: tuple[date, ...]


@dataclass(frozen=True)
class Outlook:
    """A subject as of `today`: its points, the line through them, and its pairs now."""

    today: date
    current: float
    points: tuple[tuple[int, float], ...]
    fit: Fit | None
    pairs: tuple[PairNow, ...]
    weights: Weights
    activity_days: int
    last_day: date | None  # the latest snapshot day on or before today
    # Per component, the mean over the subject's pairs on the first day of the window that
    # has a value, and today (None without a value): what `component_drop` compares.
    window_start: date | None
    components_then: dict[str, float] | None
    components_now: dict[str, float] | None
    mastery_then: float | None

    @property
    def data_points(self) -> int:
        return len(self.points)


def _mean_components(snaps: Sequence[Snap]) -> dict[str, float] | None:
    if not snaps:
        return None
    return {name: math.fsum(s.component(name) for s in snaps) / len(snaps) for name in COMPONENTS}


def _pair_now(pair: PairHistory, today: date, activity_days: int) -> PairNow | None:
    latest = pair.latest_on(today)
    if latest is None:
        return None
    window_start = today - timedelta(days=activity_days - 1)
    before = pair.latest_on(today - timedelta(days=activity_days))
    done_before = before.exercises_done if before is not None else 0
    rate = max(0, latest.exercises_done - done_before) / activity_days
    active = tuple(s.day for s in pair.upto(today) if s.day >= window_start)
    return PairNow(latest, pair.exercises_total, rate, active)


def outlook(
    pairs: Iterable[PairHistory], *, today: date, weights: Weights, activity_days: int = 14
) -> Outlook:
    """Everything a forecast of the subject made of `pairs` needs, as of `today`."""
    pairs = [pair for pair in pairs if pair.latest_on(today) is not None]
    start = today - timedelta(days=WINDOW_DAYS - 1)
    before: dict[str, float] = {}
    inside: list[tuple[str, date, float]] = []
    for pair in pairs:
        prior = pair.latest_on(start - timedelta(days=1))
        if prior is not None:
            before[pair.topic] = prior.mastery
        inside.extend((pair.topic, s.day, s.mastery) for s in pair.upto(today) if s.day >= start)
    series = carry_forward(start=start, end=today, before=before, snapshots=inside)
    point_days = sorted({day for _, day, _ in inside})
    points = tuple(((day - today).days, series.overall[(day - start).days]) for day in point_days)
    first_index = next((i for i, v in enumerate(series.overall) if v is not None), None)
    window_start = series.days[first_index] if first_index is not None else None
    then = (
        [s for s in (p.latest_on(window_start) for p in pairs) if s is not None]
        if window_start is not None
        else []
    )
    now_snaps = [p.latest_on(today) for p in pairs]
    current = series.overall[-1]
    return Outlook(
        today=today,
        current=current if current is not None else 0.0,
        points=points,
        fit=fit_line(points),
        pairs=tuple(
            pn for pn in (_pair_now(p, today, activity_days) for p in pairs) if pn is not None
        ),
        weights=weights,
        activity_days=activity_days,
        last_day=max((s.day for s in now_snaps if s is not None), default=None),
        window_start=window_start,
        components_then=_mean_components(then),
        components_now=_mean_components([s for s in now_snaps if s is not None]),
        mastery_then=series.overall[first_index] if first_index is not None else None,
    )


def _pair_components(
    pair: PairNow, today: date, h: int, weights: Weights, activity_days: int
) -> float:
    """A pair's mastery `h` days ahead, each component by its own mechanics.

    - completion: the pair's recent exercise rate continues, over the topic's size;
    - consistency: with `r` the share of active days in the window ending today, the
      chance of any event in h days is q = 1 - (1 - r)^h. Without one the value stays (a
      pair's state moves only with its events); with one, the window ends h days ahead and
      holds the active days still inside it plus the expected new ones, r·min(h, window)/q;
    - quiz and quality: held at their recent means (the current values).
    """
    latest = pair.latest
    completion = min(1.0, latest.completion + pair.exercise_rate * h / pair.exercises_total)
    rate = len(pair.active_days) / activity_days
    consistency = latest.consistency
    if rate > 0.0:
        chance = 1.0 - (1.0 - rate) ** h
        window_start = today + timedelta(days=h - activity_days + 1)
        kept = sum(1 for day in pair.active_days if day >= window_start)
        moved = min(1.0, (kept + rate * min(h, activity_days) / chance) / activity_days)
        consistency = (1.0 - chance) * latest.consistency + chance * moved
    values = {
        "completion": completion,
        "quiz": latest.quiz,
        "quality": latest.quality,
        "consistency": consistency,
    }
    return clip(math.fsum(getattr(weights, name) * values[name] for name in COMPONENTS))


def forecast(view: Outlook, forecaster: Forecaster, h: int) -> float:
    """The subject's mastery `h` days after today; the current value below 2 points."""
    if view.fit is None or forecaster.method == NAIVE:
        return view.current
    if forecaster.method == LINEAR:
        return clip(view.current + forecaster.shrinkage * (view.fit.at(h) - view.current))
    values = [
        _pair_components(p, view.today, h, view.weights, view.activity_days) for p in view.pairs
    ]
    return math.fsum(values) / len(values) if values else view.current


def band(view: Outlook, forecaster: Forecaster, h: int) -> tuple[float, float]:
    """The 80 % band around the forecast `h` days ahead; [0, 1] below 3 points."""
    half = band_half_width(view.fit, h)
    if half is None:
        return 0.0, 1.0
    center = forecast(view, forecaster, h)
    return clip(center - half), clip(center + half)


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    details: dict

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "details": self.details}


@dataclass(frozen=True)
class Prediction:
    predicted: float
    current: float
    confidence: float
    slope_per_day: float
    method: str
    intervention_needed: bool
    reasons: tuple[Reason, ...]
    data_points: int
    stale: bool


@dataclass(frozen=True)
class TrajectoryPoint:
    day: date
    mastery: float
    lower: float
    upper: float


def _signed(value: float) -> str:
    """Two decimals with a real minus sign, as the reasons' messages show changes."""
    return f"{value:+.2f}".replace("-", "\u2212")


def component_changes(view: Outlook) -> dict | None:
    """How each component moved over the window, and what that did to mastery: because
    mastery is linear in its components, its change is exactly Σ weight · Δcomponent (up
    to the rounding of each score). None without a value in the window."""
    if view.components_then is None or view.components_now is None:
        return None
    parts = {}
    for name in COMPONENTS:
        before, after = view.components_then[name], view.components_now[name]
        parts[name] = {
            "from": round(before, 4),
            "to": round(after, 4),
            "contribution": round(getattr(view.weights, name) * (after - before), 4),
        }
    return {
        "since": view.window_start.isoformat(),
        "mastery_change": round(view.current - (view.mastery_then or 0.0), 4),
        "components": parts,
    }


def component_drop(view: Outlook) -> Reason | None:
    """The reason naming the component that cost the most, when one cost anything."""
    changes = component_changes(view)
    if changes is None:
        return None
    costs = {
        name: getattr(view.weights, name) * (view.components_now[name] - view.components_then[name])
        for name in COMPONENTS
    }
    worst = min(COMPONENTS, key=lambda name: costs[name])
    if costs[worst] > -COMPONENT_DROP_AT_LEAST:
        return None
    part = changes["components"][worst]
    return Reason(
        "component_drop",
        f"{worst} fell from {part['from']:.2f} to {part['to']:.2f}: "
        f"{_signed(costs[worst])} mastery",
        {"component": worst, **changes},
    )


def reasons(view: Outlook, predicted: float, threshold: float) -> tuple[Reason, ...]:
    """The reasons, most important first: the flag itself, the component that cost the
    most, the trend, then inactivity."""
    found: list[Reason] = []
    if predicted < threshold:
        found.append(
            Reason(
                "predicted_below_threshold",
                f"predicted mastery in {HORIZON_DAYS} days is {predicted:.2f}, "
                f"below {threshold:.2f}",
                {"predicted": predicted, "threshold": threshold},
            )
        )
    if (drop := component_drop(view)) is not None:
        found.append(drop)
    slope = view.fit.slope if view.fit is not None else 0.0
    if slope < DECLINING_BELOW:
        found.append(
            Reason(
                "declining",
                f"mastery is falling by {abs(slope):.3f} a day",
                {"slope_per_day": round(slope, 4), "threshold": DECLINING_BELOW},
            )
        )
    idle = None if view.last_day is None else (view.today - view.last_day).days
    if idle is None or idle >= INACTIVE_AFTER_DAYS:
        found.append(
            Reason(
                "inactive",
                "no activity yet" if idle is None else f"no activity for {idle} days",
                {
                    "last_active_on": view.last_day.isoformat() if view.last_day else None,
                    "days": idle,
                    "threshold_days": INACTIVE_AFTER_DAYS,
                },
            )
        )
    return tuple(found)


def predict(
    view: Outlook, forecaster: Forecaster, *, threshold: float, horizon: int = HORIZON_DAYS
) -> Prediction:
    """The next-week prediction. Below 2 points nothing is forecast: the value stays, with
    confidence 0 and slope 0, and the method is `naive` (what was in fact done)."""
    predicted = round(forecast(view, forecaster, horizon), 4)
    latest_point = -view.points[-1][0] if view.points else None
    return Prediction(
        predicted=predicted,
        current=view.current,
        confidence=round(confidence(view.fit), 4),
        slope_per_day=round(view.fit.slope, 6) if view.fit is not None else 0.0,
        method=forecaster.method if view.fit is not None else NAIVE,
        intervention_needed=predicted < threshold,
        reasons=reasons(view, predicted, threshold),
        data_points=view.data_points,
        stale=latest_point is None or latest_point > STALE_AFTER_DAYS,
    )


def trajectory(view: Outlook, forecaster: Forecaster, days: int) -> list[TrajectoryPoint]:
    """`days` points from tomorrow, each the forecast with its 80 % band."""
    points = []
    for h in range(1, days + 1):
        lower, upper = band(view, forecaster, h)
        points.append(
            TrajectoryPoint(
                view.today + timedelta(days=h),
                round(forecast(view, forecaster, h), 4),
                round(lower, 4),
                round(upper, 4),
            )
        )
    return points


def series_value(pairs: Iterable[PairHistory], day: date) -> float | None:
    """The subject's daily-series value on `day` (None before its first snapshot): what a
    prediction for that day is measured against."""
    pairs = list(pairs)
    before = {}
    for pair in pairs:
        prior = pair.latest_on(day - timedelta(days=1))
        if prior is not None:
            before[pair.topic] = prior.mastery
    latest = [(pair.topic, pair.latest_on(day)) for pair in pairs]
    on_day = [(topic, day, s.mastery) for topic, s in latest if s is not None and s.day == day]
    return carry_forward(start=day, end=day, before=before, snapshots=on_day).overall[0]
