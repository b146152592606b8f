"""One overall mastery and one cohort mean, whichever view shows them: a mean just below a
level bound and exact ties (x.xxxx5, whose doubles lie below the tie) read the same in
`/mastery/query`, `/students/`, the admin's list column and level filter, both cohort
lists, and the comparison in the API and in the admin."""

import pytest
from django.contrib.admin import helpers
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mastery.domain.formula import level_for
from mastery.domain.overall import cohort_mean, overall_mastery
from mastery.models import Cohort, MasteryRecord, Student, Topic, User
from tests.factories import CohortFactory, UserFactory

pytestmark = pytest.mark.django_db

RECORDS = {
    "s-bound": [0.4999, 0.5, 0.5],  # 0.49996...: 0.5, developing, not beginner
    "s-tie": [0.6999, 0.7],  # 0.69995: 0.7, proficient (Python's round gives 0.6999)
    "s-low": [0.6999],
    "s-high": [0.7],
}
OVERALL = {"s-bound": 0.5, "s-tie": 0.7, "s-low": 0.6999, "s-high": 0.7}
COHORTS = {"bound": ["s-bound"], "tie": ["s-tie"], "pair": ["s-low", "s-high"]}
MEANS = {"bound": 0.5, "tie": 0.7, "pair": 0.7}  # pair: mean(0.6999, 0.7), a tie too


@pytest.fixture
def admin(pinned_clock) -> User:
    for student_id, scores in RECORDS.items():
        student = Student.objects.create(student_id=student_id)
        for n, mastery in enumerate(scores):
            topic, _ = Topic.objects.get_or_create(slug=f"t.{n}")
            MasteryRecord.objects.create(
                student=student, topic=topic, mastery=mastery, level=level_for(mastery),
                completion=mastery, quiz=mastery, quality=mastery, consistency=mastery,
                policy_hash="test", updated_at=timezone.now(),
            )  # fmt: skip
    for cohort_id, members in COHORTS.items():
        CohortFactory(cohort_id=cohort_id, students=Student.objects.filter(student_id__in=members))
    return UserFactory(username="admin", role=User.Role.ADMIN)


def test_the_expected_values_are_the_pure_rules():
    assert {sid: overall_mastery(scores) for sid, scores in RECORDS.items()} == OVERALL
    means = {cid: cohort_mean(OVERALL[sid] for sid in sids) for cid, sids in COHORTS.items()}
    assert means == MEANS
    assert (level_for(OVERALL["s-bound"]), level_for(OVERALL["s-tie"])) == (
        "developing",
        "proficient",
    )


def test_the_api_gives_one_overall_mastery(admin, client_for):
    api = client_for(admin)
    for student_id in ("s-bound", "s-tie"):
        body = api.post("/api/v1/mastery/query", {"student_id": student_id}, format="json").json()
        expected = OVERALL[student_id]
        assert (body["overall_mastery"], body["level"]) == (expected, level_for(expected))
    listed = api.get("/api/v1/students/").json()["results"]
    assert {s["student_id"]: s["overall_mastery"] for s in listed} == OVERALL


def test_the_admin_list_shows_and_filters_by_the_same_overall_mastery(admin):
    client = Client()
    client.force_login(admin)
    students = reverse("admin:mastery_student_changelist")
    changelist = client.get(students).context["cl"]
    shown = {s.student_id: changelist.model_admin.overall(s) for s in changelist.result_list}
    assert shown["s-bound"] == "0.50 (developing)"
    assert shown["s-tie"] == "0.70 (proficient)"

    def in_level(level: str) -> set[str]:
        result = client.get(students, {"level": level}).context["cl"].result_list
        return {s.student_id for s in result}

    assert in_level("beginner") == set()
    assert in_level("developing") == {"s-bound", "s-low"}
    assert in_level("proficient") == {"s-tie", "s-high"}


def test_cohort_lists_and_comparisons_give_one_cohort_mean(admin, client_for):
    api = client_for(admin)
    cohorts = api.get("/api/v1/cohorts/").json()["results"]
    assert {c["cohort_id"]: c["mean_mastery"] for c in cohorts} == MEANS
    analytics = api.get("/api/v1/analytics/cohorts/list").json()["results"]
    assert {c["cohort_id"]: c["mean_mastery"] for c in analytics} == MEANS

    compared = api.post(
        "/api/v1/analytics/cohorts/compare", {"cohort_ids": list(COHORTS)}, format="json"
    ).json()
    assert {c["cohort_id"]: c["mean"] for c in compared["cohorts"]} == MEANS

    client = Client()
    client.force_login(admin)
    page = client.post(
        reverse("admin:mastery_cohort_changelist"),
        {
            "action": "compare_cohorts",
            helpers.ACTION_CHECKBOX_NAME: [str(c.pk) for c in Cohort.objects.all()],
        },
    )
    shown = {row["cohort"].cohort_id: row["figures"].mean for row in page.context["cohorts"]}
    assert shown == MEANS
