"""An admin page whose read cannot be audited (the read-audit buffer is full: PostgreSQL
has been away) is refused as the API refuses it: 503 with Retry-After, never a 500, and
nothing of the student is shown."""

import pytest
from django.test import Client, override_settings

from compliance.services.audit import read_audit_buffer


@pytest.fixture
def full_buffer():
    with override_settings(AUDIT_READ_FLUSH_MS=3_600_000, AUDIT_READ_BUFFER_MAX=0):
        yield
    read_audit_buffer.close(timeout=2)


def test_a_student_page_that_cannot_be_audited_is_503(school, full_buffer):
    client = Client(raise_request_exception=False)
    client.force_login(school.users["admin"])
    student = school.students["s-a1"]
    response = client.get(f"/admin/mastery/student/{student.pk}/change/")
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "audit_unavailable"
    assert b"s-a1" not in response.content
