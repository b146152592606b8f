"""History and cohort endpoints: the role x endpoint matrix, every refusal with its code,
consent, audit, and results equal to an independent computation on the same data."""

import statistics
from datetime import timedelta

import pytest
from django.utils import timezone
from scipy import stats

from compliance.models import AuditLog
from mastery.models import Student, User
from mastery.selectors import student_daily_series
from tests.analytics.history.support import put_record
from tests.factories import (
    CohortFactory,
    StudentFactory,
    UserFactory,
    event_document,
    ingest_all,
)

pytestmark = pytest.mark.django_db

HISTORY = "/api/v1/analytics/history"
COMPARE = "/api/v1/analytics/cohorts/compare"
COHORT_LIST = "/api/v1/analytics/cohorts/list"


@pytest.fixture
def as_role(school, client_for, api_client):
    def make(role: str):
        return api_client if role == "anonymous" else client_for(school["users"][role])

    return make


def history_body(school, student_id="a1", **changes) -> dict:
    today = school["today"]
    body = {
        "student_id": student_id,
        "start_date": str(today - timedelta(days=9)),
        "end_date": str(today),
        "granularity": "daily",
    }
    return {**body, **changes}


# --- the role matrix ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "student_id", "status"),
    [
        ("anonymous", "a1", 401),
        ("student", "a1", 200),
        ("student", "a2", 404),
        ("teacher", "a2", 200),
        ("teacher", "b1", 404),
        ("other_teacher", "b1", 200),
        ("admin", "b1", 200),
        ("service", "a3", 200),
        ("admin", "nobody", 404),
    ],
)
def test_history_visibility(as_role, school, role, student_id, status):
    posted = as_role(role).post(HISTORY, history_body(school, student_id), format="json")
    got = as_role(role).get(f"{HISTORY}/{student_id}")
    assert (posted.status_code, got.status_code) == (status, status)
    if status == 404:
        assert posted.json()["error"]["code"] == "student_not_found"


@pytest.mark.parametrize(
    ("role", "status", "refused"),
    [
        ("anonymous", 401, None),
        ("student", 403, None),
        ("service", 403, None),
        ("teacher", 404, ["10b"]),  # another teacher's cohort, as if it did not exist
        ("other_teacher", 404, ["10a"]),
        ("admin", 200, None),
    ],
)
def test_compare_visibility(as_role, role, status, refused):
    response = as_role(role).post(COMPARE, {"cohort_ids": ["10a", "10b"]}, format="json")
    assert response.status_code == status
    if refused:
        error = response.json()["error"]
        assert (error["code"], error["details"]["cohort_ids"]) == ("cohort_not_found", refused)


def test_a_teacher_compares_its_own_cohorts(school, as_role):
    CohortFactory(
        cohort_id="10c",
        students=[school["students"]["a1"], school["students"]["a2"]],
        teachers=[school["users"]["teacher"]],
    )
    response = as_role("teacher").post(COMPARE, {"cohort_ids": ["10a", "10c"]}, format="json")
    assert response.status_code == 200
    assert [c["cohort_id"] for c in response.json()["cohorts"]] == ["10a", "10c"]


@pytest.mark.parametrize(
    ("role", "listed"),
    [("teacher", ["10a"]), ("other_teacher", ["10b"]), ("admin", ["10a", "10b"])],
)
def test_the_cohort_list_shows_the_callers_cohorts_with_sizes(as_role, school, role, listed):
    Student.objects.filter(student_id="a4").update(analytics_consent=False)
    response = as_role(role).get(COHORT_LIST)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [c["cohort_id"] for c in results] == listed
    if "10a" in listed:
        [a] = [c for c in results if c["cohort_id"] == "10a"]
        assert (a["size"], a["consenting_size"]) == (4, 3)
        expected = statistics.fmean(school["values"][s] for s in ("a1", "a2", "a3"))
        assert a["mean_mastery"] == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(
    ("role", "status"), [("anonymous", 401), ("student", 403), ("service", 403)]
)
def test_the_cohort_list_refuses_other_roles(as_role, role, status):
    assert as_role(role).get(COHORT_LIST).status_code == status


# --- invalid input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"start_date": "+1", "end_date": "+0"}, 422, "invalid_date_range"),
        ({"start_date": "-366", "end_date": "+0"}, 422, "date_range_too_long"),
        ({"start_date": "-1", "end_date": "+1"}, 422, "date_in_future"),
        ({"start_date": "+2", "end_date": "+3"}, 422, "date_in_future"),
        ({"granularity": "hourly"}, 422, "validation_error"),
        ({"start_date": "2026-02-30"}, 422, "validation_error"),
        ({"start_date": 20260101}, 422, "validation_error"),
        ({"end_date": "2026-01-01T00:00:00Z"}, 422, "validation_error"),
        ({"student_id": "no spaces"}, 422, "validation_error"),
        ({"extra": 1}, 422, "validation_error"),
        ({"topic": "missing.topic"}, 404, "topic_not_found"),
    ],
)
def test_history_refusals(as_role, school, changes, status, code):
    today = school["today"]
    for key in ("start_date", "end_date"):
        value = changes.get(key)
        if isinstance(value, str) and value[0] in "+-" and value[1:].isdigit():
            changes[key] = str(today + timedelta(days=int(value)))
    response = as_role("admin").post(HISTORY, history_body(school, **changes), format="json")
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code


def test_history_needs_its_dates(as_role, school):
    body = history_body(school)
    del body["start_date"]
    response = as_role("admin").post(HISTORY, body, format="json")
    assert response.status_code == 422
    assert "start_date" in response.json()["error"]["details"]


def test_a_range_of_exactly_366_days_ending_today_is_accepted(as_role, school):
    today = school["today"]
    body = history_body(school, start_date=str(today - timedelta(days=365)), granularity="monthly")
    response = as_role("admin").post(HISTORY, body, format="json")
    assert response.status_code == 200
    assert sum(p["samples"] for p in response.json()["series"]) == 6  # today - 5 .. today


@pytest.mark.parametrize(
    ("cohort_ids", "status", "code"),
    [
        (["10a"], 422, "too_few_cohorts"),
        ([], 422, "too_few_cohorts"),
        (["10a", "10a"], 422, "duplicate_cohort_ids"),
        ([f"c{n}" for n in range(11)], 422, "too_many_cohorts"),
        (["10a", "missing"], 404, "cohort_not_found"),
        ("10a,10b", 422, "validation_error"),
        ([10, 11], 422, "validation_error"),
        (["10a", "bad id"], 422, "validation_error"),
    ],
)
def test_compare_refusals(as_role, cohort_ids, status, code):
    response = as_role("admin").post(COMPARE, {"cohort_ids": cohort_ids}, format="json")
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code


def test_compare_with_an_unknown_topic_or_key_is_refused(as_role):
    admin = as_role("admin")
    response = admin.post(COMPARE, {"cohort_ids": ["10a", "10b"], "topic": "nope"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "topic_not_found")
    response = admin.post(COMPARE, {"cohort_ids": ["10a", "10b"], "x": 1}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_error")


def test_ten_cohorts_are_compared_in_45_pairs(as_role, school):
    for n in range(8):
        CohortFactory(cohort_id=f"extra-{n}", students=[school["students"]["a1"]])
    ids = ["10a", "10b", *(f"extra-{n}" for n in range(8))]
    response = as_role("admin").post(COMPARE, {"cohort_ids": ids}, format="json")
    assert response.status_code == 200
    pairs = response.json()["pairs"]
    assert len(pairs) == 45
    assert sum(p["reason"] is None for p in pairs) == 1  # only 10a-10b have 2+ students


# --- results -----------------------------------------------------------------------------


def test_history_through_the_api_is_the_daily_series_of_the_pipelines_snapshots(
    client_for, pinned_clock
):
    now = timezone.now()
    events = [
        event_document("quiz.submitted", student_id="s-1", topic=topic, score=score, max_score=10,
                       occurred_at=now - timedelta(days=days))
        for topic, score, days in (("t.a", 4, 8), ("t.a", 9, 3), ("t.b", 6, 5), ("t.b", 2, 1))
    ]  # fmt: skip
    ingest_all(events)
    student = Student.objects.get(student_id="s-1")
    admin = UserFactory(role=User.Role.ADMIN)
    today = now.date()

    body = client_for(admin).get(f"{HISTORY}/s-1").json()

    pure = student_daily_series(student, start=today - timedelta(days=29), end=today)
    assert [p["period_start"] for p in body["series"]] == [str(d) for d in pure.days]
    assert [p["mean"] for p in body["series"]] == pytest.approx(pure.overall, abs=1.0001e-4)
    values = [v for v in pure.overall if v is not None]
    assert body["summary"]["mean"] == pytest.approx(statistics.fmean(values), abs=1e-4)
    assert body["summary"]["max"] == pytest.approx(max(values), abs=1e-4)
    assert (body["start_date"], body["end_date"]) == (str(today - timedelta(days=29)), str(today))


def test_the_comparison_equals_an_independent_computation(as_role, school):
    """Figures and statistics are given to 4 decimals (p-values to 4 significant digits)."""
    body = as_role("admin").post(COMPARE, {"cohort_ids": ["10a", "10b"]}, format="json").json()
    a = [school["values"][s] for s in ("a1", "a2", "a3", "a4")]
    b = [school["values"][s] for s in ("b1", "b2", "b3")]
    first, second = body["cohorts"]
    assert (first["n"], second["n"]) == (4, 3)
    assert first["mean"] == round(statistics.fmean(a), 4)
    assert first["median"] == round(statistics.median(a), 4)
    assert first["std"] == round(statistics.stdev(a), 4)
    assert first["components"]["completion"] == round(statistics.fmean(a), 4)
    assert first["components"]["consistency"] == 0.0
    [pair] = body["pairs"]
    reference = stats.ttest_ind(a, b, equal_var=False)  # over the raw values
    assert (pair["cohort_a"], pair["cohort_b"]) == ("10a", "10b")
    assert pair["t"] == round(float(reference.statistic), 4)
    assert pair["df"] == round(float(reference.df), 4)
    assert pair["p_value"] == pytest.approx(reference.pvalue, rel=5e-4)
    assert pair["p_adjusted"] == pair["p_value"]  # one pair: Holm changes nothing
    assert pair["significant"] == (pair["p_value"] < 0.05)
    ci = reference.confidence_interval(0.95)
    assert pair["mean_difference"] == round(statistics.fmean(a) - statistics.fmean(b), 4)
    assert pair["mean_difference_ci"] == {"low": round(ci.low, 4), "high": round(ci.high, 4)}
    assert pair["effect_size_ci"]["low"] < pair["effect_size"] < pair["effect_size_ci"]["high"]
    assert pair["reason"] is None
    assert pair["interpretation"].startswith("Year 10 A is ahead by 0.21 (95 % CI ")


def test_small_and_uniform_cohorts_get_null_tests_with_a_reason(as_role, school):
    lone = StudentFactory(student_id="lone")
    put_record(lone, "t.x", 0.5)
    same = [StudentFactory(student_id=f"same-{n}") for n in range(3)]
    for s in same:
        put_record(s, "t.x", 0.6)
    CohortFactory(cohort_id="one", students=[lone])
    CohortFactory(cohort_id="none", students=[StudentFactory(student_id="no-records")])
    CohortFactory(cohort_id="same", students=same)
    CohortFactory(cohort_id="same-too", students=same[:2])
    ids = ["one", "none", "same", "same-too", "10a"]
    body = as_role("admin").post(COMPARE, {"cohort_ids": ids}, format="json").json()
    figures = {c["cohort_id"]: c for c in body["cohorts"]}
    assert (figures["one"]["n"], figures["one"]["mean"], figures["one"]["std"]) == (1, 0.5, None)
    assert (figures["none"]["n"], figures["none"]["mean"]) == (0, None)
    assert figures["same"]["std"] == 0.0
    pairs = {(p["cohort_a"], p["cohort_b"]): p for p in body["pairs"]}
    lonely = pairs[("one", "10a")]
    assert lonely["reason"]["code"] == "too_few_students"
    assert lonely["t"] is lonely["p_value"] is lonely["p_adjusted"] is lonely["significant"] is None
    assert lonely["mean_difference"] == pytest.approx(0.5 - figures["10a"]["mean"])
    assert pairs[("one", "none")]["mean_difference"] is None
    uniform = pairs[("same", "same-too")]
    assert uniform["reason"]["code"] == "zero_variance"
    assert uniform["mean_difference"] == 0.0
    assert pairs[("same", "10a")]["reason"] is None  # one spread is enough


def test_a_student_who_withdraws_consent_leaves_the_next_comparison(as_role, school, client_for):
    before = as_role("admin").post(COMPARE, {"cohort_ids": ["10a", "10b"]}, format="json")
    withdrawn = client_for(school["users"]["student"]).put(
        "/api/v1/compliance/student/a1/consent", {"analytics": False}, format="json"
    )
    assert withdrawn.status_code == 200
    after = as_role("admin").post(COMPARE, {"cohort_ids": ["10a", "10b"]}, format="json")
    assert before.json()["cohorts"][0]["n"] == 4
    assert after.json()["cohorts"][0]["n"] == 3
    rest = [school["values"][s] for s in ("a2", "a3", "a4")]
    assert after.json()["cohorts"][0]["mean"] == round(statistics.fmean(rest), 4)


def test_a_topic_comparison_reads_that_topics_records(as_role, school):
    put_record(school["students"]["a1"], "t.y", 0.1)
    put_record(school["students"]["a2"], "t.y", 0.3)
    put_record(school["students"]["b1"], "t.y", 0.9)
    body = (
        as_role("admin")
        .post(COMPARE, {"cohort_ids": ["10a", "10b"], "topic": "t.y"}, format="json")
        .json()
    )
    assert body["topic"] == "t.y"
    assert [(c["n"], c["mean"]) for c in body["cohorts"]] == [(2, pytest.approx(0.2)), (1, 0.9)]


# --- audit -------------------------------------------------------------------------------


def test_every_read_is_audited(as_role, school):
    as_role("teacher").post(HISTORY, history_body(school, "a2"), format="json")
    as_role("teacher").get(f"{HISTORY}/b1")
    as_role("admin").post(COMPARE, {"cohort_ids": ["10a", "10b"], "topic": "t.x"}, format="json")
    as_role("admin").get(COHORT_LIST)

    history = AuditLog.objects.filter(action="analytics.history").order_by("id")
    assert [(e.student_ref, e.outcome, e.actor_username) for e in history] == [
        ("a2", "ok", "teacher"),
        ("b1", "not_found", "teacher"),
    ]
    [compare] = AuditLog.objects.filter(action="analytics.cohorts.compare")
    assert compare.resource == f"{COMPARE}?cohort_ids=10a,10b&topic=t.x"
    assert compare.actor_username == "admin"
    assert AuditLog.objects.filter(action="analytics.cohorts.list").count() == 1
