"""Compliance in the admin: the audit log for admins to read, and the GDPR actions on the
student list (the same services as the API and the commands).

Nobody adds, changes or deletes an audit entry here, not even a superuser: erasure and the
retention purge are the only writes after the insert.
"""

from collections import Counter

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils.http import content_disposition_header

from compliance.models import AUDIT_ACTIONS, AuditLog
from compliance.services.erasure import student_erase
from compliance.services.export import student_export_stream
from mastery.models import Student, User
from mastery_project.admin_access import ADMINS, NOBODY, ChoicesFilter, RoleAccess, admin_action_for
from mastery_project.errors import NotFound

EXPORT_MAX_STUDENTS = 50


class ActorFilter(ChoicesFilter):
    """Staff and service logins (few); students are found by searching their username."""

    title = "actor"
    parameter_name = "actor"
    field = "actor_id"

    def lookups(self, request, model_admin):
        actors = User.objects.exclude(role=User.Role.STUDENT).order_by("username")
        return [(str(pk), name) for pk, name in actors.values_list("pk", "username")]


class ActorRoleFilter(ChoicesFilter):
    title = "actor role"
    parameter_name = "actor_role"
    field = "actor_role"

    def lookups(self, request, model_admin):
        return User.Role.choices


class ActionFilter(ChoicesFilter):
    """The actions the engine writes (a fixed list: no scan of the log for distinct values;
    the search box finds any other by its exact name)."""

    title = "action"
    parameter_name = "action"
    field = "action"

    def lookups(self, request, model_admin):
        return [(action, action) for action in AUDIT_ACTIONS]


@admin.register(AuditLog)
class AuditLogAdmin(RoleAccess, admin.ModelAdmin):
    view_roles = ADMINS
    add_roles = change_roles = delete_roles = NOBODY
    list_display = (
        "created_at",
        "actor_username",
        "actor_role",
        "action",
        "student_ref",
        "outcome",
        "resource",
        "ip",
    )
    list_filter = (ActorFilter, ActorRoleFilter, ActionFilter, "outcome", "created_at")
    search_fields = ("=student_ref", "=actor_username", "=correlation_id", "=action")
    search_help_text = "An exact student id, username, correlation id or action."
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    fields = (
        "created_at",
        "actor",
        "actor_username",
        "actor_role",
        "action",
        "student_ref",
        "resource",
        "outcome",
        "ip",
        "correlation_id",
        "details",
    )
    readonly_fields = fields


# --- GDPR actions on the student list ---------------------------------------------------


@admin_action_for(Student)
@admin.action(description="Export (JSON)", permissions=["gdpr"])
def export_json(modeladmin, request: HttpRequest, queryset: QuerySet[Student]):
    students = list(queryset[: EXPORT_MAX_STUDENTS + 1])
    if len(students) > EXPORT_MAX_STUDENTS:
        modeladmin.message_user(
            request,
            f"Export at most {EXPORT_MAX_STUDENTS} students at a time.",
            messages.ERROR,
        )
        return None
    response = StreamingHttpResponse(
        _export_documents(request, students), content_type="application/json"
    )
    filename = (
        f"student-{students[0].student_id}.json" if len(students) == 1 else "students-export.json"
    )
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


def _export_documents(request: HttpRequest, students: list[Student]):
    """The API's streamed document for one student; `{"students": [...]}` for several."""
    if len(students) == 1:
        yield from student_export_stream(student=students[0], actor=request.user, request=request)
        return
    yield b'{"students":['
    for position, student in enumerate(students):
        if position:
            yield b","
        yield from student_export_stream(student=student, actor=request.user, request=request)
    yield b"]}"


@admin_action_for(Student)
@admin.action(description="Erase (GDPR)…", permissions=["gdpr"])
def erase(modeladmin, request: HttpRequest, queryset: QuerySet[Student]):
    """Asks first; on the confirmation's POST erases each student in its own transaction."""
    students = list(queryset.order_by("student_id"))
    if request.POST.get("post") != "yes":
        return TemplateResponse(
            request,
            "admin/compliance/student/erase_confirmation.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": "Erase students?",
                "subtitle": None,
                "opts": modeladmin.opts,
                "students": students,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "action_name": "erase",
                "media": modeladmin.media,
            },
        )
    erased, totals = [], Counter()
    for student in students:
        try:
            counts = student_erase(
                student_id=student.student_id, actor=request.user, request=request
            )
        except NotFound:
            continue  # erased meanwhile, e.g. by a concurrent request
        erased.append(student.student_id)
        totals.update({k: v for k, v in counts.items() if isinstance(v, int)})
    rows = ", ".join(f"{name.replace('_', ' ')}: {n}" for name, n in sorted(totals.items()))
    modeladmin.message_user(
        request,
        f"Erased {len(erased)} student(s): {', '.join(erased) or 'none'}"
        + (f" ({rows})." if rows else "."),
        messages.SUCCESS,
    )
    return None
