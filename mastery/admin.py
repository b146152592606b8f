"""The admin site for teachers and admins (issue 6).

Roles, not permission rows, decide what a login may do here (`RoleAccess`): a teacher views
students, mastery records, cohorts and topics, and only those of its own cohorts; an admin
manages topics, cohorts and accounts, browses events and the audit log and runs the GDPR
actions. What a caller may *see* always comes from `mastery.selectors`' visibility rule.
Reads of student data are audited like the API's.
"""

from collections import Counter
from collections.abc import Iterable, Sequence

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import content_disposition_header

from compliance.services import erasure as compliance_erasure
from compliance.services import export as compliance_export
from compliance.services.audit import audit_log_write
from mastery import admin_selectors
from mastery.domain.formula import COMPONENTS, LEVELS, level_for
from mastery.models import Cohort, MasteryRecord, Student, Topic, User
from mastery.policy import current_policy
from mastery.selectors import (
    cohort_list,
    cohorts_visible_to,
    mastery_for_student,
    topic_exercises_total,
    topic_list,
)
from mastery.services import account_create_or_update, topic_sizes_rescore
from mastery_project.errors import NotFound

ADMIN = User.Role.ADMIN
TEACHER = User.Role.TEACHER
STAFF = frozenset({ADMIN, TEACHER})
ADMINS = frozenset({ADMIN})
NOBODY: frozenset[str] = frozenset()
HISTORY_DAYS = 30
EXPORT_MAX_STUDENTS = 50
COHORT_PAGE_MAX_STUDENTS = 500


def site_role(request: HttpRequest) -> str | None:
    """The caller's role on the admin site, or None for anyone it must refuse.

    The login form already refuses non-staff users; a staff flag set by hand on a student
    or service login still gets nothing here.
    """
    user = request.user
    role = getattr(user, "role", None)
    if not (user.is_active and user.is_staff) or role not in STAFF:
        return None
    return role


class RoleAccess:
    """Model-admin permissions from the caller's role (SPEC §3), never from permission rows.

    A request for an object outside the caller's queryset answers 404, as the API does,
    where the admin would redirect to its index with a "does not exist" message.
    """

    view_roles: frozenset[str] = ADMINS
    add_roles: frozenset[str] = NOBODY
    change_roles: frozenset[str] = NOBODY
    delete_roles: frozenset[str] = NOBODY

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return site_role(request) in self.view_roles or self.has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return site_role(request) in self.add_roles

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return site_role(request) in self.change_roles

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return site_role(request) in self.delete_roles

    def get_object(self, request: HttpRequest, object_id, from_field=None):
        """Cached per request: the change views read the object before Django does."""
        cache = request.__dict__.setdefault("_admin_objects", {})
        key = (self.model, object_id, from_field)
        if key not in cache:
            cache[key] = super().get_object(request, object_id, from_field)
        return cache[key]

    def response_action(self, request: HttpRequest, queryset: QuerySet):
        """A selection that is not a list of ids is refused with a message, not a 500."""
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                self.model._meta.pk.to_python(value)
            except ValidationError:
                self.message_user(request, "That selection is not valid.", messages.ERROR)
                return None
        return super().response_action(request, queryset)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # The one hook the change, delete and history views share for a missing object
        # (private, stable since Django 2.1).
        raise Http404


class AuditedReads:
    """Writes one audit entry per page that shows student data: the list (one row per
    student listed, in one INSERT) and the detail page."""

    audit_list_action: str | None = None
    audit_view_action: str | None = None

    def audit_refs(self, obj) -> Sequence[str]:
        return [obj.student.student_id]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if self.audit_list_action and changelist is not None:
            # Evaluates the page's queryset once; the template then reuses its result cache.
            refs = dict.fromkeys(r for obj in changelist.result_list for r in self.audit_refs(obj))
            if refs:
                audit_log_write(
                    request=request,
                    action=self.audit_list_action,
                    student_refs=list(refs),
                    resource=request.get_full_path(),
                )
        return response

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        obj = (getattr(response, "context_data", None) or {}).get("original")
        if self.audit_view_action and obj is not None:
            audit_log_write(
                request=request,
                action=self.audit_view_action,
                student_refs=list(self.audit_refs(obj)),
                resource=request.path,
            )
        return response


# --- students --------------------------------------------------------------------------


class ChoicesFilter(admin.SimpleListFilter):
    """A list filter over a fixed field that applies only a value it offered: anything else
    (another teacher's cohort, a malformed id) matches nothing, and is never a 500."""

    field: str

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if self.value() in {str(value) for value, _ in self.lookup_choices}:
            return queryset.filter(**{self.field: self.value()})
        return queryset.none()


class CohortFilter(ChoicesFilter):
    """Only the caller's cohorts are offered: the default related filter would list all."""

    title = "cohort"
    parameter_name = "cohort"
    field = "cohorts__cohort_id"

    def lookups(self, request, model_admin):
        cohorts = cohorts_visible_to(request.user).order_by("cohort_id")
        return [(c.cohort_id, c.name or c.cohort_id) for c in cohorts.only("cohort_id", "name")]


def _level_bands() -> list[tuple[str, float, float | None]]:
    """(name, lower, upper or None) of each level, ascending (SPEC §2.1)."""
    uppers = [lower for lower, _ in LEVELS[1:]] + [None]
    return [(name, lower, upper) for (lower, name), upper in zip(LEVELS, uppers, strict=True)]


class OverallLevelFilter(admin.SimpleListFilter):
    """The level of the student's overall mastery (no records yet counts as beginner)."""

    title = "level (overall)"
    parameter_name = "level"

    def lookups(self, request, model_admin):
        return [(name, name.title()) for name, _, _ in _level_bands()]

    def queryset(self, request, queryset):
        for name, lower, upper in _level_bands():
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
        below = admin_selectors.AT_RISK_BELOW
        return [("yes", f"At risk (a topic below {below})"), ("no", "Not at risk")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(at_risk=True)
        if self.value() == "no":
            return queryset.filter(at_risk=False)
        return queryset


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _overall_level(value: float | None) -> str | None:
    """Level of a mean of scores (a float sum may land a hair above 1)."""
    return None if value is None else level_for(min(1.0, value))


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
    actions = ("export_json", "erase")
    change_form_template = "admin/mastery/student/change_form.html"

    class Media:
        css = {"all": ["mastery/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Student]:
        return admin_selectors.students_for_admin(request.user).prefetch_related(
            admin_selectors.student_cohorts_prefetch(request.user)
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
        return f"{obj.overall_mastery:.2f} ({_overall_level(obj.overall_mastery)})"

    @admin.display(description="at risk", ordering="-at_risk")
    def at_risk_flag(self, obj: Student) -> str:
        # A red tag rather than the admin's green "yes" icon: at risk is not good news.
        return format_html('<span class="me-risk-tag">{}</span>', "at risk") if obj.at_risk else ""

    @admin.display(description="weakest topic", ordering="weakest_mastery")
    def weakest(self, obj: Student) -> str:
        if obj.weakest_topic is None:
            return "—"
        return f"{obj.weakest_topic} ({_score(obj.weakest_mastery)})"

    @admin.display(description="login")
    def login_username(self, obj: Student) -> str:
        login = User.objects.filter(student=obj).values_list("username", flat=True).first()
        return login or "—"

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        student = self.get_object(request, unquote(object_id))
        if student is None:
            audit_log_write(
                request=request,
                action=self.audit_view_action,
                student_refs=[admin_selectors.student_id_of(unquote(object_id))],
                resource=request.path,
                outcome="not_found",
            )
            raise Http404
        context = {**(extra_context or {}), **self.student_page_context(student)}
        return super().change_view(request, object_id, form_url, context)

    def student_page_context(self, student: Student) -> dict:
        mastery = mastery_for_student(student)
        history = admin_selectors.student_mastery_history(
            student, today=timezone.now().date(), days=HISTORY_DAYS
        )
        weights = current_policy().weights
        return {
            "mastery": mastery,
            "at_risk_below": admin_selectors.AT_RISK_BELOW,
            "components": COMPONENTS,
            "weights": [(name, getattr(weights, name)) for name in COMPONENTS],
            "chart": history_chart(history),
            "history_days": HISTORY_DAYS,
        }

    # GDPR actions: the same services as the API and the commands.

    def has_gdpr_permission(self, request: HttpRequest) -> bool:
        return site_role(request) == ADMIN

    @admin.action(description="Export (JSON)", permissions=["gdpr"])
    def export_json(self, request: HttpRequest, queryset: QuerySet[Student]):
        students = list(queryset[: EXPORT_MAX_STUDENTS + 1])
        if len(students) > EXPORT_MAX_STUDENTS:
            self.message_user(
                request,
                f"Export at most {EXPORT_MAX_STUDENTS} students at a time.",
                messages.ERROR,
            )
            return None
        response = StreamingHttpResponse(
            self._export_documents(request, students), content_type="application/json"
        )
        filename = (
            f"student-{students[0].student_id}.json"
            if len(students) == 1
            else "students-export.json"
        )
        response["Content-Disposition"] = content_disposition_header(True, filename)
        return response

    @staticmethod
    def _export_documents(request: HttpRequest, students: list[Student]):
        """The API's streamed document for one student; `{"students": [...]}` for several."""
        if len(students) == 1:
            yield from compliance_export.student_export_stream(
                student=students[0], actor=request.user, request=request
            )
            return
        yield b'{"students":['
        for position, student in enumerate(students):
            if position:
                yield b","
            yield from compliance_export.student_export_stream(
                student=student, actor=request.user, request=request
            )
        yield b"]}"

    @admin.action(description="Erase (GDPR)…", permissions=["gdpr"])
    def erase(self, request: HttpRequest, queryset: QuerySet[Student]):
        """Asks first; on the confirmation's POST erases each student in its own transaction."""
        students = list(queryset.order_by("student_id"))
        if request.POST.get("post") != "yes":
            return TemplateResponse(
                request,
                "admin/mastery/student/erase_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Erase students?",
                    "subtitle": None,
                    "opts": self.opts,
                    "students": students,
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "action_name": "erase",
                    "media": self.media,
                },
            )
        erased, totals = [], Counter()
        for student in students:
            try:
                counts = compliance_erasure.student_erase(
                    student_id=student.student_id, actor=request.user, request=request
                )
            except NotFound:
                continue  # erased meanwhile, e.g. by a concurrent request
            erased.append(student.student_id)
            totals.update({k: v for k, v in counts.items() if isinstance(v, int)})
        rows = ", ".join(f"{name.replace('_', ' ')}: {n}" for name, n in sorted(totals.items()))
        self.message_user(
            request,
            f"Erased {len(erased)} student(s): {', '.join(erased) or 'none'}"
            + (f" ({rows})." if rows else "."),
            messages.SUCCESS,
        )
        return None


# --- the history chart (server-rendered SVG, no script) --------------------------------

CHART_WIDTH, CHART_HEIGHT = 800, 250
PLOT_LEFT, PLOT_TOP, PLOT_RIGHT, PLOT_BOTTOM = 40, 12, 580, 222
PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4")


def _x(index: int, count: int) -> float:
    if count <= 1:
        return float(PLOT_LEFT)
    return round(PLOT_LEFT + index * (PLOT_RIGHT - PLOT_LEFT) / (count - 1), 1)


def _y(value: float) -> float:
    return round(PLOT_BOTTOM - min(1.0, max(0.0, value)) * (PLOT_BOTTOM - PLOT_TOP), 1)


def _segments(values: Sequence[float | None]) -> list[str]:
    """SVG `points` strings, one per run of days that have a value."""
    runs, current = [], []
    for i, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(f"{_x(i, len(values))},{_y(value)}")
    if current:
        runs.append(current)
    return [" ".join(run) for run in runs]


def history_chart(history: admin_selectors.MasteryHistory) -> dict:
    """Geometry of the history chart for the template: level guides, weekly date ticks,
    one thin line per topic and the overall mean as a thick line with dated points."""
    count = len(history.days)
    guides = [
        {"y": _y(lower), "label": f"{lower:.1f}", "name": name}
        for lower, name in LEVELS
        if lower > 0.0
    ]
    axis = [{"y": _y(v), "label": f"{v:.1f}"} for v in (0.0, 1.0)]
    ticks = [
        {"x": _x(i, count), "label": f"{history.days[i]:%b} {history.days[i].day}"}
        for i in range(count - 1, -1, -7)
    ]
    topics = [
        {"label": slug, "color": PALETTE[n % len(PALETTE)], "segments": _segments(values)}
        for n, (slug, values) in enumerate(history.topics.items())
    ]
    legend = [
        {"label": "overall", "color": "currentColor", "y": PLOT_TOP + 8, "bold": True},
        *(
            {"label": t["label"], "color": t["color"], "y": PLOT_TOP + 8 + 16 * (n + 1)}
            for n, t in enumerate(topics[:12])
        ),
    ]
    dots = [
        {
            "x": _x(i, count),
            "y": _y(value),
            "title": f"{history.days[i]:%Y-%m-%d}: {value:.2f}",
        }
        for i, value in enumerate(history.overall)
        if value is not None
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": PLOT_LEFT,
        "right": PLOT_RIGHT,
        "top": PLOT_TOP,
        "bottom": PLOT_BOTTOM,
        "legend_x": PLOT_RIGHT + 84,
        "guides": guides,
        "axis": axis,
        "ticks": ticks,
        "topics": topics,
        "overall": _segments(history.overall),
        "dots": dots,
        "legend": legend,
        "empty": not dots,
        "start": history.days[0] if history.days else None,
        "end": history.days[-1] if history.days else None,
    }


# --- mastery records -------------------------------------------------------------------


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
        return admin_selectors.mastery_records_visible_to(request.user)


# --- cohorts ---------------------------------------------------------------------------


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
        return _score(obj.mean_mastery)

    @admin.display(description="teachers")
    def teacher_names(self, obj: Cohort) -> str:
        return ", ".join(t.username for t in obj.teachers.all()) or "—"

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        cohort = self.get_object(request, unquote(object_id))
        if cohort is None:
            raise Http404
        students = list(
            admin_selectors.students_for_admin(request.user)
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
                    "level": _overall_level(s.overall_mastery),
                }
                for s in shown
            ],
            "cohort_students_truncated": len(students) > COHORT_PAGE_MAX_STUDENTS,
            "at_risk_below": admin_selectors.AT_RISK_BELOW,
        }
        response = super().change_view(request, object_id, form_url, context)
        if shown and getattr(response, "context_data", None) is not None:  # a page was shown
            audit_log_write(
                request=request,
                action="admin.cohort.view",
                student_refs=[s.student_id for s in shown],
                resource=request.path,
            )
        return response


# --- topics ----------------------------------------------------------------------------


class TopicForm(forms.ModelForm):
    class Meta:
        model = Topic
        fields = ("slug", "name", "exercises_total", "prerequisites")

    def clean_prerequisites(self):
        chosen = self.cleaned_data["prerequisites"]
        own = self.instance.pk
        if own is None:
            return chosen  # nothing can depend on a topic being created
        if any(topic.pk == own for topic in chosen):
            raise ValidationError("A topic cannot be its own prerequisite.")
        graph = admin_selectors.topic_prerequisite_graph()
        stack, seen = [topic.pk for topic in chosen], set()
        while stack:
            pk = stack.pop()
            if pk == own:
                raise ValidationError("These prerequisites would make a cycle.")
            if pk not in seen:
                seen.add(pk)
                stack.extend(graph.get(pk, ()))
        return chosen


@admin.register(Topic)
class TopicAdmin(RoleAccess, admin.ModelAdmin):
    view_roles = STAFF
    add_roles = change_roles = delete_roles = ADMINS
    form = TopicForm
    list_display = ("slug", "name", "exercises_total", "effective_total", "prerequisite_slugs")
    search_fields = ("slug", "name")
    ordering = ("slug",)
    filter_horizontal = ("prerequisites",)
    readonly_fields = ("effective_total", "reported_exercises_total", "created_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Topic]:
        return topic_list()

    def get_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return ("slug", "name", "exercises_total", "prerequisites")
        return (
            "slug",
            "name",
            "exercises_total",
            "reported_exercises_total",
            "effective_total",
            "prerequisites",
            "created_at",
        )

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # Events name topics by slug: renaming one would split its history in two.
        return (*self.readonly_fields, "slug") if obj is not None else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Deleting a topic cascades to records, snapshots and events: only unused ones go.
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or not admin_selectors.topic_in_use(obj)

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it would skip the in-use check
        return actions

    @admin.display(description="effective size")
    def effective_total(self, obj: Topic) -> int:
        return topic_exercises_total(obj)

    @admin.display(description="prerequisites")
    def prerequisite_slugs(self, obj: Topic) -> str:
        return ", ".join(t.slug for t in obj.prerequisites.all()) or "—"

    def save_model(self, request: HttpRequest, obj: Topic, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "exercises_total" in form.changed_data:
            records, snapshots = topic_sizes_rescore(topic_pks=[obj.pk])
            self.message_user(
                request, f"Rescored {records} mastery records and {snapshots} snapshots."
            )


# --- accounts --------------------------------------------------------------------------


class RoleLinkCheck:
    def clean(self):
        cleaned = super().clean()
        if cleaned.get("student") is not None and cleaned.get("role") != User.Role.STUDENT:
            self.add_error("student", "Only a student login is linked to a student.")
        return cleaned


class AccountChangeForm(RoleLinkCheck, UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User


class AccountCreationForm(RoleLinkCheck, AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "role", "student")


@admin.register(User)
class AccountAdmin(RoleAccess, DjangoUserAdmin):
    """Logins and their roles. The staff and superuser flags follow the role (through the
    same service as `create_account`); no groups or per-user permissions: roles decide."""

    view_roles = add_roles = change_roles = delete_roles = ADMINS
    form = AccountChangeForm
    add_form = AccountCreationForm
    list_display = ("username", "role", "student", "is_active", "last_login")
    list_filter = ("role", "is_active")
    list_select_related = ("student",)
    search_fields = ("username", "first_name", "last_name", "email")
    ordering = ("username",)
    autocomplete_fields = ("student",)
    readonly_fields = ("is_staff", "is_superuser", "teaching", "last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Role", {"fields": ("role", "student", "teaching")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        (
            "Status",
            {"fields": ("is_active", "is_staff", "is_superuser", "last_login", "date_joined")},
        ),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    "username",
                    "role",
                    "student",
                    "usable_password",
                    "password1",
                    "password2",
                ),
            },
        ),
    )

    @admin.display(description="teaches")
    def teaching(self, obj: User) -> str:
        cohorts: Iterable[str] = obj.teaching_cohorts.values_list("cohort_id", flat=True)
        return ", ".join(cohorts) or "—"

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        account_create_or_update(
            username=obj.username,
            role=obj.role,
            student_id=obj.student.student_id if obj.student_id is not None else None,
        )
        obj.refresh_from_db()


# Roles replace groups (see `RoleAccess`): a group would grant nothing.
if admin.site.is_registered(Group):
    admin.site.unregister(Group)
