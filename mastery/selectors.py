"""Reads of the mastery app. Visibility (what this caller may see) lives here, once, and so
does the SQL of each rule of `mastery.domain.overall` and of the daily series."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import (
    Avg,
    Count,
    Exists,
    FloatField,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    Value,
)

from mastery.domain.facts import effective_exercises_total
from mastery.domain.formula import level_for
from mastery.domain.overall import AT_RISK_BELOW, overall_mastery
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


def student_get_visible(user: User, student_id: str) -> Student:
    """The student, or NotFound when it does not exist *or* the caller may not see it."""
    student = students_visible_to(user).filter(student_id=student_id).first()
    if student is None:
        raise NotFound("No such student.", code="student_not_found")
    return student


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


def student_overall_mastery() -> Subquery:
    """SQL of `overall_mastery` for the outer Student row: the mean of its records' mastery
    (NULL without records). A correlated subquery, not a join + GROUP BY: a page of 100
    out of 10,000 students evaluates it for those 100 rows only."""
    return Subquery(
        MasteryRecord.objects.filter(student=OuterRef("pk"))
        .order_by()
        .values("student")
        .annotate(mean=Avg("mastery"))
        .values("mean"),
        output_field=FloatField(),
    )


def student_at_risk() -> Exists:
    """SQL of `at_risk` for the outer Student row."""
    return Exists(MasteryRecord.objects.filter(student=OuterRef("pk"), mastery__lt=AT_RISK_BELOW))


def cohort_mean_mastery() -> Subquery:
    """SQL of `cohort_mean` for the outer Cohort row: the mean over its consenting
    students of each one's overall mastery (a student with many topics weighs no more
    than one with few)."""
    consenting = Student.objects.filter(cohorts=OuterRef("pk"), analytics_consent=True)
    return Subquery(
        consenting.annotate(overall=student_overall_mastery(), cohort=Value(1))
        .order_by()
        .values("cohort")
        .annotate(mean=Avg("overall"))
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
    records = MasteryRecord.objects.filter(student=student).select_related("topic")
    if topic is not None:
        topic_obj = Topic.objects.filter(slug=topic).first()
        if topic_obj is None:
            raise NotFound("No such topic.", code="topic_not_found")
        records = records.filter(topic=topic_obj)
    items = [
        TopicMastery(
            topic=r.topic.slug,
            mastery=r.mastery,
            level=r.level,
            completion=r.completion,
            quiz=r.quiz,
            quality=r.quality,
            consistency=r.consistency,
            updated_at=r.updated_at,
        )
        for r in records.order_by("topic__slug")
    ]
    if topic is not None and not items:
        items = [TopicMastery(topic, 0.0, level_for(0.0), 0.0, 0.0, 0.0, 0.0, None)]
    overall = overall_mastery(i.mastery for i in items) or 0.0
    return StudentMastery(student.student_id, overall, level_for(overall), items)


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
