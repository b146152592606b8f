"""Malformed filter values, ids and selections answer cleanly: never a 500."""

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from compliance.models import AuditLog

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url_name", "params"),
    [
        ("admin:compliance_auditlog_changelist", {"actor": "abc"}),
        ("admin:compliance_auditlog_changelist", {"action": "no.such.action"}),
        ("admin:compliance_auditlog_changelist", {"actor_role": "janitor"}),
        ("admin:ingest_inboxevent_changelist", {"event_type": "video.watched"}),
        ("admin:mastery_masteryrecord_changelist", {"level": "expert"}),
        ("admin:mastery_student_changelist", {"cohort": "no-such-cohort"}),
    ],
)
def test_a_filter_value_that_was_not_offered_matches_nothing(
    school, admin_client_for, url_name, params
):
    response = admin_client_for(school.users["admin"]).get(reverse(url_name), params)
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


@pytest.mark.parametrize(
    "url",
    [
        "/admin/compliance/auditlog/?outcome=a%00b",
        "/admin/ingest/inboxevent/?source=%00",
        "/admin/mastery/user/?role=%00",
        "/admin/autocomplete/?term=%00&app_label=mastery&model_name=cohort&field_name=students",
        "/admin/mastery/student/%00/change/",
        "/api/v1/students/?cohort=%00",
    ],
)
def test_a_nul_character_in_the_path_or_query_is_400(school, admin_client_for, url):
    audit_rows = AuditLog.objects.count()
    response = admin_client_for(school.users["admin"]).get(url)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert AuditLog.objects.count() == audit_rows


def test_an_action_on_a_selection_that_is_not_ids_is_refused_with_a_message(
    school, admin_client_for
):
    response = admin_client_for(school.users["admin"]).post(
        reverse("admin:mastery_student_changelist"),
        {"action": "export_json", helpers.ACTION_CHECKBOX_NAME: ["abc"]},
        follow=True,
    )
    assert response.status_code == 200
    assert "That selection is not valid." in response.content.decode()
