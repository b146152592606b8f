"""The audit log, for admins to read. Nobody adds, changes or deletes an entry here, not
even a superuser: erasure and the retention purge are the only writes after the insert."""

from django.contrib import admin

from compliance.models import AUDIT_ACTIONS, AuditLog
from mastery.admin import ADMINS, NOBODY, ChoicesFilter, RoleAccess
from mastery.models import User


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
