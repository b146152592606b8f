"""The audit log, for admins to read. Nobody adds, changes or deletes an entry here, not
even a superuser: erasure and the retention purge are the only writes after the insert."""

from django.contrib import admin

from compliance.models import AuditLog
from mastery.admin import ADMINS, NOBODY, RoleAccess
from mastery.models import User


class ActorFilter(admin.SimpleListFilter):
    """Staff and service logins (few); students are found by searching their username."""

    title = "actor"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        actors = User.objects.exclude(role=User.Role.STUDENT).order_by("username")
        return [(str(pk), name) for pk, name in actors.values_list("pk", "username")]

    def queryset(self, request, queryset):
        return queryset.filter(actor_id=self.value()) if self.value() else queryset


class ActorRoleFilter(admin.SimpleListFilter):
    title = "actor role"
    parameter_name = "actor_role"

    def lookups(self, request, model_admin):
        return User.Role.choices

    def queryset(self, request, queryset):
        return queryset.filter(actor_role=self.value()) if self.value() else queryset


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
    list_filter = (ActorFilter, ActorRoleFilter, "action", "outcome", "created_at")
    search_fields = ("=student_ref", "=actor_username", "=correlation_id")
    search_help_text = "An exact student id, username or correlation id."
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
