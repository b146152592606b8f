"""Stored recommendations (SPEC §3.2) and the feedback on them.

A recommendation is kept under a stable id so that feedback can name it: the same
student, topic, component and unchanged score (under unchanged rules) is the same row.
When the score changes, the row is marked superseded and a new one is written; the old
one stays, with its feedback, until its retention window has passed.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from mastery.domain.formula import COMPONENTS
from mastery.models import Student, Topic


class Recommendation(models.Model):
    class Priority(models.TextChoices):
        HIGH = "high", "High"
        MEDIUM = "medium", "Medium"
        LOW = "low", "Low"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="+")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="+")
    component = models.CharField(max_length=16, choices=[(c, c) for c in COMPONENTS])
    # The component's score it was made for, at the precision of scores (4 decimals).
    score = models.FloatField()
    action = models.CharField(max_length=16)
    impact = models.FloatField()
    priority = models.CharField(max_length=8, choices=Priority.choices)
    steps = models.PositiveIntegerField()
    target = models.FloatField()
    mastery_gain = models.FloatField()
    estimated_minutes = models.PositiveIntegerField()
    message = models.TextField()
    # `RecommendationRules.rules_hash`: the threshold, weights and minutes it was made under.
    rules_hash = models.CharField(max_length=16)
    created_at = models.DateTimeField(db_default=Now())
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # At most one current recommendation per student, topic and component, whatever
            # two requests race to write.
            models.UniqueConstraint(
                fields=["student", "topic", "component"],
                condition=Q(superseded_at__isnull=True),
                name="uniq_current_recommendation",
            )
        ]
        indexes = [
            models.Index(
                fields=["superseded_at"],
                condition=Q(superseded_at__isnull=False),
                name="recommendation_superseded",
            )
        ]

    def __str__(self) -> str:
        return f"{self.student_id}/{self.topic_id}/{self.component}: {self.action} ({self.score})"

    @property
    def current(self) -> bool:
        return self.superseded_at is None


class RecommendationFeedback(models.Model):
    """What one person (the student, a teacher, an admin) said about one recommendation;
    saying it again replaces it, so each person counts once in the shares."""

    recommendation = models.ForeignKey(
        Recommendation, on_delete=models.CASCADE, related_name="feedback"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_role = models.CharField(max_length=16)
    helpful = models.BooleanField()
    completed = models.BooleanField(null=True, blank=True)
    comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recommendation", "author"], name="uniq_recommendation_feedback_author"
            )
        ]
        indexes = [models.Index(fields=["updated_at"], name="recommendation_feedback_time")]

    def __str__(self) -> str:
        verdict = "helpful" if self.helpful else "not helpful"
        return f"{self.recommendation_id}: {verdict} ({self.author_role})"
