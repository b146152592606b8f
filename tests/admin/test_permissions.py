"""Who may open which admin page (issue 6): teacher and admin by every page of every model,
logins the site refuses, and the paths by which a teacher could reach another cohort."""

import pytest
from django.test import Client
from django.urls import reverse

from compliance.models import AuditLog
from ingest.models import InboxEvent
from mastery.models import MasteryRecord, User
from tests.admin.support import School
from tests.factories import PASSWORD, TopicFactory, UserFactory

pytestmark = pytest.mark.django_db


def target(school: School, model: str, which: str):
    """The object a page is about: `own` is in the teacher's cohort, `other` is not."""
    student = school.students["s-a1" if which == "own" else "s-b1"]
    if model == "student":
        return student
    if model == "masteryrecord":
        return MasteryRecord.objects.filter(student=student).first()
    if model == "cohort":
        return school.cohorts["cohort-a" if which == "own" else "cohort-b"]
    if model == "topic":
        return school.topics["python.loops"]
    if model == "user":
        return school.users["student"]
    if model == "inboxevent":
        return InboxEvent.objects.filter(student=student).first()
    if model == "auditlog":
        return AuditLog.objects.create(action="test.entry", student_ref=student.student_id)
    raise AssertionError(model)


APP = {
    "student": "mastery",
    "masteryrecord": "mastery",
    "cohort": "mastery",
    "topic": "mastery",
    "user": "mastery",
    "inboxevent": "ingest",
    "auditlog": "compliance",
}

# (model, page, which object) -> expected status for teacher and admin.
MATRIX = {
    ("student", "changelist", None): (200, 200),
    ("student", "add", None): (403, 403),
    ("student", "change", "own"): (200, 200),
    ("student", "change", "other"): (404, 200),
    ("student", "history", "own"): (200, 200),
    ("student", "history", "other"): (404, 200),
    ("student", "delete", "own"): (403, 403),
    ("masteryrecord", "changelist", None): (200, 200),
    ("masteryrecord", "add", None): (403, 403),
    ("masteryrecord", "change", "own"): (200, 200),
    ("masteryrecord", "change", "other"): (404, 200),
    ("masteryrecord", "delete", "own"): (403, 403),
    ("cohort", "changelist", None): (200, 200),
    ("cohort", "add", None): (403, 200),
    ("cohort", "change", "own"): (200, 200),
    ("cohort", "change", "other"): (404, 200),
    ("cohort", "delete", "own"): (403, 200),
    ("topic", "changelist", None): (200, 200),
    ("topic", "add", None): (403, 200),
    ("topic", "change", "own"): (200, 200),
    ("topic", "delete", "own"): (403, 403),  # in use: deleting would cascade to records
    ("user", "changelist", None): (403, 200),
    ("user", "add", None): (403, 200),
    ("user", "change", "own"): (403, 200),
    ("user", "password", "own"): (403, 200),
    ("user", "delete", "own"): (403, 200),
    ("inboxevent", "changelist", None): (403, 200),
    ("inboxevent", "add", None): (403, 403),
    ("inboxevent", "change", "own"): (403, 200),
    ("inboxevent", "delete", "own"): (403, 403),
    ("auditlog", "changelist", None): (403, 200),
    ("auditlog", "add", None): (403, 403),
    ("auditlog", "change", "own"): (403, 200),
    ("auditlog", "delete", "own"): (403, 403),
}


def page_url(school: School, model: str, page: str, which: str | None) -> str:
    name = f"admin:{APP[model]}_{model}_{page}"
    if page == "password":  # Django's UserAdmin names this URL after auth.User
        name = "admin:auth_user_password_change"
    if which is None:
        return reverse(name)
    return reverse(name, args=[target(school, model, which).pk])


@pytest.mark.parametrize("role", ["teacher", "admin"])
@pytest.mark.parametrize(("model", "page", "which"), list(MATRIX))
def test_page_answers_by_role(school, admin_client_for, role, model, page, which):
    url = page_url(school, model, page, which)
    expected = MATRIX[(model, page, which)][0 if role == "teacher" else 1]

    response = admin_client_for(school.users[role]).get(url)

    assert response.status_code == expected, url


@pytest.mark.parametrize(
    ("model", "which"),
    [("student", "own"), ("masteryrecord", "own"), ("topic", "own"), ("cohort", "own")],
)
def test_teacher_cannot_change_by_posting(school, admin_client_for, model, which):
    url = page_url(school, model, "change", which)

    response = admin_client_for(school.users["teacher"]).post(url, {"name": "changed"})

    assert response.status_code == 403


def test_nobody_changes_a_student_or_an_audit_entry_not_even_an_admin(school, admin_client_for):
    client = admin_client_for(school.users["admin"])
    entry = target(school, "auditlog", "own")

    assert client.post(page_url(school, "student", "change", "own"), {}).status_code == 403
    assert (
        client.post(page_url(school, "auditlog", "delete", "own"), {"post": "yes"}).status_code
        == 403
    )
    assert AuditLog.objects.filter(pk=entry.pk).exists()


def test_unused_topic_may_be_deleted_by_an_admin(school, admin_client_for):
    unused = TopicFactory(slug="python.unused")
    url = reverse("admin:mastery_topic_delete", args=[unused.pk])

    response = admin_client_for(school.users["admin"]).post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not type(unused).objects.filter(pk=unused.pk).exists()


@pytest.mark.parametrize(
    ("role", "apps"),
    [("teacher", {"mastery"}), ("admin", {"mastery", "ingest", "compliance"})],
)
def test_index_lists_only_what_the_role_may_open(school, admin_client_for, role, apps):
    response = admin_client_for(school.users[role]).get(reverse("admin:index"))

    listed = {app["app_label"] for app in response.context["app_list"]}
    assert apps <= listed
    if role == "teacher":
        assert listed == {"mastery"}
        models = {m["object_name"] for m in response.context["app_list"][0]["models"]}
        assert models == {"Student", "MasteryRecord", "Cohort", "Topic"}


@pytest.mark.parametrize("app", ["ingest", "compliance"])
def test_teacher_app_pages_of_other_apps_do_not_exist(school, admin_client_for, app):
    response = admin_client_for(school.users["teacher"]).get(f"/admin/{app}/")

    assert response.status_code == 404


@pytest.mark.parametrize("role", ["teacher", "admin"])
def test_staff_roles_log_in_through_the_admin_login(school, role):
    client = Client()

    response = client.post(
        reverse("admin:login"),
        {"username": school.users[role].username, "password": PASSWORD, "next": "/admin/"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("role", ["student", "service"])
def test_student_and_service_logins_are_refused(school, role):
    client = Client()

    response = client.post(
        reverse("admin:login"),
        {"username": school.users[role].username, "password": PASSWORD, "next": "/admin/"},
    )

    assert response.status_code == 200  # the form again, with its error
    assert "staff account" in response.content.decode()
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("role", ["student", "service"])
def test_student_and_service_sessions_are_sent_to_the_login(school, admin_client_for, role):
    client = admin_client_for(school.users[role])

    for model in APP:
        response = client.get(page_url(school, model, "changelist", None))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_a_staff_flag_set_by_hand_on_a_service_login_still_opens_nothing(school, admin_client_for):
    intruder = UserFactory(username="lms-staff", role=User.Role.SERVICE, is_staff=True)
    client = admin_client_for(intruder)

    index = client.get(reverse("admin:index"))

    assert index.context["app_list"] == []
    for model in APP:
        assert client.get(page_url(school, model, "changelist", None)).status_code == 403
    assert client.get(page_url(school, "student", "change", "own")).status_code == 403


def test_anonymous_is_sent_to_the_login(school):
    response = Client().get(reverse("admin:mastery_student_changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# --- autocomplete ------------------------------------------------------------------------


def autocomplete(client: Client, app_label: str, model_name: str, field_name: str, term=""):
    return client.get(
        reverse("admin:autocomplete"),
        {"app_label": app_label, "model_name": model_name, "field_name": field_name, "term": term},
    )


@pytest.mark.parametrize(
    ("app_label", "model_name", "field_name"),
    [
        ("mastery", "cohort", "students"),
        ("mastery", "user", "student"),
        ("mastery", "masteryrecord", "student"),
        ("ingest", "inboxevent", "student"),
    ],
)
@pytest.mark.parametrize(
    ("role", "visible"),
    [("teacher", {"s-a1", "s-a2"}), ("admin", {"s-a1", "s-a2", "s-b1"})],
)
def test_student_autocomplete_offers_only_visible_students(
    school, admin_client_for, app_label, model_name, field_name, role, visible
):
    client = admin_client_for(school.users[role])

    everything = autocomplete(client, app_label, model_name, field_name, term="s-")
    probe = autocomplete(client, app_label, model_name, field_name, term="s-b1")

    assert {r["text"] for r in everything.json()["results"]} == visible
    assert {r["text"] for r in probe.json()["results"]} == visible & {"s-b1"}


def test_teacher_autocomplete_of_users_is_forbidden(school, admin_client_for):
    client = admin_client_for(school.users["teacher"])

    response = autocomplete(client, "mastery", "cohort", "teachers", term="teacher")

    assert response.status_code == 403


# --- search and filters -------------------------------------------------------------------


def listed(response) -> set[str]:
    return {str(obj) for obj in response.context["cl"].result_list}


def test_teacher_search_finds_nothing_outside_own_cohorts(school, admin_client_for):
    client = admin_client_for(school.users["teacher"])
    url = reverse("admin:mastery_student_changelist")

    assert listed(client.get(url)) == {"s-a1", "s-a2"}
    assert listed(client.get(url, {"q": "s-b1"})) == set()
    assert listed(client.get(url, {"q": "s-a"})) == {"s-a1", "s-a2"}


def test_teacher_filters_offer_own_cohorts_and_other_cohort_yields_nothing(
    school, admin_client_for
):
    client = admin_client_for(school.users["teacher"])
    url = reverse("admin:mastery_student_changelist")

    response = client.get(url)
    cohort_filter = next(f for f in response.context["cl"].filter_specs if f.title == "cohort")

    assert [value for value, _ in cohort_filter.lookup_choices] == ["cohort-a"]
    assert listed(client.get(url, {"cohort": "cohort-b"})) == set()
    assert "s-b1" not in response.content.decode()
    assert "cohort-b" not in response.content.decode()


def test_teacher_record_list_and_search_stay_in_own_cohorts(school, admin_client_for):
    client = admin_client_for(school.users["teacher"])
    url = reverse("admin:mastery_masteryrecord_changelist")

    students = {r.student.student_id for r in client.get(url).context["cl"].result_list}
    probe = client.get(url, {"q": "s-b1"}).context["cl"].result_list

    assert students == {"s-a1", "s-a2"}
    assert list(probe) == []


def test_teacher_cohort_list_shows_own_cohorts_only(school, admin_client_for):
    client = admin_client_for(school.users["teacher"])

    response = client.get(reverse("admin:mastery_cohort_changelist"))

    assert listed(response) == {"cohort-a"}
