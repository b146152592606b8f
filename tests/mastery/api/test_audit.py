"""Every read of a student's data through the API leaves an audit entry (SPEC §3)."""

import pytest
from django.test import override_settings

from compliance.models import AuditLog
from tests.factories import UserFactory
from tests.mastery.api.support import VISIBLE_STUDENTS

pytestmark = pytest.mark.django_db

QUERY = "/api/v1/mastery/query"
REQUEST_ID = "req-7f3a.audit"


def test_a_mastery_query_writes_one_audit_entry(world, client_for):
    teacher = world.users["teacher"]
    response = client_for(teacher).post(
        QUERY, {"student_id": "s-a2"}, format="json", HTTP_X_REQUEST_ID=REQUEST_ID
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == REQUEST_ID
    entry = AuditLog.objects.get()
    assert entry.actor == teacher
    assert entry.actor_username == "teacher-a"
    assert entry.actor_role == "teacher"
    assert entry.action == "mastery.query"
    assert entry.student_ref == "s-a2"
    assert entry.ip == "127.0.0.1"
    assert entry.correlation_id == REQUEST_ID
    assert entry.outcome == "ok"


def test_a_query_for_an_invisible_student_is_audited_as_not_found(world, client_for):
    response = client_for(world.users["student"]).post(
        QUERY, {"student_id": "s-b1"}, format="json", HTTP_X_REQUEST_ID=REQUEST_ID
    )
    assert response.status_code == 404
    entry = AuditLog.objects.get()
    assert (entry.action, entry.student_ref, entry.outcome) == (
        "mastery.query",
        "s-b1",
        "not_found",
    )
    assert entry.actor == world.users["student"]
    assert entry.actor_role == "student"
    assert entry.correlation_id == REQUEST_ID


def test_a_query_for_a_nonexistent_student_is_audited_as_not_found(world, client_for):
    client_for(world.users["admin"]).post(QUERY, {"student_id": "s-none"}, format="json")
    entry = AuditLog.objects.get()
    assert (entry.student_ref, entry.outcome) == ("s-none", "not_found")


def test_an_unknown_topic_after_a_visible_student_still_audits_the_read(world, client_for):
    client_for(world.users["admin"]).post(
        QUERY, {"student_id": "s-a1", "topic": "no.such"}, format="json"
    )
    assert AuditLog.objects.filter(action="mastery.query", student_ref="s-a1").count() == 1


def test_an_invalid_query_writes_no_audit_entry(world, client_for):
    client_for(world.users["admin"]).post(QUERY, {"student_id": "bad id"}, format="json")
    assert AuditLog.objects.count() == 0


def test_without_a_request_id_a_fresh_correlation_id_is_recorded(world, client_for):
    response = client_for(world.users["admin"]).post(QUERY, {"student_id": "s-a1"}, format="json")
    entry = AuditLog.objects.get()
    assert entry.correlation_id == response["X-Request-ID"]
    assert len(entry.correlation_id) >= 16


@pytest.mark.parametrize("role", ["student", "teacher", "admin"])
def test_the_student_list_writes_one_entry_per_listed_student(world, client_for, role):
    response = client_for(world.users[role]).get("/api/v1/students/", HTTP_X_REQUEST_ID=REQUEST_ID)
    assert response.status_code == 200
    entries = AuditLog.objects.all()
    assert sorted(e.student_ref for e in entries) == sorted(VISIBLE_STUDENTS[role])
    assert {(e.action, e.outcome, e.actor_id, e.correlation_id) for e in entries} == {
        ("student.list", "ok", world.users[role].pk, REQUEST_ID)
    }


def test_an_empty_student_list_writes_no_entry(world, client_for):
    client_for(UserFactory(username="lonely", role="teacher")).get("/api/v1/students/")
    assert AuditLog.objects.count() == 0


def test_a_student_detail_read_is_audited(world, client_for):
    client_for(world.users["teacher"]).get("/api/v1/students/s-a1/")
    client_for(world.users["teacher"]).get("/api/v1/students/s-b1/")
    assert sorted(AuditLog.objects.values_list("action", "student_ref", "outcome")) == [
        ("student.retrieve", "s-a1", "ok"),
        ("student.retrieve", "s-b1", "not_found"),
    ]


def test_calculate_writes_no_audit_entry(world, client_for):
    client_for(world.users["admin"]).post(
        "/api/v1/mastery/calculate",
        {"completion": 1, "quiz": 1, "quality": 1, "consistency": 1},
        format="json",
    )
    assert AuditLog.objects.count() == 0


def test_topics_and_cohorts_reads_write_no_student_audit_entry(world, client_for):
    client = client_for(world.users["admin"])
    client.get("/api/v1/topics/")
    client.get("/api/v1/topics/python.loops/")
    assert AuditLog.objects.count() == 0


def test_an_anonymous_request_writes_no_audit_entry(world, api_client):
    api_client.post(QUERY, {"student_id": "s-a1"}, format="json")
    assert AuditLog.objects.count() == 0


FORWARDED = "1.2.3.4, 10.0.0.1"


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected_ip"),
    [
        (0, FORWARDED, "127.0.0.1"),  # the default trusts no proxy: the header is ignored
        (1, FORWARDED, "10.0.0.1"),  # one proxy: the address it appended, rightmost
        (2, FORWARDED, "1.2.3.4"),  # two proxies: the second from the right
        (3, FORWARDED, "127.0.0.1"),  # fewer addresses than proxies: the peer address
        (1, "not-an-ip", None),
        (1, "", "127.0.0.1"),
        (1, "1.2.3.4, 2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_audited_ip_trusts_x_forwarded_for_only_for_the_configured_hops(
    world, client_for, hops, forwarded, expected_ip
):
    with override_settings(TRUSTED_PROXY_COUNT=hops):
        response = client_for(world.users["admin"]).post(
            QUERY, {"student_id": "s-a1"}, format="json", HTTP_X_FORWARDED_FOR=forwarded
        )
    assert response.status_code == 200
    assert AuditLog.objects.get().ip == expected_ip


def test_a_spoofed_x_forwarded_for_is_ignored_by_default(world, client_for):
    client_for(world.users["admin"]).post(
        QUERY, {"student_id": "s-a1"}, format="json", HTTP_X_FORWARDED_FOR="6.6.6.6"
    )
    assert AuditLog.objects.get().ip == "127.0.0.1"
