"""Recommendations and their feedback in the privacy registry (SPEC §5, §6): exported,
erased with the student (the every-table scan stays clean), purged after retention."""

from datetime import timedelta

import orjson
import pytest
from django.test import override_settings
from django.utils import timezone

from analytics.models.recommendations import Recommendation, RecommendationFeedback
from analytics.services.recommendations import (
    learning_path_current,
    recommendation_feedback_save,
    recommendations_current,
)
from compliance.services.erasure import student_erase
from compliance.services.export import student_export_stream
from compliance.services.retention import expired_purge
from mastery.models import Student
from tests.analytics.recommendations.conftest import LOOPS, event, seed
from tests.compliance.support import rows_naming

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def ledger_file(tmp_path):
    with override_settings(ERASURE_LEDGER_FILE=tmp_path / "erasure-ledger.jsonl"):
        yield


@pytest.fixture
def with_feedback(school):
    """s-a1 with current and superseded recommendations, feedback from itself and its
    teacher on both; s-a2 (the bystander) with recommendations and its own feedback."""
    student = school.students["s-a1"]
    old = recommendations_current(student=student, topic=LOOPS)[0]
    seed([event("s-a1", LOOPS, "exercise.completed", exercise_id="ex-new")])
    new = learning_path_current(student=student).recommendations[LOOPS][0]
    assert (old.component, new.component) == ("completion", "completion")
    for author, target in [
        (school.users["student"], old),
        (school.users["teacher"], old),
        (school.users["student"], new),
    ]:
        recommendation_feedback_save(
            recommendation=target, author=author, helpful=True, comment="noted s-a1"
        )
    bystander = recommendations_current(student=school.students["s-a2"])[0]
    recommendation_feedback_save(
        recommendation=bystander, author=school.users["teacher"], helpful=False
    )
    return old, new, bystander


def test_erasure_deletes_the_students_recommendations_and_feedback_and_nothing_else(
    school, with_feedback
):
    *_, bystander = with_feedback
    student = school.students["s-a1"]
    ours = Recommendation.objects.filter(student=student)
    assert ours.filter(superseded_at__isnull=False).exists()
    held = ours.count()

    counts = student_erase(student_id="s-a1", actor=school.users["admin"])

    assert counts["recommendations"] == held
    assert counts["recommendation_feedback"] == 3
    assert not Recommendation.objects.filter(student_id=student.pk).exists()
    assert rows_naming("s-a1") == []
    assert rows_naming("student-a1") == []  # the login's username
    assert RecommendationFeedback.objects.filter(recommendation=bystander).count() == 1
    assert Recommendation.objects.filter(student__student_id="s-a2").exists()


def test_the_export_holds_the_recommendations_and_the_feedback(school, with_feedback):
    old, new, _ = with_feedback
    student = school.students["s-a1"]

    doc = orjson.loads(b"".join(student_export_stream(student=student, actor=None)))

    exported = doc["derived"]["recommendations"]
    assert len(exported) == Recommendation.objects.filter(student=student).count()
    by_id = {row["id"]: row for row in exported}
    assert by_id[str(old.pk)]["superseded_at"] is not None
    assert by_id[str(new.pk)]["message"] == new.message
    assert by_id[str(new.pk)]["topic__slug"] == LOOPS
    feedback = doc["derived"]["feedback"]
    ours = [row for row in feedback if row["about"] == "recommendation"]
    assert sorted(row["recommendation_id"] for row in ours) == sorted(
        [str(old.pk), str(old.pk), str(new.pk)]
    )
    assert {row["author_role"] for row in ours} == {"student", "teacher"}
    assert all(row["topic"] == LOOPS and row["comment"] == "noted s-a1" for row in ours)


@override_settings(RETENTION_RECOMMENDATIONS_DAYS=30)
def test_retention_purges_old_superseded_recommendations_and_old_feedback_only(
    school, with_feedback
):
    old, new, bystander = with_feedback
    now = timezone.now()
    long_ago = now - timedelta(days=31)
    Recommendation.objects.filter(pk=old.pk).update(superseded_at=long_ago)
    Recommendation.objects.filter(pk=new.pk).update(created_at=long_ago)  # current: kept
    RecommendationFeedback.objects.filter(recommendation=old).update(updated_at=long_ago)
    superseded_unjudged = Recommendation.objects.create(
        student=school.students["s-a2"],
        topic=school.topics[LOOPS],
        component="quiz",
        score=0.1,
        action="review",
        impact=0.18,
        priority="high",
        steps=3,
        target=0.7,
        mastery_gain=0.18,
        estimated_minutes=60,
        message="m",
        rules_hash="h",
        superseded_at=long_ago,
    )

    dry = expired_purge(dry_run=True, now=now)
    first = expired_purge(now=now)
    second = expired_purge(now=now)

    # The judged one waits for its feedback to go, then goes on the next run.
    assert dry["recommendation_feedback"] == first["recommendation_feedback"] == 2
    assert first["recommendations"] == 1
    assert second["recommendations"] == 1
    assert not Recommendation.objects.filter(pk__in=[old.pk, superseded_unjudged.pk]).exists()
    assert Recommendation.objects.filter(pk__in=[new.pk, bystander.pk]).count() == 2
    assert RecommendationFeedback.objects.filter(recommendation=new).count() == 1
    assert expired_purge(now=now)["recommendations"] == 0


def test_erasing_a_student_with_recommendations_of_a_deleted_login_still_works(school):
    # The feedback's author is kept as a role when the author's login goes.
    student = school.students["s-a2"]
    target = recommendations_current(student=student)[0]
    recommendation_feedback_save(
        recommendation=target, author=school.users["teacher"], helpful=True
    )
    school.users["teacher"].delete()

    feedback = RecommendationFeedback.objects.get()
    assert (feedback.author, feedback.author_role) == (None, "teacher")
    student_erase(student_id="s-a2", actor=None)
    assert not Student.objects.filter(student_id="s-a2").exists()
    assert not RecommendationFeedback.objects.exists()
