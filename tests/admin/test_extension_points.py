"""Other apps add actions, list filters and page sections to an app's admin without
importing it (`mastery_project.admin_access`): what they register shows, for the right
model only, and a section that declines (None) is left out."""

from copy import deepcopy

import pytest
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.urls import reverse

from mastery.models import Cohort, Student
from mastery_project import admin_access

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry(monkeypatch):
    """The extension registries, restored after the test."""
    for name in ("_ACTIONS", "_LIST_FILTERS", "_SECTIONS"):
        monkeypatch.setattr(admin_access, name, deepcopy(getattr(admin_access, name)))
    return admin_access


@pytest.fixture
def section_template(tmp_path):
    (tmp_path / "test_section.html").write_text(
        '<section id="test-section">{{ section.greeting }} {{ original.pk }}</section>'
    )
    templates = deepcopy(settings.TEMPLATES)
    templates[0]["DIRS"] = [tmp_path, *templates[0]["DIRS"]]
    with override_settings(TEMPLATES=templates):
        yield "test_section.html"


def test_a_registered_section_shows_on_that_models_page_only(
    registry, section_template, school, admin_client_for
):
    student = school.students["s-a1"]
    registry.admin_section_for(Student, template=section_template)(
        lambda request, obj: {"greeting": f"hello {request.user.username}"}
    )
    client = admin_client_for(school.users["teacher"])

    page = client.get(reverse("admin:mastery_student_change", args=[student.pk])).content.decode()
    cohort = client.get(
        reverse("admin:mastery_cohort_change", args=[school.cohorts["cohort-a"].pk])
    ).content.decode()

    assert (
        f'<section id="test-section">hello {school.users["teacher"].username} {student.pk}' in page
    )
    assert "test-section" not in cohort


def test_a_section_that_returns_none_is_left_out(
    registry, section_template, school, admin_client_for
):
    registry.admin_section_for(Cohort, template=section_template)(lambda request, obj: None)
    client = admin_client_for(school.users["teacher"])
    page = client.get(
        reverse("admin:mastery_cohort_change", args=[school.cohorts["cohort-a"].pk])
    ).content.decode()
    assert "test-section" not in page


def test_registered_actions_and_list_filters_join_the_admins_own(registry, school, rf):
    class Initial(admin.SimpleListFilter):
        title = "initial"
        parameter_name = "initial"

        def lookups(self, request, model_admin):
            return [("a", "A")]

        def queryset(self, request, queryset):
            return queryset

    @admin.action(description="Wave", permissions=["view"])
    def wave(modeladmin, request, queryset):
        return None

    registry.admin_list_filter_for(Student)(Initial)
    registry.admin_action_for(Student)(wave)
    request = rf.get("/")
    request.user = school.users["admin"]
    students, cohorts = admin.site._registry[Student], admin.site._registry[Cohort]

    assert students.get_list_filter(request)[-1] is Initial
    assert Initial not in cohorts.get_list_filter(request)
    assert "wave" in students.get_actions(request)
    assert "wave" not in cohorts.get_actions(request)
    assert {"export_json", "erase"} <= set(students.get_actions(request))  # compliance's


def test_an_added_action_must_name_its_permission(registry):
    @admin.action(description="Open to all")
    def open_to_all(modeladmin, request, queryset):
        return None

    with pytest.raises(ImproperlyConfigured, match="names no permission"):
        registry.admin_action_for(Student)(open_to_all)


def test_an_admin_that_sets_actions_itself_is_refused():
    with pytest.raises(ImproperlyConfigured, match="would hide the registered ones"):

        class Hiding(admin_access.RoleAccess, admin.ModelAdmin):
            actions = ("delete_selected",)


def test_sections_are_not_built_for_a_page_the_caller_may_not_see(
    registry, section_template, school, admin_client_for
):
    built = []
    registry.admin_section_for(Student, template=section_template)(
        lambda request, obj: built.append(obj.pk) or {"greeting": "hi"}
    )
    other = school.students["s-b1"]  # another teacher's student
    client = admin_client_for(school.users["teacher"])
    response = client.get(reverse("admin:mastery_student_change", args=[other.pk]))
    assert response.status_code == 404
    assert built == []
