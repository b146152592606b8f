"""The rolling-origin back-test of SPEC §3.1: accuracy measured on the engine's own history.

For every past day (the *origin*) and every subject that had a point in the 30 days ending
then, each forecaster predicts `horizon` days ahead from the snapshots as they stood on the
origin (`forecast.outlook` ignores later ones), and the prediction is compared with the
daily series on the target day. Subjects are scored in two scopes, `topic` (one pair) and
`overall` (a student's mean), because the API serves both and they behave differently.

Figures per forecaster: MAE, RMSE, the share of outcomes inside the 80 % band, and the
flags' precision and recall against "the series was below the threshold on the target
day". "Tomorrow = today" (`naive`) is among the candidates, so the forecaster chosen for a
scope (the lowest MAE, the simpler one on a tie) is never worse than it on that data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from analytics.domain.forecast import (
    COMPONENTS_METHOD,
    DEFAULT_FORECASTER,
    LINEAR,
    NAIVE,
    Forecaster,
    Outlook,
    PairHistory,
    band,
    forecast,
    outlook,
)
from mastery.domain.formula import Weights
from mastery.domain.series import carry_forward

SHRINKAGES = (1.0, 0.75, 0.5, 0.25, 0.1)
# Simplest first: on a tie, the earlier one is chosen.
CANDIDATES = (
    Forecaster(NAIVE),
    *(Forecaster(LINEAR, shrinkage) for shrinkage in SHRINKAGES),
    Forecaster(COMPONENTS_METHOD),
)
SCOPES = ("topic", "overall")
# A band edge equal to the outcome covers it, whatever the float error of the edge.
_EDGE = 1e-9


@dataclass
class Score:
    """Running sums of one forecaster over the cases of one scope."""

    cases: int = 0
    abs_sum: float = 0.0
    square_sum: float = 0.0
    covered: int = 0
    flagged: int = 0
    true_flags: int = 0
    positives: int = 0

    def add(
        self, predicted: float, lower: float, upper: float, actual: float, threshold: float
    ) -> None:
        error = predicted - actual
        self.cases += 1
        self.abs_sum += abs(error)
        self.square_sum += error * error
        self.covered += lower - _EDGE <= actual <= upper + _EDGE
        flagged, below = predicted < threshold, actual < threshold
        self.flagged += flagged
        self.positives += below
        self.true_flags += flagged and below

    def figures(self) -> dict:
        """MAE, RMSE, coverage, precision and recall; None where a ratio has no cases."""

        def ratio(part: int, whole: int) -> float | None:
            return round(part / whole, 4) if whole else None

        return {
            "cases": self.cases,
            "mae": round(self.abs_sum / self.cases, 5) if self.cases else None,
            "rmse": round(math.sqrt(self.square_sum / self.cases), 5) if self.cases else None,
            "coverage": ratio(self.covered, self.cases),
            "precision": ratio(self.true_flags, self.flagged),
            "recall": ratio(self.true_flags, self.positives),
            "flags": self.flagged,
            "positives": self.positives,
        }


def _score(
    scores: dict[Forecaster, Score],
    view: Outlook,
    actual: float | None,
    horizon: int,
    threshold: float,
) -> None:
    # A subject without a point in the window is predicted "no change" by every forecaster:
    # counting it would only dilute the differences.
    if actual is None or not view.points:
        return
    for forecaster, score in scores.items():
        lower, upper = band(view, forecaster, horizon)
        predicted = round(forecast(view, forecaster, horizon), 4)
        score.add(predicted, lower, upper, actual, threshold)


def backtest(
    students: Iterable[Sequence[PairHistory]],
    *,
    end: date,
    horizon: int,
    weights: Weights,
    threshold: float,
    since: date | None = None,
    activity_days: int = 14,
    forecasters: Sequence[Forecaster] = CANDIDATES,
) -> dict:
    """The report: per scope, a row per forecaster and the one chosen to serve.

    `students` yields each student's pairs (their whole stored history); origins run from
    `since` (or each student's first snapshot) to `end - horizon`, targets up to `end`.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 day, got {horizon}")
    step = timedelta(days=horizon)
    as_of = {"weights": weights, "activity_days": activity_days}
    scores = {scope: {f: Score() for f in forecasters} for scope in SCOPES}
    students_seen = 0
    for student_pairs in students:
        pairs = [p for p in student_pairs if p.first_day is not None and p.first_day <= end]
        if not pairs:
            continue
        students_seen += 1
        first = min(p.first_day for p in pairs)
        truth = carry_forward(
            start=first,
            end=end,
            before={},
            snapshots=[(p.topic, s.day, s.mastery) for p in pairs for s in p.upto(end)],
        )
        origin = max(first, since) if since is not None else first
        while origin + step <= end:
            target = (origin + step - first).days
            for pair in pairs:
                if pair.first_day <= origin:
                    view = outlook([pair], today=origin, **as_of)
                    actual = truth.topics[pair.topic][target]
                    _score(scores["topic"], view, actual, horizon, threshold)
            view = outlook(pairs, today=origin, **as_of)
            _score(scores["overall"], view, truth.overall[target], horizon, threshold)
            origin += timedelta(days=1)
    return {
        "horizon": horizon,
        "end": end.isoformat(),
        "since": since.isoformat() if since is not None else None,
        "threshold": threshold,
        "students": students_seen,
        "scopes": {scope: _scope_report(scores[scope]) for scope in SCOPES},
    }


def _scope_report(scores: dict[Forecaster, Score]) -> dict:
    rows = [{"forecaster": f.label, **f.as_dict(), **s.figures()} for f, s in scores.items()]
    naive = next((row for row in rows if row["method"] == NAIVE), None)
    chosen = choose(scores)
    chosen_row = next(row for row in rows if row["forecaster"] == chosen.label) if rows else None
    return {
        "cases": rows[0]["cases"] if rows else 0,
        "rows": rows,
        "served": chosen.as_dict(),
        "served_label": chosen.label,
        "naive_mae": naive["mae"] if naive else None,
        "served_mae": chosen_row["mae"] if chosen_row else None,
    }


def choose(scores: dict[Forecaster, Score]) -> Forecaster:
    """The lowest MAE, the earlier candidate on a tie; without cases, the default."""
    scored = [(s.abs_sum / s.cases, n, f) for n, (f, s) in enumerate(scores.items()) if s.cases]
    if not scored:
        return DEFAULT_FORECASTER
    return min(scored, key=lambda item: (round(item[0], 9), item[1]))[2]


def _figure(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def report_table(report: dict) -> str:
    """The report as Markdown: per scope, every forecaster beside naive, and what is served."""
    since = report["since"] or "each student's first snapshot"
    lines = [
        f"Back-test, {report['horizon']} days ahead: {report['students']} students, origins "
        f"from {since} to {report['end']} minus the horizon; a flag is a prediction below "
        f"{report['threshold']}, right when the series was below it on the target day.",
    ]
    for scope, part in report["scopes"].items():
        naive = part["naive_mae"]
        lines += [
            "",
            f"{'Per topic' if scope == 'topic' else 'Overall'} ({part['cases']} cases)",
            "",
            "| forecaster | MAE | RMSE | 80 % band coverage | flag precision | flag recall "
            "| MAE / naive |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in part["rows"]:
            ratio = row["mae"] / naive if row["mae"] is not None and naive else None
            served = " **(served)**" if row["forecaster"] == part["served_label"] else ""
            lines.append(
                f"| {row['forecaster']}{served} | {_figure(row['mae'], 4)} "
                f"| {_figure(row['rmse'], 4)} | {_figure(row['coverage'], 3)} "
                f"| {_figure(row['precision'], 3)} | {_figure(row['recall'], 3)} "
                f"| {_figure(ratio, 3)} |"
            )
        if part["served_mae"] is not None and naive:
            gain = 1 - part["served_mae"] / naive
            lines += [
                "",
                f"Served: {part['served_label']}, MAE {part['served_mae']:.4f} against naive's "
                f"{naive:.4f} ({gain:.1%} lower).",
            ]
    return "\n".join(lines)
