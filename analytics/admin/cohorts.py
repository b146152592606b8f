"""Cohort analytics in the admin: on a cohort's page, the distribution of its consenting
students' mastery (a server-rendered SVG histogram and box plot) and the mean of each
component; on the cohort list, the action "Compare selected cohorts", which shows two or
more cohorts side by side with the test results in a teacher's words.

The cohort list holds only the cohorts the caller may see (a teacher's own), so a teacher
compares only cohorts it teaches. The geometry functions are pure.
"""

from collections.abc import Sequence

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from analytics.domain.statistics import (
    REASONS,
    compare_pairs,
    comparison_sentence,
    effect_magnitude,
)
from analytics.selectors.cohorts import HISTOGRAM_BINS, CohortFigures, cohort_figures
from mastery.domain.formula import COMPONENTS, LEVELS
from mastery.models import Cohort, Topic
from mastery.policy import current_policy
from mastery_project.access import students_read_audit
from mastery_project.admin_access import admin_action_for, admin_section_for

MIN_COMPARED, MAX_COMPARED = 2, 10

# Shared horizontal axis of both plots: mastery 0..1 from AXIS_LEFT to AXIS_RIGHT.
PLOT_WIDTH, AXIS_LEFT, AXIS_RIGHT = 720, 150, 690
BOX_ROW, BOX_TOP, AXIS_SPACE = 40, 10, 34
HISTOGRAM_HEIGHT, HISTOGRAM_TOP = 140, 16


def _x(value: float) -> float:
    return round(AXIS_LEFT + min(1.0, max(0.0, value)) * (AXIS_RIGHT - AXIS_LEFT), 1)


def _axis(bottom: float, top: float) -> dict:
    """Ticks every 0.1 and the level boundaries as dashed guides, from `top` to `bottom`."""
    return {
        "y": bottom,
        "top": top,
        "tick_end": bottom + 4,
        "label_y": bottom + 16,
        "guide_label_y": bottom + 28,
        "ticks": [{"x": _x(k / 10), "label": f"{k / 10:.1f}"} for k in range(0, 11, 2)],
        "guides": [
            {"x": _x(lower), "label_x": _x(lower) + 3, "name": name}
            for lower, name in LEVELS
            if lower > 0
        ],
    }


def box_plot(rows: Sequence[tuple[str, CohortFigures]]) -> dict:
    """One horizontal box per cohort on a shared 0-1 axis: whiskers from min to max, the box
    from p25 to p75, the median as a bar, the mean as a dot. A cohort without values gets
    its label and no box."""
    boxes = []
    for index, (label, f) in enumerate(rows):
        y = BOX_TOP + index * BOX_ROW + BOX_ROW / 2
        box = {
            "label": label,
            "y": y,
            "top": y - 11,
            "bottom": y + 11,
            "height": 22,
            "whisker_top": y - 6,
            "whisker_bottom": y + 6,
            "n": f.n,
            "empty": f.n == 0,
        }
        if f.n:
            box.update(
                x_min=_x(f.min),
                x_max=_x(f.max),
                x_p25=_x(f.p25),
                x_p75=_x(f.p75),
                width=round(_x(f.p75) - _x(f.p25), 1),
                x_median=_x(f.median),
                x_mean=_x(f.mean),
                title=(
                    f"{label}: n {f.n}, min {f.min:.2f}, p25 {f.p25:.2f}, median {f.median:.2f},"
                    f" p75 {f.p75:.2f}, max {f.max:.2f}, mean {f.mean:.2f}"
                ),
            )
        boxes.append(box)
    bottom = BOX_TOP + len(rows) * BOX_ROW
    return {
        "width": PLOT_WIDTH,
        "height": bottom + AXIS_SPACE,
        "left": AXIS_LEFT,
        "right": AXIS_RIGHT,
        "label_x": AXIS_LEFT - 10,
        "note_x": AXIS_LEFT + 6,
        "boxes": boxes,
        "axis": _axis(bottom, BOX_TOP),
    }


def histogram(f: CohortFigures) -> dict:
    """Students per tenth of mastery as bars over the same axis as the box plot."""
    tallest = max(f.histogram, default=0) or 1
    step = (AXIS_RIGHT - AXIS_LEFT) / HISTOGRAM_BINS
    bottom = HISTOGRAM_TOP + HISTOGRAM_HEIGHT
    bars = []
    for k, count in enumerate(f.histogram):
        height = round(count / tallest * HISTOGRAM_HEIGHT, 1)
        low, high = k / HISTOGRAM_BINS, (k + 1) / HISTOGRAM_BINS
        closing = "]" if k == HISTOGRAM_BINS - 1 else ")"
        x = AXIS_LEFT + k * step + 1
        bars.append(
            {
                "x": round(x, 1),
                "label_x": round(x + (step - 2) / 2, 1),
                "width": round(step - 2, 1),
                "y": round(bottom - height, 1),
                "height": height,
                "count": count,
                "label_y": round(bottom - height - 4, 1),
                "title": f"[{low:.1f}, {high:.1f}{closing}: {count} student(s)",
            }
        )
    return {
        "width": PLOT_WIDTH,
        "height": bottom + AXIS_SPACE,
        "left": AXIS_LEFT,
        "right": AXIS_RIGHT,
        "label_x": AXIS_LEFT - 10,
        "title_y": HISTOGRAM_TOP + 10,
        "bars": bars,
        "axis": _axis(bottom, HISTOGRAM_TOP),
    }


def component_means(f: CohortFigures) -> list[dict]:
    weights = current_policy().weights
    return [
        {"name": name, "mean": f.components[name], "weight": getattr(weights, name)}
        for name in COMPONENTS
    ]


@admin_section_for(Cohort, template="admin/analytics/cohorts/distribution.html", order=50)
def cohort_distribution(request: HttpRequest, cohort: Cohort) -> dict:
    """The cohort page's section. The page itself audits the students it lists."""
    [figures] = cohort_figures([cohort])
    return {
        "figures": figures,
        "histogram": histogram(figures),
        "box_plot": box_plot([(cohort.name or cohort.cohort_id, figures)]),
        "components": component_means(figures),
    }


@admin_action_for(Cohort)
@admin.action(description="Compare selected cohorts", permissions=["view"])
def compare_cohorts(modeladmin, request: HttpRequest, queryset: QuerySet[Cohort]):
    """Side by side, with Welch's test of each pair; an optional topic narrows it."""
    cohorts = list(queryset.order_by("cohort_id")[: MAX_COMPARED + 1])
    if not MIN_COMPARED <= len(cohorts) <= MAX_COMPARED:
        modeladmin.message_user(
            request,
            f"Select {MIN_COMPARED} to {MAX_COMPARED} cohorts to compare.",
            messages.ERROR,
        )
        return None
    topics = Topic.objects.order_by("slug").only("slug", "name")
    topic = topics.filter(slug=request.POST.get("topic", "")).first()
    figures = cohort_figures(cohorts, topic=topic)
    names = [c.name or c.cohort_id for c in cohorts]
    resource = f"{request.path}?cohort_ids={','.join(c.cohort_id for c in cohorts)}"
    if topic is not None:
        resource += f"&topic={topic.slug}"
    students_read_audit(
        request, action="admin.cohort.compare", student_refs=[""], resource=resource
    )
    return TemplateResponse(
        request,
        "admin/analytics/cohorts/compare.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": "Cohort comparison",
            "subtitle": None,
            "opts": modeladmin.opts,
            "media": modeladmin.media,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "cohorts": [
                {"cohort": c, "name": name, "figures": f, "components": component_means(f)}
                for c, name, f in zip(cohorts, names, figures, strict=True)
            ],
            "box_plot": box_plot(list(zip(names, figures, strict=True))),
            "pairs": comparison_rows(names, figures),
            "topics": topics,
            "topic": topic,
        },
    )


def comparison_rows(names: Sequence[str], figures: Sequence[CohortFigures]) -> list[dict]:
    """Each pair's sentence for the teacher, and its figures for whoever wants them."""
    samples = [f.sample() for f in figures]
    return [
        {
            "a": names[i],
            "b": names[j],
            "sentence": comparison_sentence(names[i], names[j], c),
            "comparison": c,
            "magnitude": None if c.effect_size is None else effect_magnitude(c.effect_size),
            "reason": None if c.reason is None else REASONS[c.reason],
        }
        for i, j, c in compare_pairs(samples)
    ]
