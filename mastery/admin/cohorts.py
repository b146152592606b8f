"""Cohort pages: admins manage cohorts; a teacher views its own, with the students' mastery."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest

from mastery.admin.display import overall_level, score_text
from mastery.domain.overall import AT_RISK_BELOW
from mastery.models import Cohort, User
from mastery.selectors import cohort_list, students_with_mastery
from mastery_project.access import students_read_audit
from mastery_project.admin_access import ADMINS, STAFF, TEACHER, RoleAccess

COHORT_PAGE_MAX_STUDENTS = 500


@admin.register(Cohort)
class CohortAdmin(RoleAccess, admin.ModelAdmin):
    """Admins manage cohorts; a teacher views its own, with the students' mastery."""

    view_roles = STAFF
    add_roles = change_roles = delete_roles = ADMINS
    list_display = ("cohort_id", "name", "student_count", "mean", "teacher_names")
    search_fields = ("cohort_id", "name")
    ordering = ("cohort_id",)
    filter_horizontal = ("teachers",)
    autocomplete_fields = ("students",)
    change_form_template = "admin/mastery/cohort/change_form.html"

    class Media:
        css = {"all": ["mastery/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Cohort]:
        return cohort_list(request.user).prefetch_related(
            Prefetch("teachers", queryset=User.objects.only("username").order_by("username"))
        )

    def get_fields(self, request: HttpRequest, obj=None):
        if self.has_change_permission(request, obj) or obj is None:
            return ("cohort_id", "name", "teachers", "students")
        # Read-only: the students are the table below the form, with their mastery.
        return ("cohort_id", "name", "teachers")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "teachers":
            kwargs["queryset"] = User.objects.filter(role=TEACHER).order_by("username")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description="students", ordering="student_count")
    def student_count(self, obj: Cohort) -> int:
        return obj.student_count

    @admin.display(description="mean mastery (consenting)", ordering="mean_mastery")
    def mean(self, obj: Cohort) -> str:
        return score_text(obj.mean_mastery)

    @admin.display(description="teachers")
    def teacher_names(self, obj: Cohort) -> str:
        return ", ".join(t.username for t in obj.teachers.all()) or "—"

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        cohort = self.get_object(request, unquote(object_id))
        if cohort is None:
            raise Http404
        students = list(
            students_with_mastery(request.user)
            .filter(cohorts=cohort)
            .order_by("overall_mastery", "student_id")[: COHORT_PAGE_MAX_STUDENTS + 1]
        )
        shown = students[:COHORT_PAGE_MAX_STUDENTS]
        context = {
            **(extra_context or {}),
            "cohort_students": [
                {
                    "student": s,
                    "overall": s.overall_mastery,
                    "level": overall_level(s.overall_mastery),
                }
                for s in shown
            ],
            "cohort_students_truncated": len(students) > COHORT_PAGE_MAX_STUDENTS,
            "at_risk_below": AT_RISK_BELOW,
        }
        response = super().change_view(request, object_id, form_url, context)
        if shown and getattr(response, "context_data", None) is not None:  # a page was shown
            students_read_audit(
                request, action="admin.cohort.view", student_refs=[s.student_id for s in shown]
            )
        return response
