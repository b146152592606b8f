"""Reads behind the admin site: the student list's annotations, a student's recent history.

Visibility is not decided here: every query starts from `mastery.selectors`'
`students_visible_to` / `cohorts_visible_to`, the one rule of the project.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Avg, Exists, OuterRef, Prefetch, QuerySet, Subquery

from mastery.models import MasteryRecord, Snapshot, Student, Topic, User
from mastery.selectors import cohorts_visible_to, students_visible_to

# "At risk" (issue 6): below the lower bound of the developing level on any topic now.
AT_RISK_BELOW = 0.5


def students_for_admin(user: User) -> QuerySet[Student]:
    """The students `user` may see, with what the admin list shows and sorts by.

    Correlated subqueries rather than a join + GROUP BY: a page of 100 out of 10,000
    students evaluates them for those 100 rows only, and the count query drops them.
    The cohorts shown beside a student are only those `user` may see.
    """
    records = MasteryRecord.objects.filter(student=OuterRef("pk"))
    weakest = records.order_by("mastery", "topic_id")
    return students_visible_to(user).annotate(
        overall_mastery=Subquery(
            records.order_by().values("student").annotate(mean=Avg("mastery")).values("mean")
        ),
        at_risk=Exists(records.filter(mastery__lt=AT_RISK_BELOW)),
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


def student_id_of(pk: object) -> str:
    """The external id of the student with primary key `pk`, or "" (for audit entries only:
    it records *which* student a refused request aimed at, and is never shown)."""
    try:
        pk = int(str(pk))
    except ValueError:
        return ""
    return Student.objects.filter(pk=pk).values_list("student_id", flat=True).first() or ""


@dataclass(frozen=True)
class MasteryHistory:
    """Mastery per day over a window; None on days before the first snapshot.

    A topic keeps, on days without a snapshot, the value of its latest earlier snapshot
    (snapshots are written on days with events only); `overall` is the mean over the
    topics that have a value that day.
    """

    days: list[date]
    overall: list[float | None]
    topics: dict[str, list[float | None]]


def student_mastery_history(student: Student, *, today: date, days: int = 30) -> MasteryHistory:
    start = today - timedelta(days=days - 1)
    snapshots = Snapshot.objects.filter(student=student)
    # The latest snapshot of each topic before the window: its value carries into it.
    before = (
        snapshots.filter(day__lt=start)
        .order_by("topic_id", "-day")
        .distinct("topic_id")
        .values_list("topic__slug", "mastery")
    )
    inside = snapshots.filter(day__range=(start, today)).values_list(
        "topic__slug", "day", "mastery"
    )
    carried: dict[str, float] = dict(before)
    by_day: dict[str, dict[date, float]] = defaultdict(dict)
    for slug, day, mastery in inside:
        by_day[slug][day] = mastery
    window = [start + timedelta(days=i) for i in range(days)]
    topics: dict[str, list[float | None]] = {}
    for slug in sorted(set(carried) | set(by_day)):
        value = carried.get(slug)
        series = []
        for day in window:
            value = by_day[slug].get(day, value)
            series.append(value)
        topics[slug] = series
    overall: list[float | None] = []
    for i in range(days):
        values = [series[i] for series in topics.values() if series[i] is not None]
        overall.append(round(sum(values) / len(values), 4) if values else None)
    return MasteryHistory(window, overall, topics)


def topic_prerequisite_graph() -> dict[int, set[int]]:
    """Topic pk -> pks of its direct prerequisites (for the admin's cycle check)."""
    graph: dict[int, set[int]] = defaultdict(set)
    edges = Topic.prerequisites.through.objects.values_list("from_topic_id", "to_topic_id")
    for topic_pk, prerequisite_pk in edges:
        graph[topic_pk].add(prerequisite_pk)
    return graph


def topic_in_use(topic: Topic) -> bool:
    """Whether any event or mastery record refers to the topic (deleting it would cascade)."""
    return topic.records.exists() or topic.events.exists()
