"""Recorded predictions and verdicts on flags are the student's data (SPEC §5): exported,
erased with the student, and nothing that names the student is left in any table."""

import orjson
import pytest

from analytics.models.predictions import FlagFeedback, PredictionRecord
from compliance.services.erasure import student_erase
from compliance.services.export import student_export_stream
from tests.analytics.predictions.support import LOOPS
from tests.compliance.support import rows_naming

pytestmark = pytest.mark.django_db

NEXT_WEEK = "/api/v1/predictions/next-week"
FEEDBACK = "/api/v1/predictions/intervention/feedback"


@pytest.fixture
def judged(school, client_for):
    """s-a1 and s-b1 each with two served predictions and a verdict on a flag."""
    admin = client_for(school.users["admin"])
    for student_id in ("s-a1", "s-b1"):
        admin.post(NEXT_WEEK, {"student_id": student_id}, format="json")
        admin.post(NEXT_WEEK, {"student_id": student_id, "topic": LOOPS}, format="json")
        admin.post(
            FEEDBACK,
            {"student_id": student_id, "verdict": "incorrectly_flagged", "comment": "absent"},
            format="json",
        )
    return school


def test_the_export_holds_the_predictions_and_the_verdicts_without_the_teachers_name(judged):
    student = judged.students["s-a1"]
    doc = orjson.loads(
        b"".join(student_export_stream(student=student, actor=judged.users["admin"]))
    )
    predictions = doc["derived"]["predictions"]
    assert sorted(p["topic__slug"] or "" for p in predictions) == ["", LOOPS]
    flags = [f for f in doc["derived"]["feedback"] if f.get("about") == "flag"]
    assert len(flags) == 1
    assert flags[0]["verdict"] == "incorrectly_flagged"
    assert flags[0]["author_role"] == "admin"
    assert "admin" not in {str(value) for key, value in flags[0].items() if key != "author_role"}


def test_erasure_removes_them_and_leaves_no_row_naming_the_student(judged, client_for):
    counts = student_erase(student_id="s-a1", actor=judged.users["admin"])
    assert (counts["predictions"], counts["flag_feedback"]) == (2, 1)
    assert not PredictionRecord.objects.filter(student__student_id="s-a1").exists()
    assert PredictionRecord.objects.filter(student__student_id="s-b1").count() == 2
    assert FlagFeedback.objects.filter(student__student_id="s-b1").count() == 1
    assert rows_naming("s-a1") == []
    gone = client_for(judged.users["admin"]).post(NEXT_WEEK, {"student_id": "s-a1"}, format="json")
    assert gone.status_code == 404
