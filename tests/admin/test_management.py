"""What admins manage: topics (size, prerequisites), accounts and roles, cohorts, and the
GDPR actions on students (export download, erasure after a confirmation page)."""

import json

import pytest
from django.urls import reverse

from compliance.models import AuditLog
from ingest.pipeline import ingest_batch
from mastery.models import Cohort, MasteryRecord, Snapshot, Student, User
from tests.admin.support import BASICS, LOOPS, learning_event

pytestmark = pytest.mark.django_db

STUDENTS = reverse("admin:mastery_student_changelist")


def topic_form(topic, **changes) -> dict:
    data = {
        "name": topic.name,
        "exercises_total": topic.exercises_total or "",
        "prerequisites": [t.pk for t in topic.prerequisites.all()],
    }
    return {**data, **changes}


def test_changing_a_topic_size_rescores_records_and_history(school, admin_client_for):
    loops = school.topics[LOOPS]
    record = MasteryRecord.objects.get(student__student_id="s-a2", topic=loops)
    snapshot = Snapshot.objects.filter(student__student_id="s-a2", topic=loops).latest("day")
    url = reverse("admin:mastery_topic_change", args=[loops.pk])

    response = admin_client_for(school.users["admin"]).post(
        url, topic_form(loops, exercises_total=20)
    )

    assert response.status_code == 302
    record.refresh_from_db()
    snapshot.refresh_from_db()
    assert record.completion == pytest.approx(0.5)
    assert record.mastery == pytest.approx(0.9257 - 0.2, abs=1e-3)
    assert snapshot.completion == pytest.approx(0.5)


def test_topic_prerequisites_cannot_form_a_cycle(school, admin_client_for):
    basics, loops = school.topics[BASICS], school.topics[LOOPS]
    client = admin_client_for(school.users["admin"])
    loops_url = reverse("admin:mastery_topic_change", args=[loops.pk])
    basics_url = reverse("admin:mastery_topic_change", args=[basics.pk])

    assert client.post(loops_url, topic_form(loops, prerequisites=[basics.pk])).status_code == 302
    cycle = client.post(basics_url, topic_form(basics, prerequisites=[loops.pk]))
    itself = client.post(basics_url, topic_form(basics, prerequisites=[basics.pk]))

    assert cycle.status_code == 200
    assert "would make a cycle" in cycle.content.decode()
    assert "its own prerequisite" in itself.content.decode()
    assert list(basics.prerequisites.all()) == []


def test_topic_slug_is_fixed_once_created(school, admin_client_for):
    loops = school.topics[LOOPS]
    url = reverse("admin:mastery_topic_change", args=[loops.pk])

    admin_client_for(school.users["admin"]).post(url, topic_form(loops, slug="renamed"))

    loops.refresh_from_db()
    assert loops.slug == LOOPS


def new_account(client, username: str, role: str, student: Student | None = None):
    return client.post(
        reverse("admin:mastery_user_add"),
        {
            "username": username,
            "role": role,
            "student": student.pk if student else "",
            "usable_password": "true",
            "password1": "a-long-enough-password-42",
            "password2": "a-long-enough-password-42",
        },
    )


@pytest.mark.parametrize(
    ("role", "staff", "superuser"),
    [("teacher", True, False), ("admin", True, True), ("service", False, False)],
)
def test_new_account_gets_the_flags_of_its_role(school, admin_client_for, role, staff, superuser):
    client = admin_client_for(school.users["admin"])

    response = new_account(client, f"new-{role}", role)

    assert response.status_code == 302
    user = User.objects.get(username=f"new-{role}")
    assert (user.role, user.is_staff, user.is_superuser) == (role, staff, superuser)
    assert user.check_password("a-long-enough-password-42")


def test_changing_a_role_changes_the_flags(school, admin_client_for):
    teacher = school.users["other_teacher"]
    url = reverse("admin:mastery_user_change", args=[teacher.pk])
    form = {"username": teacher.username, "role": "admin", "student": "", "is_active": "on"}
    form |= {"first_name": "", "last_name": "", "email": ""}

    response = admin_client_for(school.users["admin"]).post(url, form)

    assert response.status_code == 302
    teacher.refresh_from_db()
    assert (teacher.role, teacher.is_staff, teacher.is_superuser) == ("admin", True, True)


def test_only_a_student_login_links_to_a_student(school, admin_client_for):
    client = admin_client_for(school.users["admin"])
    student = school.students["s-a2"]

    refused = new_account(client, "t-linked", "teacher", student)
    linked = new_account(client, "s-a2-login", "student", student)

    assert refused.status_code == 200
    assert "Only a student login is linked to a student." in refused.content.decode()
    assert linked.status_code == 302
    assert User.objects.get(username="s-a2-login").student == student


def test_admin_creates_a_cohort_with_teachers_and_students(school, admin_client_for):
    teacher = school.users["teacher"]
    students = [school.students["s-a1"], school.students["s-b1"]]

    response = admin_client_for(school.users["admin"]).post(
        reverse("admin:mastery_cohort_add"),
        {
            "cohort_id": "cohort-new",
            "name": "New",
            "teachers": [teacher.pk],
            "students": [s.pk for s in students],
        },
    )

    assert response.status_code == 302
    cohort = Cohort.objects.get(cohort_id="cohort-new")
    assert list(cohort.teachers.all()) == [teacher]
    assert set(cohort.students.all()) == set(students)


def test_only_teachers_can_be_made_a_cohorts_teachers(school, admin_client_for):
    response = admin_client_for(school.users["admin"]).post(
        reverse("admin:mastery_cohort_add"),
        {"cohort_id": "cohort-x", "name": "X", "teachers": [school.users["service"].pk]},
    )

    assert response.status_code == 200
    assert not Cohort.objects.filter(cohort_id="cohort-x").exists()


# --- GDPR actions ------------------------------------------------------------------------


def run_action(client, action: str, students, **extra):
    data = {"action": action, "_selected_action": [s.pk for s in students], "index": "0"}
    return client.post(STUDENTS, {**data, **extra})


def test_export_downloads_the_students_json(school, admin_client_for):
    admin = school.users["admin"]
    student = school.students["s-a1"]

    response = run_action(admin_client_for(admin), "export_json", [student])

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == 'attachment; filename="student-s-a1.json"'
    document = json.loads(b"".join(response.streaming_content))
    assert document["student"]["student_id"] == "s-a1"
    assert {e["event_id"] for e in document["events"]} >= set(
        student.events.values_list("event_id", flat=True)
    )
    entry = AuditLog.objects.get(action="gdpr.export")
    assert (entry.actor, entry.student_ref) == (admin, "s-a1")


def test_export_of_several_students_is_one_file(school, admin_client_for):
    students = [school.students["s-a1"], school.students["s-b1"]]

    response = run_action(admin_client_for(school.users["admin"]), "export_json", students)

    document = json.loads(b"".join(response.streaming_content))
    assert [d["student"]["student_id"] for d in document["students"]] == ["s-a1", "s-b1"]


def test_erase_asks_for_confirmation_then_erases(school, admin_client_for):
    client = admin_client_for(school.users["admin"])
    student = school.students["s-b1"]

    confirmation = run_action(client, "erase", [student])

    assert confirmation.status_code == 200
    assert b"This cannot be undone" in confirmation.content
    assert b"s-b1" in confirmation.content
    assert Student.objects.filter(student_id="s-b1").exists()

    done = client.post(
        STUDENTS, {"action": "erase", "_selected_action": [student.pk], "post": "yes"}
    )

    assert done.status_code == 302
    assert not Student.objects.filter(student_id="s-b1").exists()
    assert not MasteryRecord.objects.filter(student_id=student.pk).exists()
    assert AuditLog.objects.filter(action="gdpr.erase", actor=school.users["admin"]).exists()
    messages = [str(m) for m in client.get(STUDENTS).context["messages"]]
    assert any("Erased 1 student(s): s-b1" in m for m in messages)


def test_erased_student_later_events_are_refused(school, admin_client_for):
    client = admin_client_for(school.users["admin"])
    student = school.students["s-b1"]
    late = learning_event("s-b1", LOOPS, "session.completed", {"duration_minutes": 1}, days_ago=1)

    client.post(STUDENTS, {"action": "erase", "_selected_action": [student.pk], "post": "yes"})

    result = ingest_batch([late], source="http")
    assert result.accepted == 0


@pytest.mark.parametrize("action", ["erase", "export_json"])
def test_teachers_cannot_run_gdpr_actions(school, admin_client_for, action):
    client = admin_client_for(school.users["teacher"])
    student = school.students["s-a1"]

    response = run_action(client, action, [student], post="yes")

    assert response.status_code == 200
    assert "Content-Disposition" not in response
    assert Student.objects.filter(pk=student.pk).exists()
    assert not AuditLog.objects.filter(action__startswith="gdpr.").exists()


def test_erase_and_export_are_offered_to_admins_only(school, admin_client_for):
    admin_page = admin_client_for(school.users["admin"]).get(STUDENTS).content.decode()
    teacher_page = admin_client_for(school.users["teacher"]).get(STUDENTS).content.decode()

    assert 'value="erase"' in admin_page
    assert 'value="export_json"' in admin_page
    assert 'value="erase"' not in teacher_page
    assert 'value="delete_selected"' not in admin_page
