"""Reads of the mastery app. Visibility (what this caller may see) lives here, once, and so
does the SQL of each rule of `mastery.domain.overall` and of the daily series."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import orjson
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import (
    Aggregate,
    Count,
    Exists,
    FloatField,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
)
from django.db.models.functions import JSONObject

from mastery.domain.facts import effective_exercises_total
from mastery.domain.formula import level_for
from mastery.domain.overall import AT_RISK_BELOW, SCORE_DECIMALS, overall_mastery
from mastery.domain.series import DailySeries, carry_forward
from mastery.models import Cohort, MasteryRecord, Snapshot, Student, Topic, User
from mastery.policy import current_policy
from mastery_project.errors import NotFound

SEES_ALL = {User.Role.ADMIN, User.Role.SERVICE}


def students_visible_to(user: User) -> QuerySet[Student]:
    """A student sees itself, a teacher its cohorts' students, an admin or service all."""
    students = Student.objects.all()
    if user.role in SEES_ALL:
        return students
    if user.role == User.Role.TEACHER:
        return students.filter(
            pk__in=Cohort.students.through.objects.filter(cohort__teachers=user).values(
                "student_id"
            )
        )
    if user.role == User.Role.STUDENT and user.student_id is not None:
        return students.filter(pk=user.student_id)
    return students.none()


def cohorts_visible_to(user: User) -> QuerySet[Cohort]:
    """Admins and services see all cohorts, teachers those they teach, students their own."""
    cohorts = Cohort.objects.all()
    if user.role in SEES_ALL:
        return cohorts
    memberships = None
    if user.role == User.Role.TEACHER:
        memberships = Cohort.teachers.through.objects.filter(user=user)
    elif user.role == User.Role.STUDENT and user.student_id is not None:
        memberships = Cohort.students.through.objects.filter(student_id=user.student_id)
    if memberships is None:
        return cohorts.none()
    # A subquery, not a join, so that annotations over a cohort's students stay whole.
    return cohorts.filter(pk__in=memberships.values("cohort_id"))


def student_list(user: User, *, cohort_id: str | None = None) -> QuerySet[Student]:
    students = students_visible_to(user).annotate(overall_mastery=student_overall_mastery())
    if cohort_id:
        students = students.filter(cohorts__cohort_id=cohort_id)
    return students.prefetch_related(
        Prefetch("cohorts", queryset=Cohort.objects.only("cohort_id"))
    ).order_by("student_id")


def topic_list() -> QuerySet[Topic]:
    return Topic.objects.prefetch_related(
        Prefetch("prerequisites", queryset=Topic.objects.only("slug"))
    ).order_by("slug")


def topic_exercises_total(topic: Topic) -> int:
    """The size completion divides by: an admin's value, else the latest reported, else default."""
    return effective_exercises_total(
        topic.exercises_total, topic.reported, current_policy().default_exercises_total
    )


def score_mean_sql(values: str) -> str:
    """SQL of `mastery.domain.overall.score_mean`, an aggregate over the float8 SQL
    expression `values` (written once, so a subquery there runs once): each value in whole
    ten-thousandths (float8 `round`, to the nearest even on a tie, as Python's), their mean
    (`avg` of bigint, in numeric: a tie, k + 0.5, comes out exact) rounded half away from
    zero by numeric `round`, back in ten-thousandths. NULLs do not count, as None does not;
    no values give NULL. For statements written in SQL; `ScoreMean` in the ORM."""
    units = 10**SCORE_DECIMALS
    return f"round(avg(round(({values}) * {units})::bigint))::float8 / {units}"


class ScoreMean(Aggregate):
    """`score_mean_sql` as an ORM aggregate: the one SQL of overall mastery and the cohort
    mean. It takes no `distinct` or `filter`."""

    name = "ScoreMean"
    template = score_mean_sql("%(expressions)s")
    output_field = FloatField()


def student_overalls(*, topic: Topic | None = None) -> QuerySet[MasteryRecord]:
    """Rows (student_id, overall) of `overall_mastery` in SQL, one per student with records
    (of `topic` only, when given), grouped over the records. Filter it to the students
    wanted; a caller may add aggregates over the same records, or embed the query in its
    own SQL (`.query.sql_with_params()`)."""
    records = MasteryRecord.objects.order_by()
    if topic is not None:
        records = records.filter(topic=topic)
    return records.values("student_id").annotate(overall=ScoreMean("mastery"))


def student_overall_mastery(student: str = "pk") -> Subquery:
    """`student_overalls` of the outer row's student (`student`: the outer field holding its
    pk), NULL without records. A correlated subquery, not a join + GROUP BY: a page of 100
    out of 10,000 students evaluates it for those 100 rows only."""
    return Subquery(
        student_overalls().filter(student_id=OuterRef(student)).values("overall"),
        output_field=FloatField(),
    )


def student_at_risk() -> Exists:
    """SQL of `at_risk` for the outer Student row."""
    return Exists(MasteryRecord.objects.filter(student=OuterRef("pk"), mastery__lt=AT_RISK_BELOW))


def consenting_memberships() -> QuerySet:
    """Cohort memberships (cohort_id, student_id) of students with analytics consent: the
    students a cohort's statistics are over."""
    return Cohort.students.through.objects.filter(student__analytics_consent=True).order_by()


def cohort_mean_mastery() -> Subquery:
    """SQL of `cohort_mean` for the outer Cohort row: the `ScoreMean` over its consenting
    members of each one's overall mastery (a student with many topics weighs no more than
    one with few; one without records does not count)."""
    members = consenting_memberships().filter(cohort_id=OuterRef("pk"))
    return Subquery(
        members.annotate(overall=student_overall_mastery("student_id"))
        .values("cohort_id")
        .annotate(mean=ScoreMean("overall"))
        .values("mean"),
        output_field=FloatField(),
    )


def cohort_list(user: User) -> QuerySet[Cohort]:
    """Cohorts with their size and, for teachers, admins and services, mean mastery.

    The mean is over the overall mastery of students with analytics consent. A student
    sees its own cohorts but no statistics: with two classmates, a mean would reveal one.
    """
    cohorts = cohorts_visible_to(user).annotate(student_count=Count("students", distinct=True))
    if user.role == User.Role.STUDENT:
        return cohorts.order_by("cohort_id")
    return cohorts.annotate(mean_mastery=cohort_mean_mastery()).order_by("cohort_id")


@dataclass(frozen=True)
class TopicMastery:
    topic: str
    mastery: float
    level: str
    completion: float
    quiz: float
    quality: float
    consistency: float
    updated_at: datetime | None


@dataclass(frozen=True)
class StudentMastery:
    student_id: str
    overall_mastery: float
    level: str
    topics: list[TopicMastery]


def mastery_for_student(student: Student, *, topic: str | None = None) -> StudentMastery:
    """Current mastery per topic; a known topic with no events yet scores 0.0."""
    return mastery_for_students([student], topic=topic)[student.pk]


def student_with_mastery(students: QuerySet[Student], *, topic: str | None = None):
    """`students` with, in the same query, each one's current records (`mastery_rows`) and,
    for a topic, whether it exists (`topic_known`): what `mastery_of_student` reads. Given
    to `student_read`, the visibility rule, the student and its records are one round trip."""
    records = MasteryRecord.objects.filter(student=OuterRef("pk"))
    if topic is not None:
        records = records.filter(topic__slug=topic)
        students = students.annotate(topic_known=Exists(Topic.objects.filter(slug=topic)))
    rows = records.order_by("topic__slug").values(
        row=JSONObject(
            topic="topic__slug", mastery="mastery", level="level", completion="completion",
            quiz="quiz", quality="quality", consistency="consistency", updated_at="updated_at",
        )
    )  # fmt: skip
    return students.annotate(mastery_rows=ArraySubquery(rows))


def mastery_of_student(student: Student, *, topic: str | None = None) -> StudentMastery:
    """Current mastery per topic of a student read through `student_with_mastery` (a known
    topic with no events yet scores 0.0; an unknown one is NotFound)."""
    if topic is not None and not student.topic_known:
        raise NotFound("No such topic.", code="topic_not_found")
    topics = []
    for text in student.mastery_rows:  # jsonb, as the text Django has psycopg return it
        row = orjson.loads(text)  # JSON writes the float 1.0 as 1: floats again, as stored
        topics.append(
            TopicMastery(
                row["topic"], float(row["mastery"]), row["level"], float(row["completion"]),
                float(row["quiz"]), float(row["quality"]), float(row["consistency"]),
                datetime.fromisoformat(row["updated_at"]),
            )
        )  # fmt: skip
    return _student_mastery(student, topics, topic)


def _student_mastery(
    student: Student, topics: list[TopicMastery], topic: str | None
) -> StudentMastery:
    if topic is not None and not topics:
        topics = [TopicMastery(topic, 0.0, level_for(0.0), 0.0, 0.0, 0.0, 0.0, None)]
    overall = overall_mastery(i.mastery for i in topics) or 0.0
    return StudentMastery(student.student_id, overall, level_for(overall), topics)


def mastery_for_students(
    students: Sequence[Student], *, topic: str | None = None
) -> dict[int, StudentMastery]:
    """The current mastery of many students in one read (a batch job's chunk), by pk."""
    records = MasteryRecord.objects.filter(student__in=[s.pk for s in students])
    if topic is not None:
        topic_pk = Topic.objects.filter(slug=topic).values_list("pk", flat=True).first()
        if topic_pk is None:
            raise NotFound("No such topic.", code="topic_not_found")
        records = records.filter(topic_id=topic_pk)
    items: dict[int, list[TopicMastery]] = defaultdict(list)
    rows = records.order_by("student_id", "topic__slug").values_list(
        "student_id", "topic__slug", "mastery", "level", "completion", "quiz", "quality",
        "consistency", "updated_at",
    )  # fmt: skip
    for student_pk, *fields in rows:
        items[student_pk].append(TopicMastery(*fields))
    return {s.pk: _student_mastery(s, items.get(s.pk) or [], topic) for s in students}


def student_daily_series(student: Student, *, start: date, end: date) -> DailySeries:
    """The daily series (SPEC §3.1) of each of the student's topics and overall, from
    `start` to `end`: two reads, the latest snapshot of each topic before the window and
    the snapshots inside it."""
    snapshots = Snapshot.objects.filter(student=student)
    before = (
        snapshots.filter(day__lt=start)
        .order_by("topic_id", "-day")
        .distinct("topic_id")
        .values_list("topic__slug", "mastery")
    )
    inside = snapshots.filter(day__range=(start, end)).values_list("topic__slug", "day", "mastery")
    return carry_forward(start=start, end=end, before=dict(before), snapshots=inside)


# `carry_forward` in SQL, by gaps and islands: a running count of a topic's snapshots numbers
# each run of days, the run takes its one snapshot's value, and the run before the window's
# first snapshot (0) takes the latest snapshot before the window, if any. The day's overall
# value is `score_mean_sql` of the topics that have one, as `carry_forward` takes
# `overall_mastery` of them.
_DAILY_SERIES_SQL = f"""
window_days AS (
    SELECT day::date AS day
    FROM generate_series(%(series_start)s::date, %(series_end)s::date, interval '1 day') AS day
),
inside AS (
    SELECT topic_id, day, mastery FROM mastery_snapshot
    WHERE student_id = %(series_student)s AND day BETWEEN %(series_start)s AND %(series_end)s
      AND (%(series_topic)s::bigint IS NULL OR topic_id = %(series_topic)s::bigint)
),
carried_in AS (
    SELECT DISTINCT ON (topic_id) topic_id, mastery FROM mastery_snapshot
    WHERE student_id = %(series_student)s AND day < %(series_start)s
      AND (%(series_topic)s::bigint IS NULL OR topic_id = %(series_topic)s::bigint)
    ORDER BY topic_id, day DESC
),
grid AS (
    SELECT t.topic_id, d.day, i.mastery,
           count(i.mastery) OVER (PARTITION BY t.topic_id ORDER BY d.day) AS run
    FROM (SELECT topic_id FROM inside UNION SELECT topic_id FROM carried_in) AS t
    CROSS JOIN window_days AS d
    LEFT JOIN inside AS i ON i.topic_id = t.topic_id AND i.day = d.day
),
topic_days AS (
    SELECT g.day,
           CASE WHEN g.run = 0 THEN c.mastery
                ELSE max(g.mastery) OVER (PARTITION BY g.topic_id, g.run) END AS value
    FROM grid AS g LEFT JOIN carried_in AS c ON c.topic_id = g.topic_id
),
daily AS (
    SELECT day, {score_mean_sql("value")} AS value
    FROM topic_days WHERE value IS NOT NULL GROUP BY day
)"""  # noqa: S608 (a constant: the values are parameters)


def student_daily_series_sql(
    student: Student, *, start: date, end: date, topic: Topic | None = None
) -> tuple[str, dict[str, object]]:
    """`student_daily_series` in SQL, for reads that aggregate it in PostgreSQL rather than
    carry 365 days x topics into Python: a WITH list (without the WITH) and its named
    parameters (all `series_*`). It defines `window_days(day)`, every day from `start` to
    `end`, and `daily(day, value)`: the series' overall value on each day that has one (with
    `topic`, that topic's value, which `score_mean` leaves as stored). Tests hold it to
    `carry_forward`, value for value."""
    params = {
        "series_student": student.pk,
        "series_topic": topic.pk if topic is not None else None,
        "series_start": start,
        "series_end": end,
    }
    return _DAILY_SERIES_SQL, params


def students_with_mastery(user: User) -> QuerySet[Student]:
    """The students `user` may see, with their overall mastery, at-risk flag and weakest
    topic (what the admin's student list shows and sorts by)."""
    weakest = MasteryRecord.objects.filter(student=OuterRef("pk")).order_by("mastery", "topic_id")
    return students_visible_to(user).annotate(
        overall_mastery=student_overall_mastery(),
        at_risk=student_at_risk(),
        weakest_topic=Subquery(weakest.values("topic__slug")[:1]),
        weakest_mastery=Subquery(weakest.values("mastery")[:1]),
    )


def student_cohorts_prefetch(user: User) -> Prefetch:
    """`student.visible_cohorts`: the student's cohorts that `user` may see, in one query."""
    return Prefetch(
        "cohorts",
        queryset=cohorts_visible_to(user).only("cohort_id", "name").order_by("cohort_id"),
        to_attr="visible_cohorts",
    )


def mastery_records_visible_to(user: User) -> QuerySet[MasteryRecord]:
    return MasteryRecord.objects.filter(student__in=students_visible_to(user))


def topic_prerequisite_graph() -> dict[int, set[int]]:
    """Topic pk -> pks of its direct prerequisites."""
    graph: dict[int, set[int]] = defaultdict(set)
    edges = Topic.prerequisites.through.objects.values_list("from_topic_id", "to_topic_id")
    for topic_pk, prerequisite_pk in edges:
        graph[topic_pk].add(prerequisite_pk)
    return graph


def topic_in_use(topic: Topic) -> bool:
    """Whether any event or mastery record refers to the topic (deleting it would cascade)."""
    return topic.records.exists() or topic.events.exists()
