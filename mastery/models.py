from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.indexes import BrinIndex
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Now

from mastery.domain import ids

STUDENT_ID_VALIDATOR = RegexValidator(rf"\A{ids.STUDENT_ID}\Z", ids.STUDENT_ID_RULE)
TOPIC_SLUG_VALIDATOR = RegexValidator(rf"\A{ids.TOPIC_SLUG}\Z", ids.TOPIC_SLUG_RULE)
COHORT_ID_VALIDATOR = RegexValidator(rf"\A{ids.COHORT_ID}\Z", ids.COHORT_ID_RULE)


class Student(models.Model):
    """A learner, known by the external `student_id` the learning platforms use."""

    student_id = models.CharField(max_length=64, unique=True, validators=[STUDENT_ID_VALIDATOR])
    # Consent for cohort statistics; the school collects it at enrolment, students may withdraw.
    analytics_consent = models.BooleanField(default=True, db_default=True)
    created_at = models.DateTimeField(db_default=Now())
    last_activity_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["student_id"]

    def __str__(self) -> str:
        return self.student_id


class User(AbstractUser):
    """A login. Exactly one role decides what it may see and do (SPEC §3)."""

    class Role(models.TextChoices):
        STUDENT = "student", "Student"
        TEACHER = "teacher", "Teacher"
        ADMIN = "admin", "Admin"
        SERVICE = "service", "Service"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STUDENT)
    student = models.OneToOneField(
        Student, null=True, blank=True, on_delete=models.SET_NULL, related_name="login"
    )

    class Meta:
        db_table = "mastery_user"


class Topic(models.Model):
    slug = models.CharField(max_length=100, unique=True, validators=[TOPIC_SLUG_VALIDATOR])
    name = models.CharField(max_length=200, blank=True, db_default="")
    # Set by an admin; wins over what events report.
    exercises_total = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    # The latest (occurred_at, event_id) exercise.completed that carried a total.
    reported_exercises_total = models.PositiveIntegerField(null=True, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    reported_event_id = models.CharField(max_length=100, blank=True, db_default="")
    prerequisites = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="unlocks"
    )
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def reported(self) -> tuple | None:
        """(occurred_at, event_id, total) of the latest report, the form the domain uses."""
        if self.reported_exercises_total is None:
            return None
        return (self.reported_at, self.reported_event_id, self.reported_exercises_total)


class Cohort(models.Model):
    cohort_id = models.CharField(max_length=64, unique=True, validators=[COHORT_ID_VALIDATOR])
    name = models.CharField(max_length=200, blank=True)
    teachers = models.ManyToManyField(User, blank=True, related_name="teaching_cohorts")
    students = models.ManyToManyField(Student, blank=True, related_name="cohorts")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cohort_id"]

    def __str__(self) -> str:
        return self.cohort_id


class MasteryRecord(models.Model):
    """Current mastery of one student in one topic, with the facts to update it incrementally."""

    # No index of its own: the unique constraint below leads with it (migration 0004).
    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="records", db_index=False
    )
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="records")
    completion = models.FloatField(default=0.0)
    quiz = models.FloatField(default=0.0)
    quality = models.FloatField(default=0.0)
    consistency = models.FloatField(default=0.0)
    mastery = models.FloatField(default=0.0)
    level = models.CharField(max_length=16, default="beginner")
    facts = models.JSONField(default=dict)
    policy_hash = models.CharField(max_length=32)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["student", "topic"], name="uniq_record_student_topic")
        ]
        # No index on a column the pipeline rewrites: updates stay HOT (see migration 0002).

    def __str__(self) -> str:
        return f"{self.student_id}/{self.topic_id}: {self.mastery}"


class Snapshot(models.Model):
    """Mastery of one student in one topic at the end of one UTC day."""

    # No index of its own: the unique constraint below leads with it (migration 0004).
    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="snapshots", db_index=False
    )
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="snapshots")
    day = models.DateField()
    completion = models.FloatField()
    quiz = models.FloatField()
    quality = models.FloatField()
    consistency = models.FloatField()
    mastery = models.FloatField()
    # Distinct exercises done by then: lets completion follow a change of the topic's size.
    exercises_done = models.PositiveIntegerField(default=0)
    # The pair's facts at the end of the day: a late event replays from the day before it,
    # which stays exact after older events were purged (SPEC §6).
    facts = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["student", "topic", "day"], name="uniq_snapshot_student_topic_day"
            )
        ]
        # (student, topic, day) also serves "one student's history"; days arrive in order,
        # so the retention purge uses a cheap BRIN index.
        indexes = [BrinIndex(fields=["day"], name="snapshot_day_brin")]

    def __str__(self) -> str:
        return f"{self.student_id}/{self.topic_id}@{self.day}: {self.mastery}"
