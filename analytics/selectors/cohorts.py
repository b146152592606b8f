"""Cohort figures (SPEC §3.3), for all the requested cohorts in one PostgreSQL statement.

The students are `mastery.selectors.consenting_memberships` of the cohorts, and a
student's value is its overall mastery from `mastery.selectors.student_overalls` (with a
topic, over its record in that topic); a student with no value does not count. The
cohort mean is `score_mean_sql` of those values: `cohort_mean` and `cohort_mean_mastery`,
to the last bit (tests hold it to both). Components are averaged per student over the same
records, then over the students.
"""

from dataclasses import dataclass

from django.db import connections
from django.db.models import Avg, Count, Q, QuerySet

from analytics.domain.statistics import Sample
from mastery.domain.formula import COMPONENTS
from mastery.models import Cohort, Topic, User
from mastery.selectors import (
    cohort_mean_mastery,
    cohorts_visible_to,
    consenting_memberships,
    score_mean_sql,
    student_overalls,
)
from mastery_project.db_router import read_alias, replica_reads

HISTOGRAM_BINS = 10

# {members}: (cohort_id, student_id) of the consenting members; {values}: (student_id,
# overall, and each component's mean) of those students.
_FIGURES_SQL = """
WITH requested AS (
    SELECT id FROM unnest(%s::bigint[]) AS id
),
per_student AS (
    SELECT m.cohort_id, v.overall AS mastery,
           v.completion_mean, v.quiz_mean, v.quality_mean, v.consistency_mean
    FROM ({members}) AS m JOIN ({values}) AS v ON v.student_id = m.student_id
),
histogram AS (
    SELECT cohort_id, array_agg(students ORDER BY bin) AS counts
    FROM (
        SELECT c.id AS cohort_id, b.bin, count(p.mastery) AS students
        FROM requested AS c
        CROSS JOIN generate_series(0, {bins} - 1) AS b(bin)
        LEFT JOIN per_student AS p
               ON p.cohort_id = c.id AND least(floor(p.mastery * {bins}), {bins} - 1) = b.bin
        GROUP BY c.id, b.bin
    ) AS binned
    GROUP BY cohort_id
)
SELECT c.id,
       count(p.mastery),
       {mean},
       avg(p.mastery),  -- unrounded: the mean that the statistical tests take
       stddev_samp(p.mastery),
       min(p.mastery),
       max(p.mastery),
       percentile_cont(ARRAY[0.25, 0.5, 0.75, 0.9]) WITHIN GROUP (ORDER BY p.mastery),
       avg(p.completion_mean), avg(p.quiz_mean), avg(p.quality_mean), avg(p.consistency_mean),
       h.counts
FROM requested AS c
LEFT JOIN per_student AS p ON p.cohort_id = c.id
JOIN histogram AS h ON h.cohort_id = c.id
GROUP BY c.id, h.counts
"""


@dataclass(frozen=True)
class CohortFigures:
    """One cohort's figures; None where undefined (`std` below 2 students, the rest at 0).
    `mean` is the cohort mean (4 decimals, as shown everywhere); `sample_mean` is the same
    mean unrounded, which the tests take with `std`, as a statistician would. `histogram`:
    students per tenth of [0, 1], the last bin closed."""

    n: int
    mean: float | None
    sample_mean: float | None
    median: float | None
    std: float | None
    min: float | None
    max: float | None
    p25: float | None
    p75: float | None
    p90: float | None
    components: dict[str, float | None]
    histogram: list[int]

    def sample(self) -> Sample:
        """The summary that Welch's test, Hedges' g and their intervals take."""
        return Sample(self.n, self.sample_mean, self.std)


@replica_reads()
def cohort_figures(cohorts: list[Cohort], *, topic: Topic | None = None) -> list[CohortFigures]:
    """The figures of each cohort, in the order given. Replica-safe: aggregates over stored
    records and memberships, which no comparison writes."""
    if not cohorts:
        return []
    pks = [c.pk for c in cohorts]
    members = consenting_memberships().filter(cohort_id__in=pks).values("cohort_id", "student_id")
    values = (
        student_overalls(topic=topic)
        .filter(student_id__in=members.values("student_id"))
        .annotate(**{f"{name}_mean": Avg(name) for name in COMPONENTS})
    )
    members_sql, members_params = members.query.sql_with_params()
    values_sql, values_params = values.query.sql_with_params()
    sql = _FIGURES_SQL.format(
        members=members_sql,
        values=values_sql,
        bins=HISTOGRAM_BINS,
        mean=score_mean_sql("p.mastery"),
    )
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(sql, [pks, *members_params, *values_params])
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    figures = []
    for cohort in cohorts:
        n, mean, sample_mean, std, low, high, quantiles, *components, histogram = rows[cohort.pk]
        p25, median, p75, p90 = quantiles or (None, None, None, None)
        figures.append(
            CohortFigures(
                n=n,
                mean=mean,
                sample_mean=sample_mean,
                median=median,
                std=std,
                min=low,
                max=high,
                p25=p25,
                p75=p75,
                p90=p90,
                components=dict(zip(COMPONENTS, components, strict=True)),
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
