"""Who may export, erase and set consent (SPEC §3: 401 / 403 / 404), and what consent does:
history kept, and a student without analytics consent is left out of cohort statistics."""

from datetime import UTC, datetime, timedelta

import pytest

from compliance.models import ConsentChange
from mastery.models import MasteryRecord, Student, User
from tests.compliance.support import BYSTANDER, TARGET, ingest, learning_event, table_row_counts
from tests.factories import CohortFactory, UserFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/compliance/student"


def client(role: str, school, client_for, api_client):
    if role == "anonymous":
        return api_client
    if role == "other_student":
        return client_for(school.logins[BYSTANDER])
    if role == "own_student":
        return client_for(school.logins[TARGET])
    if role == "own_teacher":
        return client_for(school.teacher)
    return client_for(getattr(school, role))


def call(api, endpoint: str, student_id: str):
    if endpoint == "export":
        return api.get(f"{BASE}/{student_id}/export")
    if endpoint == "consent":
        return api.put(f"{BASE}/{student_id}/consent", {"analytics": False}, format="json")
    return api.delete(f"{BASE}/{student_id}")


@pytest.mark.parametrize("endpoint", ["export", "consent"])
@pytest.mark.parametrize(
    ("role", "student_id", "status", "code"),
    [
        ("anonymous", TARGET, 401, "not_authenticated"),
        ("own_teacher", TARGET, 403, "forbidden"),
        ("service", TARGET, 403, "forbidden"),
        ("other_student", TARGET, 404, "student_not_found"),
        ("admin", "no-such-student", 404, "student_not_found"),
        ("own_student", "no-such-student", 404, "student_not_found"),
    ],
)
def test_export_and_consent_refuse_who_may_not(
    school, client_for, api_client, endpoint, role, student_id, status, code
):
    api = client(role, school, client_for, api_client)
    tables = table_row_counts()
    response = call(api, endpoint, student_id)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert Student.objects.get(student_id=TARGET).analytics_consent is True
    changed = {t for t, n in table_row_counts().items() if n != tables[t]}
    assert changed <= {"compliance_auditlog"}  # at most the refusal is audited


@pytest.mark.parametrize("endpoint", ["export", "consent"])
@pytest.mark.parametrize("role", ["own_student", "admin"])
def test_export_and_consent_are_open_to_the_student_and_an_admin(
    school, client_for, api_client, endpoint, role
):
    response = call(client(role, school, client_for, api_client), endpoint, TARGET)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("anonymous", 401),
        ("own_teacher", 403),
        ("own_student", 403),
        ("other_student", 403),
        ("service", 403),
    ],
)
def test_only_an_admin_may_erase(school, client_for, api_client, role, status):
    api = client(role, school, client_for, api_client)
    response = api.delete(f"{BASE}/{TARGET}")
    assert response.status_code == status
    assert Student.objects.filter(student_id=TARGET).exists()
    assert MasteryRecord.objects.filter(student__student_id=TARGET).count() == 3


def test_erasing_an_unknown_student_is_404(school, client_for):
    api = client_for(school.admin)
    tables = table_row_counts()
    response = api.delete(f"{BASE}/no-such-student")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "student_not_found"
    assert table_row_counts() == tables


# --- consent -------------------------------------------------------------------------------


def test_withdrawing_consent_records_who_changed_what(school, client_for):
    login = school.logins[TARGET]
    api = client_for(login)
    url = f"{BASE}/{TARGET}/consent"
    response = api.put(url, {"analytics": False}, format="json")
    assert response.status_code == 200
    assert response.json() == {"student_id": TARGET, "analytics": False, "changed": True}
    [change] = ConsentChange.objects.filter(student__student_id=TARGET)
    assert (change.actor, change.actor_username, change.old_value, change.new_value) == (
        login,
        "login-of-target",
        True,
        False,
    )
    assert Student.objects.get(student_id=TARGET).analytics_consent is False

    again = api.put(url, {"analytics": False}, format="json")
    assert again.status_code == 200
    assert again.json()["changed"] is False
    assert ConsentChange.objects.filter(student__student_id=TARGET).count() == 1

    back = client_for(school.admin).put(url, {"analytics": True}, format="json")
    assert back.json()["changed"] is True
    history = list(
        ConsentChange.objects.filter(student__student_id=TARGET).values_list(
            "actor_username", "old_value", "new_value"
        )
    )
    assert history == [("login-of-target", True, False), ("dpo-admin", False, True)]


@pytest.mark.parametrize(
    "body",
    [
        {"analytics": "false"},
        {"analytics": 0},
        {"analytics": 1},
        {"analytics": None},
        {},
        {"analytics": False, "reason": "spam"},
        [False],
        "false",
    ],
    ids=["string", "zero", "one", "null", "missing", "extra-field", "list", "bare-string"],
)
def test_invalid_consent_bodies_are_422_and_change_nothing(school, client_for, body):
    api = client_for(school.logins[TARGET])
    response = api.put(f"{BASE}/{TARGET}/consent", body, format="json")
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "validation_error"
    assert Student.objects.get(student_id=TARGET).analytics_consent is True
    assert not ConsentChange.objects.exists()


def test_malformed_json_consent_is_400(school, client_for):
    api = client_for(school.logins[TARGET])
    response = api.put(
        f"{BASE}/{TARGET}/consent", data=b'{"analytics": fal', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_a_student_without_consent_is_left_out_of_cohort_statistics(db, client_for):
    """Three students with two topics each; the third withdraws consent."""
    now = datetime.now(UTC) - timedelta(hours=1)
    scores = {"c-anna": (9, 7), "c-ben": (5, 3), "c-cleo": (1, 0)}
    ingest(
        [
            learning_event(sid, topic, now, kind="quiz")
            | {"payload": {"quiz_id": "q", "score": score, "max_score": 10}}
            for sid, pair in scores.items()
            for topic, score in zip(("algebra.basics", "python.loops"), pair, strict=True)
        ]
    )
    teacher = UserFactory(username="stats-teacher", role=User.Role.TEACHER)
    cohort = CohortFactory(
        cohort_id="stats-cohort",
        students=list(Student.objects.filter(student_id__in=scores)),
        teachers=[teacher],
    )
    cleo = UserFactory(
        username="cleo", role=User.Role.STUDENT, student=Student.objects.get(student_id="c-cleo")
    )
    records = {
        sid: list(
            MasteryRecord.objects.filter(student__student_id=sid).values_list("mastery", flat=True)
        )
        for sid in scores
    }
    assert all(len(r) == 2 for r in records.values())
    everyone = sum(sum(r) for r in records.values()) / 6
    consenting = (sum(records["c-anna"]) + sum(records["c-ben"])) / 4

    def mean_mastery() -> float:
        response = client_for(teacher).get("/api/v1/cohorts/")
        assert response.status_code == 200
        [item] = [c for c in response.json()["results"] if c["cohort_id"] == cohort.cohort_id]
        assert item["student_count"] == 3
        return item["mean_mastery"]

    assert mean_mastery() == pytest.approx(everyone, abs=1e-4)
    response = client_for(cleo).put(f"{BASE}/c-cleo/consent", {"analytics": False}, format="json")
    assert response.status_code == 200
    assert mean_mastery() == pytest.approx(consenting, abs=1e-4)
    assert abs(consenting - everyone) > 0.01
