"""The cohort page's distribution section and the "Compare selected cohorts" action: who
sees what, what they read, and the plots' geometry."""

import re

import pytest
from django.contrib.admin import helpers
from django.test import Client
from django.urls import reverse

from analytics.admin.cohorts import AXIS_LEFT, AXIS_RIGHT, box_plot, histogram
from analytics.selectors.cohorts import CohortFigures
from compliance.models import AuditLog
from mastery.models import Cohort, Student
from tests.analytics.history.support import put_record
from tests.factories import CohortFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:mastery_cohort_changelist")


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def cohort_page(client: Client, cohort_id: str) -> str:
    cohort = Cohort.objects.get(cohort_id=cohort_id)
    response = client.get(reverse("admin:mastery_cohort_change", args=[cohort.pk]))
    assert response.status_code == 200
    return response.content.decode()


def compare(client: Client, *cohort_ids: str, topic: str | None = None):
    data = {
        "action": "compare_cohorts",
        helpers.ACTION_CHECKBOX_NAME: [
            str(pk) for pk in Cohort.objects.filter(cohort_id__in=cohort_ids).values_list(
                "pk", flat=True)
        ],
    }  # fmt: skip
    if topic is not None:
        data["topic"] = topic
    return client.post(CHANGELIST, data, follow=True)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_cohort_page_shows_the_distribution_and_component_means(school):
    page = cohort_page(client_of(school["users"]["teacher"]), "10a")
    assert 'id="cohort-distribution"' in page
    assert "Students per tenth of overall mastery" in page
    # a1 0.62, a2 0.70, a3 0.81, a4 0.55: bins 0.5, 0.6, 0.7 and 0.8 hold one each.
    bars = re.findall(r"<title>\[(0\.\d), [01]\.\d[)\]]: (\d+) student", page)
    assert {low: int(n) for low, n in bars if n != "0"} == {"0.5": 1, "0.6": 1, "0.7": 1, "0.8": 1}
    assert "over 4 consenting students" in text_of(page)
    components = page[page.index('id="cohort-components"') :]
    assert "0.67" in components  # completion = mastery in the fixture: mean 0.67


def test_a_cohort_without_consenting_students_says_so(school):
    Student.objects.filter(cohorts__cohort_id="10b").update(analytics_consent=False)
    page = cohort_page(client_of(school["users"]["other_teacher"]), "10b")
    assert "No consenting student of this cohort has mastery yet." in page


def test_an_admin_compares_cohorts_in_a_teachers_words(school):
    response = compare(client_of(school["users"]["admin"]), "10a", "10b")
    assert response.status_code == 200
    page = text_of(response.content.decode())
    assert "Cohort comparison" in page
    sentence = "Year 10 A is ahead by 0.21 (95 % CI 0.03\u20130.38); this is unlikely to be chance"
    assert sentence in page
    assert "the effect is large (g = 1.89)" in page
    assert "Welch's t-test for each pair" in page
    [entry] = AuditLog.objects.filter(action="admin.cohort.compare")
    assert entry.resource.endswith("?cohort_ids=10a,10b")


def test_a_teacher_compares_only_cohorts_it_teaches(school):
    teacher = school["users"]["teacher"]
    CohortFactory(cohort_id="10c", name="Year 10 C", teachers=[teacher],
                  students=[school["students"]["a1"], school["students"]["a2"]])  # fmt: skip
    own = compare(client_of(teacher), "10a", "10c")
    assert "Year 10 A" in own.content.decode()
    assert "Cohort comparison" in own.content.decode()
    mixed = compare(client_of(teacher), "10a", "10b")  # 10b is not in its list
    page = mixed.content.decode()
    assert "Cohort comparison" not in page
    assert "Select 2 to 10 cohorts to compare." in page
    assert not AuditLog.objects.filter(
        action="admin.cohort.compare", resource__contains="10b"
    ).exists()


def test_a_topic_narrows_the_comparison(school):
    put_record(school["students"]["a1"], "t.y", 0.2)
    put_record(school["students"]["a2"], "t.y", 0.4)
    put_record(school["students"]["b1"], "t.y", 0.9)
    put_record(school["students"]["b2"], "t.y", 0.8)
    page = text_of(compare(client_of(school["users"]["admin"]), "10a", "10b", topic="t.y")
                   .content.decode())  # fmt: skip
    assert "What the difference means (t.y)" in page
    assert "Year 10 B is ahead by 0.55" in page


def test_too_few_students_show_the_reason_instead_of_a_test(school):
    CohortFactory(cohort_id="solo", name="Solo", students=[school["students"]["a1"]])
    page = text_of(compare(client_of(school["users"]["admin"]), "10a", "solo").content.decode())
    assert "No test between Year 10 A and Solo: A cohort has fewer than 2 consenting" in page


def test_geometry_places_the_box_on_the_shared_axis():
    figures = CohortFigures(
        n=5, mean=0.5, sample_mean=0.5, median=0.45, std=0.2, min=0.1, max=1.0, p25=0.3,
        p75=0.7, p90=0.9, components={}, histogram=[0, 1, 0, 1, 1, 0, 0, 1, 0, 1],
    )  # fmt: skip
    empty = CohortFigures(0, None, None, None, None, None, None, None, None, None, {}, [0] * 10)
    plot = box_plot([("A", figures), ("B", empty)])
    span = AXIS_RIGHT - AXIS_LEFT
    box, nothing = plot["boxes"]
    assert box["x_min"] == pytest.approx(AXIS_LEFT + 0.1 * span, abs=0.05)
    assert box["x_max"] == AXIS_RIGHT
    assert box["x_median"] == pytest.approx(AXIS_LEFT + 0.45 * span, abs=0.05)
    assert box["width"] == pytest.approx(0.4 * span, abs=0.1)
    assert nothing["empty"]
    assert "x_min" not in nothing
    assert nothing["y"] > box["y"]

    bars = histogram(figures)["bars"]
    assert [b["count"] for b in bars] == figures.histogram
    tallest = max(b["height"] for b in bars)
    assert all(b["height"] in (0, tallest) for b in bars)  # every non-empty bin holds one
    assert bars[-1]["title"] == "[0.9, 1.0]: 1 student(s)"
