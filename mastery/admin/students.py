"""Student pages: the list (filters, overall mastery, at risk), the student page (mastery
per topic, components, 30 days of history), and the mastery records."""

from collections.abc import Sequence
from datetime import timedelta

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from mastery import selectors
from mastery.admin.chart import history_chart
from mastery.admin.display import level_bands, overall_level, score_text
from mastery.domain.formula import COMPONENTS, LEVELS
from mastery.domain.overall import AT_RISK_BELOW
from mastery.models import MasteryRecord, Student, User
from mastery.policy import current_policy
from mastery_project.access import student_read
from mastery_project.admin_access import STAFF, AuditedReads, ChoicesFilter, RoleAccess
from mastery_project.db_router import replica_reads
from mastery_project.errors import NotFound

HISTORY_DAYS = 30


class CohortFilter(ChoicesFilter):
    """Only the caller's cohorts are offered: the default related filter would list all."""

    title = "cohort"
    parameter_name = "cohort"
    field = "cohorts__cohort_id"

    def lookups(self, request, model_admin):
        cohorts = selectors.cohorts_visible_to(request.user).order_by("cohort_id")
        return [(c.cohort_id, c.name or c.cohort_id) for c in cohorts.only("cohort_id", "name")]


class OverallLevelFilter(admin.SimpleListFilter):
    """The level of the student's overall mastery (no records yet counts as beginner)."""

    title = "level (overall)"
    parameter_name = "level"

    def lookups(self, request, model_admin):
        return [(name, name.title()) for name, _, _ in level_bands()]

    def queryset(self, request, queryset):
        for name, lower, upper in level_bands():
            if self.value() == name:
                band = Q(overall_mastery__gte=lower)
                if upper is not None:
                    band &= Q(overall_mastery__lt=upper)
                if lower == 0.0:
                    band |= Q(overall_mastery__isnull=True)
                return queryset.filter(band)
        return queryset


class AtRiskFilter(admin.SimpleListFilter):
    title = "at risk"
    parameter_name = "at_risk"

    def lookups(self, request, model_admin):
        below = AT_RISK_BELOW
        return [("yes", f"At risk (a topic below {below})"), ("no", "Not at risk")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(at_risk=True)
        if self.value() == "no":
            return queryset.filter(at_risk=False)
        return queryset


@admin.register(Student)
class StudentAdmin(RoleAccess, AuditedReads, admin.ModelAdmin):
    """Read-only for everyone: students come from events, and leave only by erasure."""

    view_roles = STAFF
    audit_list_action = "admin.student.list"
    audit_view_action = "admin.student.view"
    list_display = (
        "student_id",
        "cohort_names",
        "overall",
        "at_risk_flag",
        "weakest",
        "last_activity_at",
    )
    list_filter = (CohortFilter, OverallLevelFilter, AtRiskFilter)
    search_fields = ("student_id",)
    ordering = ("student_id",)
    fields = (
        "student_id",
        "cohort_names",
        "analytics_consent",
        "last_activity_at",
        "created_at",
        "login_username",
    )
    readonly_fields = fields
    change_form_template = "admin/mastery/student/change_form.html"

    class Media:
        css = {"all": ["mastery/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Student]:
        return selectors.students_with_mastery(request.user).prefetch_related(
            selectors.student_cohorts_prefetch(request.user)
        )

    def audit_refs(self, obj: Student) -> Sequence[str]:
        return [obj.student_id]

    @admin.display(description="cohorts")
    def cohort_names(self, obj: Student) -> str:
        return ", ".join(c.cohort_id for c in obj.visible_cohorts) or "—"

    @admin.display(description="overall mastery", ordering="overall_mastery")
    def overall(self, obj: Student) -> str:
        if obj.overall_mastery is None:
            return "—"
        return f"{obj.overall_mastery:.2f} ({overall_level(obj.overall_mastery)})"

    @admin.display(description="at risk", ordering="-at_risk")
    def at_risk_flag(self, obj: Student) -> str:
        # A red tag rather than the admin's green "yes" icon: at risk is not good news.
        return format_html('<span class="me-risk-tag">{}</span>', "at risk") if obj.at_risk else ""

    @admin.display(description="weakest topic", ordering="weakest_mastery")
    def weakest(self, obj: Student) -> str:
        if obj.weakest_topic is None:
            return "—"
        return f"{obj.weakest_topic} ({score_text(obj.weakest_mastery)})"

    @admin.display(description="login")
    def login_username(self, obj: Student) -> str:
        login = User.objects.filter(student=obj).values_list("username", flat=True).first()
        return login or "—"

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        # The refusal is audited here; a page shown is audited by `AuditedReads`.
        try:
            student = student_read(
                request,
                action=self.audit_view_action,
                pk=unquote(object_id),
                queryset=self.get_queryset(request),
                audit_found=False,
            )
        except NotFound:
            raise Http404 from None
        self.remember_object(request, unquote(object_id), student)
        context = {**(extra_context or {}), **self.student_page_context(student)}
        return super().change_view(request, object_id, form_url, context)

    def student_page_context(self, student: Student) -> dict:
        mastery = selectors.mastery_for_student(student)
        today = timezone.now().date()
        with replica_reads():  # the chart: stored snapshots, which a page view never writes
            history = selectors.student_daily_series(
                student, start=today - timedelta(days=HISTORY_DAYS - 1), end=today
            )
        weights = current_policy().weights
        return {
            "mastery": mastery,
            "at_risk_below": AT_RISK_BELOW,
            "components": COMPONENTS,
            "weights": [(name, getattr(weights, name)) for name in COMPONENTS],
            "history": history,
            "history_days": HISTORY_DAYS,
        }

    def render_change_form(self, request: HttpRequest, context, *args, **kwargs):
        # Drawn once the page's sections are known (`RoleAccess` adds them; the response is
        # rendered later): one may bring a forecast for the chart (`chart_band`: (day,
        # mastery, lower, upper) for each day after today).
        response = super().render_change_form(request, context, *args, **kwargs)
        if "history" in context:
            sections = context.get("page_sections", ())
            band = next((s["chart_band"] for s in sections if s.get("chart_band")), ())
            response.context_data["chart"] = history_chart(context["history"], band=band)
        return response


# --- mastery records ---------------------------------------------------------------


class RecordLevelFilter(ChoicesFilter):
    title = "level"
    parameter_name = "level"
    field = "level"

    def lookups(self, request, model_admin):
        return [(name, name.title()) for _, name in LEVELS]


@admin.register(MasteryRecord)
class MasteryRecordAdmin(RoleAccess, AuditedReads, admin.ModelAdmin):
    """Derived state: nobody edits it here (the pipeline and the rescore job own it)."""

    view_roles = STAFF
    audit_list_action = "admin.record.list"
    audit_view_action = "admin.record.view"
    list_display = (
        "student",
        "topic",
        "mastery",
        "level",
        *COMPONENTS,
        "updated_at",
    )
    list_select_related = ("student", "topic")
    list_filter = (RecordLevelFilter, "topic")
    search_fields = ("=student__student_id", "topic__slug")
    ordering = ("student__student_id", "topic__slug")
    fields = ("student", "topic", "mastery", "level", *COMPONENTS, "policy_hash", "updated_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[MasteryRecord]:
        return selectors.mastery_records_visible_to(request.user)
