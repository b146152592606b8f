"""Reads of the mastery app. Visibility (what this caller may see) lives here, once."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Avg, Count, FloatField, Prefetch, QuerySet
from django.db.models.expressions import RawSQL

from mastery.domain.facts import effective_exercises_total
from mastery.domain.formula import level_for
from mastery.models import Cohort, MasteryRecord, Student, Topic, User
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
    students = students_visible_to(user).annotate(overall_mastery=Avg("records__mastery"))
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


# Mean over the cohort's consenting students of each one's overall mastery (the mean over
# its topics, SPEC §2.1): a student with many topics weighs no more than one with few.
# Table names come from model _meta; the SQL takes no value from a request.
_COHORT_MEAN = RawSQL(  # noqa: S611
    f"""SELECT avg(overall) FROM (
            SELECT avg(r.mastery) AS overall
            FROM {MasteryRecord._meta.db_table} r
            JOIN {Cohort.students.through._meta.db_table} m ON m.student_id = r.student_id
            JOIN {Student._meta.db_table} s ON s.id = r.student_id
            WHERE m.cohort_id = {Cohort._meta.db_table}.id AND s.analytics_consent
            GROUP BY r.student_id) AS per_student""",  # noqa: S608
    [],
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
    return cohorts.annotate(mean_mastery=_COHORT_MEAN).order_by("cohort_id")


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
    overall = round(sum(i.mastery for i in items) / len(items), 4) if items else 0.0
    return StudentMastery(student.student_id, overall, level_for(overall), items)
