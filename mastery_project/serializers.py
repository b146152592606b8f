"""The strict serializer base every API input builds on."""

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """Refuses unknown keys, so a typo is an error rather than silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({k: ["Unknown field."] for k in unknown})
        return super().to_internal_value(data)
