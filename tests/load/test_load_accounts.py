"""`manage.py load_accounts`: the logins of the load test, what it writes for the locustfile,
and that those logins work through the real API (database, Redis)."""

import json
import stat
from io import StringIO

import pytest
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.core.management.base import CommandError

from mastery.models import Cohort, User
from tests.factories import TopicFactory
from tests.load.test_locustfile import run_probe

pytestmark = pytest.mark.django_db


def load_accounts(path, **options) -> dict:
    call_command("load_accounts", output=path, force=True, stdout=StringIO(), **options)
    return json.loads(path.read_text())


@pytest.fixture
def accounts(tmp_path) -> tuple:
    TopicFactory(slug="python.basics")
    TopicFactory(slug="python.loops")
    path = tmp_path / "accounts.json"
    return path, load_accounts(path, students=5, teachers=3, cohort_size=2)


def login(api_client, username: str, password: str):
    return api_client.post(
        "/api/v1/auth/token", {"username": username, "password": password}, format="json"
    )


def test_it_refuses_with_debug_off_unless_forced(tmp_path):
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("load_accounts", students=4, teachers=1, output=tmp_path / "a.json")
    assert not (tmp_path / "a.json").exists()
    assert not User.objects.filter(username__startswith="load-").exists()


def test_one_login_per_student_in_consecutive_cohorts(accounts):
    _path, document = accounts
    assert [s["student_id"] for s in document["students"]] == [f"s-00{n}" for n in range(1, 6)]
    assert sorted(document["topics"]) == ["python.basics", "python.loops"]
    assert document["cohorts"] == ["load-01", "load-02", "load-03"]
    members = {
        c.cohort_id: sorted(c.students.values_list("student_id", flat=True))
        for c in Cohort.objects.filter(cohort_id__startswith="load-")
    }
    assert members == {
        "load-01": ["s-001", "s-002"],
        "load-02": ["s-003", "s-004"],
        "load-03": ["s-005"],
    }
    for row in document["students"]:
        user = User.objects.get(username=row["username"])
        assert (user.role, user.student.student_id) == (User.Role.STUDENT, row["student_id"])
        assert not user.has_usable_password()  # students come in with their refresh token


def test_a_student_that_has_a_login_keeps_it(tmp_path, api_client):
    call_command(
        "create_account", "own-login", "--role", "student", "--student-id", "s-002",
        stdout=StringIO(),
    )  # fmt: skip
    User.objects.filter(username="own-login").update(password=make_password("kept-password"))
    document = load_accounts(tmp_path / "accounts.json", students=3, teachers=1)
    assert [s["username"] for s in document["students"]] == [
        "load-s-001",
        "own-login",
        "load-s-003",
    ]
    assert login(api_client, "own-login", "kept-password").status_code == 200
    assert User.objects.get(username="own-login").student.cohorts.get().cohort_id == "load-01"


def test_a_students_refresh_token_gives_it_its_own_mastery_once(accounts, api_client):
    _path, document = accounts
    refresh = document["students"][0]["refresh"]
    answer = api_client.post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json")
    assert answer.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {answer.json()['access']}")
    own = api_client.post("/api/v1/mastery/query", {"student_id": "s-001"}, format="json")
    assert own.status_code == 200
    assert own.json()["student_id"] == "s-001"
    other = api_client.post("/api/v1/mastery/query", {"student_id": "s-002"}, format="json")
    assert other.status_code == 404
    api_client.credentials()
    again = api_client.post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json")
    assert again.status_code == 401  # rotated: the locustfile keeps the new one


def test_teachers_teach_two_neighbouring_cohorts_and_see_their_students(accounts, api_client):
    _path, document = accounts
    assert [t["cohorts"] for t in document["teachers"]] == [
        ["load-01", "load-02"],
        ["load-02", "load-03"],
        ["load-01", "load-03"],  # the last wraps round to the first
    ]
    teacher = document["teachers"][1]
    assert teacher["students"] == ["s-003", "s-004", "s-005"]
    answer = login(api_client, teacher["username"], document["password"])
    assert answer.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {answer.json()['access']}")
    listed = api_client.get("/api/v1/students?cohort=load-03")
    assert [s["student_id"] for s in listed.json()["results"]] == ["s-005"]
    assert api_client.get("/api/v1/students?cohort=load-01").json()["results"] == []


def test_the_service_logs_in_and_the_file_is_for_its_owner_only(accounts, api_client):
    path, document = accounts
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert User.objects.get(username=document["service"]).role == User.Role.SERVICE
    assert login(api_client, document["service"], document["password"]).status_code == 200
    assert login(api_client, document["service"], "not-the-password").status_code == 401


def test_a_second_run_updates_the_same_logins_with_a_new_password(accounts, api_client):
    path, first = accounts
    logins = User.objects.filter(username__startswith="load-").count()
    second = load_accounts(path, students=5, teachers=3, cohort_size=2)
    assert User.objects.filter(username__startswith="load-").count() == logins == 5 + 3 + 1
    assert second["password"] != first["password"]
    assert login(api_client, second["service"], first["password"]).status_code == 401
    assert login(api_client, second["service"], second["password"]).status_code == 200


def test_the_locustfile_reads_what_load_accounts_writes(accounts):
    path, document = accounts
    probe = run_probe(path)
    student_start = probe["Student"]["phases"]["on_start"][0]
    assert student_start["body"] == {"refresh": document["students"][0]["refresh"]}
    teacher_start = probe["Teacher"]["phases"]["on_start"][0]
    assert teacher_start["body"] == {
        "username": document["teachers"][0]["username"],
        "password": document["password"],
    }
    compare = probe["Teacher"]["phases"]["compare"][0]
    assert compare["body"] == {"cohort_ids": document["teachers"][0]["cohorts"]}
    events = probe["Lms"]["phases"]["post_events"][0]["body"]["events"]
    assert {e["student_id"] for e in events} <= {s["student_id"] for s in document["students"]}
    assert {e["topic"] for e in events} <= set(document["topics"])
