from rest_framework import serializers

from mastery.models import Cohort, Student, Topic
from mastery.serializers import MasteryQueryOutput as MasteryQueryOutput
from mastery_project.serializers import (
    StrictSerializer,
    UnitIntervalField,
    student_id_field,
    topic_field,
)


class MasteryQueryInput(StrictSerializer):
    student_id = student_id_field()
    topic = topic_field(required=False)


class ComponentsSerializer(serializers.Serializer):
    completion = serializers.FloatField()
    quiz = serializers.FloatField()
    quality = serializers.FloatField()
    consistency = serializers.FloatField()


class CalculateInput(StrictSerializer):
    completion = UnitIntervalField()
    quiz = UnitIntervalField()
    quality = UnitIntervalField()
    consistency = UnitIntervalField()


class BreakdownItem(serializers.Serializer):
    score = serializers.FloatField()
    weight = serializers.FloatField()
    contribution = serializers.FloatField()


class CalculateOutput(serializers.Serializer):
    mastery = serializers.FloatField()
    level = serializers.CharField()
    breakdown = serializers.DictField(child=BreakdownItem())


class StudentSerializer(serializers.ModelSerializer):
    cohorts = serializers.SlugRelatedField(many=True, read_only=True, slug_field="cohort_id")
    overall_mastery = serializers.SerializerMethodField()

    class Meta:
        model = Student
        fields = [
            "student_id",
            "cohorts",
            "overall_mastery",
            "analytics_consent",
            "last_activity_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_overall_mastery(self, student) -> float | None:
        value = getattr(student, "overall_mastery", None)
        return None if value is None else round(value, 4)


class TopicSerializer(serializers.ModelSerializer):
    prerequisites = serializers.SlugRelatedField(many=True, read_only=True, slug_field="slug")
    exercises_total = serializers.SerializerMethodField()

    class Meta:
        model = Topic
        fields = ["slug", "name", "exercises_total", "prerequisites"]
        read_only_fields = fields

    def get_exercises_total(self, topic) -> int:
        return self.context["exercises_total"](topic)


class CohortSerializer(serializers.ModelSerializer):
    student_count = serializers.IntegerField(read_only=True)
    mean_mastery = serializers.SerializerMethodField()

    class Meta:
        model = Cohort
        fields = ["cohort_id", "name", "student_count", "mean_mastery"]
        read_only_fields = fields

    def get_mean_mastery(self, cohort) -> float | None:
        value = getattr(cohort, "mean_mastery", None)
        return None if value is None else round(value, 4)
