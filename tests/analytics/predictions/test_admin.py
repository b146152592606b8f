"""Predictions in the admin: the student page's prediction, reasons and forecast band, the
teacher's verdict on a flag, the "needs intervention" filter, the cohort page's share of
flags judged incorrect, and the back-test report for admins."""

import pytest
from django.urls import reverse

from analytics.models.predictions import BacktestReport, FlagFeedback
from analytics.services.predictions import backtest_run
from compliance.models import AuditLog
from mastery.models import Student
from tests.analytics.predictions.support import LOOPS

pytestmark = pytest.mark.django_db

STUDENTS = reverse("admin:mastery_student_changelist")
RECORD = reverse("admin:analytics_flagfeedback_record")


def page_of(client, student: Student) -> str:
    response = client.get(reverse("admin:mastery_student_change", args=[student.pk]))
    assert response.status_code == 200
    return response.content.decode()


def listed(response) -> list[str]:
    return [s.student_id for s in response.context["cl"].result_list]


def test_the_student_page_shows_the_flag_its_reasons_and_the_band_on_the_chart(
    school, admin_client_for
):
    page = page_of(admin_client_for(school.users["teacher"]), school.students["s-a1"])
    section = page[page.index('id="predictions"') :]
    assert "needs intervention" in section
    assert "Quiz fell from 0.90 to" in section
    assert f'<th scope="row">{LOOPS}' in section
    start = page.index('<svg class="me-chart"')
    chart = page[start : page.index("</svg>", start)]
    assert chart.count('class="me-forecast-band"') == 1
    assert chart.count('class="me-forecast-line"') == 1
    assert "forecast (80 %)" in chart
    # the band's line has today plus 14 days ahead
    line = chart.split('class="me-forecast-line" points="')[1].split('"')[0]
    assert len(line.split()) == 15


def test_a_student_without_history_has_a_prediction_but_no_band(school, admin_client_for):
    newcomer = Student.objects.create(student_id="s-a3")
    school.cohorts["cohort-a"].students.add(newcomer)
    page = page_of(admin_client_for(school.users["teacher"]), newcomer)
    assert 'id="predictions"' in page
    assert "me-forecast-band" not in page
    assert "No activity yet" in page


def verdict(student: Student, verdict: str = "incorrectly_flagged", **fields) -> dict:
    return {"flag-student": student.pk, "flag-verdict": verdict, "flag-comment": "", **fields}


def test_a_teacher_records_a_verdict_from_the_student_page(school, admin_client_for):
    client = admin_client_for(school.users["teacher"])
    student = school.students["s-a1"]
    response = client.post(
        RECORD, verdict(student, **{"flag-topic": LOOPS, "flag-comment": "was ill"}), follow=True
    )
    assert response.redirect_chain[-1][0].endswith(
        reverse("admin:mastery_student_change", args=[student.pk]) + "#predictions"
    )
    stored = FlagFeedback.objects.get()
    assert (stored.student, stored.topic.slug, stored.verdict, stored.comment) == (
        student,
        LOOPS,
        "incorrectly_flagged",
        "was ill",
    )
    assert (stored.author, stored.flagged) == (school.users["teacher"], True)
    page = response.content.decode()
    assert f"Recorded: the {LOOPS} flag was incorrectly flagged." in page
    assert "Verdicts so far" in page
    assert AuditLog.objects.filter(action="admin.prediction.feedback", student_ref="s-a1").exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"flag-verdict": "great"}, "No verdict was recorded"),
        ({"flag-topic": "no.such.topic"}, "That topic does not exist"),
    ],
)
def test_a_bad_verdict_is_refused_with_a_message(school, admin_client_for, fields, message):
    client = admin_client_for(school.users["teacher"])
    response = client.post(RECORD, verdict(school.students["s-a1"], **fields), follow=True)
    assert message in response.content.decode()
    assert not FlagFeedback.objects.exists()


def test_a_verdict_on_another_cohorts_student_is_404_and_a_get_is_405(school, admin_client_for):
    client = admin_client_for(school.users["teacher"])
    assert client.post(RECORD, verdict(school.students["s-b1"])).status_code == 404
    assert (
        client.post(RECORD, {"flag-student": "x' OR 1=1", "flag-verdict": "acted"}).status_code
        == 404
    )
    assert client.get(RECORD).status_code == 405
    assert not FlagFeedback.objects.exists()


def test_the_needs_intervention_filter_uses_the_predictions_rule(school, admin_client_for):
    teacher = admin_client_for(school.users["teacher"])
    admin = admin_client_for(school.users["admin"])
    assert listed(teacher.get(STUDENTS, {"intervention": "yes"})) == ["s-a1"]
    assert listed(teacher.get(STUDENTS, {"intervention": "no"})) == ["s-a2"]
    assert listed(admin.get(STUDENTS, {"intervention": "yes"})) == ["s-a1", "s-b1"]
    odd = teacher.get(STUDENTS, {"intervention": "maybe"})
    assert odd.status_code == 200
    assert listed(odd) == []


def test_the_cohort_page_shows_the_share_of_flags_judged_incorrect(school, admin_client_for):
    client = admin_client_for(school.users["teacher"])
    client.post(RECORD, verdict(school.students["s-a1"]))
    client.post(RECORD, verdict(school.students["s-a2"], "useful"))
    cohort = school.cohorts["cohort-a"]
    page = client.get(reverse("admin:mastery_cohort_change", args=[cohort.pk])).content.decode()
    section = page[page.index('id="flag-verdicts"') :]
    assert "2 flags of this cohort" in section
    assert "<strong>50 %</strong> (1) judged <em>incorrectly flagged</em>" in section
    other = school.cohorts["cohort-b"]
    admin = admin_client_for(school.users["admin"])
    page = admin.get(reverse("admin:mastery_cohort_change", args=[other.pk])).content.decode()
    assert "No flag of this cohort" in page


def test_admins_see_the_latest_backtest_report_and_teachers_do_not(school, admin_client_for):
    from django.utils import timezone

    backtest_run(horizon=7, now=timezone.now())
    url = reverse("admin:analytics_backtestreport_change", args=[BacktestReport.SINGLETON])
    page = admin_client_for(school.users["admin"]).get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="backtest-topic"' in text
    assert 'id="backtest-overall"' in text
    assert "(served)" in text
    assert "cohort-a" in text  # the per-cohort verdicts
    assert admin_client_for(school.users["teacher"]).get(url).status_code == 403


def test_admins_list_the_verdicts_and_teachers_read_them_on_the_student_page(
    school, admin_client_for
):
    admin_client_for(school.users["admin"]).post(RECORD, verdict(school.students["s-b1"]))
    admin_client_for(school.users["teacher"]).post(RECORD, verdict(school.students["s-a1"]))
    changelist = reverse("admin:analytics_flagfeedback_changelist")
    response = admin_client_for(school.users["admin"]).get(changelist)
    listed = sorted(f.student.student_id for f in response.context["cl"].result_list)
    assert listed == ["s-a1", "s-b1"]
    assert AuditLog.objects.filter(action="admin.flagfeedback.list", student_ref="s-b1").exists()
    teacher = admin_client_for(school.users["teacher"])
    assert teacher.get(changelist).status_code == 403
    page = page_of(teacher, school.students["s-a1"])
    assert "Verdicts so far" in page
    assert "teacher-a" in page[page.index("Verdicts so far") :]
