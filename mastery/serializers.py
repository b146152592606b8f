"""How a student's mastery reads (the body of `mastery/query`), for every place that shows
it: the API, and analytics' batch jobs, whose results are the same document."""

from rest_framework import serializers
from rest_framework.fields import DateTimeField


class TopicMasteryOutput(serializers.Serializer):
    topic = serializers.CharField()
    mastery = serializers.FloatField()
    level = serializers.CharField()
    components = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField(allow_null=True)

    def get_components(self, item) -> dict[str, float]:
        return components_of(item)


def components_of(item) -> dict[str, float]:
    return {
        "completion": round(item.completion, 4),
        "quiz": round(item.quiz, 4),
        "quality": round(item.quality, 4),
        "consistency": round(item.consistency, 4),
    }


_WHEN = DateTimeField()


class MasteryQueryOutput(serializers.Serializer):
    student_id = serializers.CharField()
    overall_mastery = serializers.FloatField()
    level = serializers.CharField()
    topics = TopicMasteryOutput(many=True)

    def to_representation(self, mastery) -> dict:
        """What the fields above give (they stay, for the schema; a test holds the two
        equal), built directly: this document is on the hot path of `mastery/query`."""
        when = _WHEN.to_representation
        return {
            "student_id": str(mastery.student_id),
            "overall_mastery": float(mastery.overall_mastery),
            "level": str(mastery.level),
            "topics": [
                {
                    "topic": str(item.topic),
                    "mastery": float(item.mastery),
                    "level": str(item.level),
                    "components": components_of(item),
                    "updated_at": None if item.updated_at is None else when(item.updated_at),
                }
                for item in mastery.topics
            ],
        }
