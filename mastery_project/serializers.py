"""What every app's API input builds on: a serializer that refuses unknown keys, and
fields that refuse JSON of the wrong type (a number must be a JSON number, an id must
match its pattern) rather than coercing it."""

import math

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mastery.models import STUDENT_ID_VALIDATOR, TOPIC_SLUG_VALIDATOR


class StrictSerializer(serializers.Serializer):
    """Refuses unknown keys, so a typo is an error rather than silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({k: ["Unknown field."] for k in unknown})
        return super().to_internal_value(data)


@extend_schema_field({"type": "number", "minimum": 0, "maximum": 1})
class UnitIntervalField(serializers.Field):
    """A JSON number in [0, 1]; strings, booleans, NaN and infinities are refused."""

    default_error_messages = {
        "type": "Must be a JSON number.",
        "range": "Must be between 0 and 1.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("type")
        value = float(data)
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            self.fail("range")
        return value

    def to_representation(self, value):
        return value


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false; DRF's BooleanField would also take "yes", "1" or 0."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictCharField(serializers.CharField):
    """A CharField that refuses non-string JSON (DRF would turn 12 into "12") and, by
    default, does not trim: " s-1" is not a valid id, it is not quietly repaired."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def student_id_field(**kwargs) -> StrictCharField:
    return StrictCharField(max_length=64, validators=[STUDENT_ID_VALIDATOR], **kwargs)


def topic_field(**kwargs) -> StrictCharField:
    return StrictCharField(max_length=100, validators=[TOPIC_SLUG_VALIDATOR], **kwargs)
