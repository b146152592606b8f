"""`MasteryQueryOutput` builds its document directly, on the hot path of `mastery/query`; it
must give what its declared fields give, for any mastery."""

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from rest_framework import serializers

from mastery.selectors import StudentMastery, TopicMastery
from mastery.serializers import MasteryQueryOutput

scores = st.floats(min_value=0, max_value=1, allow_nan=False)
moments = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    ),
)
topics = st.builds(
    TopicMastery,
    topic=st.text(min_size=1, max_size=20),
    mastery=scores,
    level=st.sampled_from(["novice", "developing", "proficient", "mastered"]),
    completion=scores,
    quiz=scores,
    quality=scores,
    consistency=scores,
    updated_at=moments,
)
masteries = st.builds(
    StudentMastery,
    student_id=st.text(min_size=1, max_size=64),
    overall_mastery=scores,
    level=st.sampled_from(["novice", "developing", "proficient", "mastered"]),
    topics=st.lists(topics, max_size=6),
)


@given(mastery=masteries)
def test_the_direct_document_is_what_the_declared_fields_give(mastery):
    declared = serializers.Serializer.to_representation(MasteryQueryOutput(), mastery)
    assert MasteryQueryOutput(mastery).data == declared


@given(many=st.lists(masteries, max_size=3))
def test_a_list_of_them_too(many):
    declared = [serializers.Serializer.to_representation(MasteryQueryOutput(), m) for m in many]
    assert MasteryQueryOutput(many, many=True).data == declared
