"""How a student's mastery reads (the body of `mastery/query`), for every place that shows
it: the API, and analytics' batch jobs, whose results are the same document."""

from rest_framework import serializers


class TopicMasteryOutput(serializers.Serializer):
    topic = serializers.CharField()
    mastery = serializers.FloatField()
    level = serializers.CharField()
    components = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField(allow_null=True)

    def get_components(self, item) -> dict[str, float]:
        return {
            "completion": round(item.completion, 4),
            "quiz": round(item.quiz, 4),
            "quality": round(item.quality, 4),
            "consistency": round(item.consistency, 4),
        }


class MasteryQueryOutput(serializers.Serializer):
    student_id = serializers.CharField()
    overall_mastery = serializers.FloatField()
    level = serializers.CharField()
    topics = TopicMasteryOutput(many=True)
