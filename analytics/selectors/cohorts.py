"""Cohort figures (SPEC §3.3), for all the requested cohorts in one PostgreSQL statement.

Over each cohort's consenting students: a student's value is its overall mastery (the
mean of its records, rounded to 4 decimals as `mastery.domain.overall.overall_mastery`
rounds it), or its record's mastery in the topic asked for; a student with no value (no
record yet, or none in that topic) does not count, as in `cohort_mean`. Components are
averaged the same way: per student over its topics, then over the students. The mean
agrees with `mastery.selectors.cohort_mean_mastery` (tests hold it to it).
"""

from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Q, QuerySet

from mastery.domain.formula import COMPONENTS
from mastery.models import Cohort, Topic, User
from mastery.selectors import cohort_mean_mastery, cohorts_visible_to

HISTOGRAM_BINS = 10

_FIGURES_SQL = """
WITH requested AS (
    SELECT id FROM unnest(%(cohorts)s::bigint[]) AS id
),
per_student AS (
    SELECT m.cohort_id,
           round(avg(r.mastery)::numeric, 4)::float8 AS mastery,
           avg(r.completion) AS completion, avg(r.quiz) AS quiz,
           avg(r.quality) AS quality, avg(r.consistency) AS consistency
    FROM mastery_cohort_students AS m
    JOIN mastery_student AS s ON s.id = m.student_id AND s.analytics_consent
    JOIN mastery_masteryrecord AS r ON r.student_id = m.student_id
    WHERE m.cohort_id = ANY(%(cohorts)s::bigint[])
      AND (%(topic)s::bigint IS NULL OR r.topic_id = %(topic)s::bigint)
    GROUP BY m.cohort_id, m.student_id
),
histogram AS (
    SELECT cohort_id, array_agg(students ORDER BY bin) AS counts
    FROM (
        SELECT c.id AS cohort_id, b.bin, count(p.mastery) AS students
        FROM requested AS c
        CROSS JOIN generate_series(0, %(bins)s - 1) AS b(bin)
        LEFT JOIN per_student AS p
               ON p.cohort_id = c.id AND least(floor(p.mastery * %(bins)s), %(bins)s - 1) = b.bin
        GROUP BY c.id, b.bin
    ) AS binned
    GROUP BY cohort_id
)
SELECT c.id,
       count(p.mastery),
       avg(p.mastery),
       stddev_samp(p.mastery),
       min(p.mastery),
       max(p.mastery),
       percentile_cont(ARRAY[0.25, 0.5, 0.75, 0.9]) WITHIN GROUP (ORDER BY p.mastery),
       avg(p.completion), avg(p.quiz), avg(p.quality), avg(p.consistency),
       h.counts
FROM requested AS c
LEFT JOIN per_student AS p ON p.cohort_id = c.id
JOIN histogram AS h ON h.cohort_id = c.id
GROUP BY c.id, h.counts
"""


@dataclass(frozen=True)
class CohortFigures:
    """One cohort's figures; None where undefined (`std` below 2 students, the rest at 0).
    `histogram`: students per tenth of [0, 1], the last bin closed."""

    n: int
    mean: float | None
    median: float | None
    std: float | None
    min: float | None
    max: float | None
    p25: float | None
    p75: float | None
    p90: float | None
    components: dict[str, float | None]
    histogram: list[int]


def cohort_figures(cohorts: list[Cohort], *, topic: Topic | None = None) -> list[CohortFigures]:
    """The figures of each cohort, in the order given."""
    params = {
        "cohorts": [c.pk for c in cohorts],
        "topic": topic.pk if topic is not None else None,
        "bins": HISTOGRAM_BINS,
    }
    with connection.cursor() as cursor:
        cursor.execute(_FIGURES_SQL, params)
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    figures = []
    for cohort in cohorts:
        n, mean, std, low, high, quantiles, *component_means, histogram = rows[cohort.pk]
        p25, median, p75, p90 = quantiles or (None, None, None, None)
        figures.append(
            CohortFigures(
                n=n,
                mean=mean,
                median=median,
                std=std,
                min=low,
                max=high,
                p25=p25,
                p75=p75,
                p90=p90,
                components=dict(zip(COMPONENTS, component_means, strict=True)),
                histogram=histogram,
            )
        )
    return figures


def cohorts_with_sizes(user: User) -> QuerySet[Cohort]:
    """The cohorts `user` may see with their size, consenting size and mean overall mastery
    (`cohort_mean_mastery`, over consenting students)."""
    return (
        cohorts_visible_to(user)
        .annotate(
            size=Count("students", distinct=True),
            consenting_size=Count(
                "students", filter=Q(students__analytics_consent=True), distinct=True
            ),
            mean_mastery=cohort_mean_mastery(),
        )
        .order_by("cohort_id")
    )
