"""Account pages: logins and their roles, for admins."""

from collections.abc import Iterable

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.http import HttpRequest

from mastery.models import User
from mastery.services import account_create_or_update
from mastery_project.admin_access import ADMINS, RoleAccess


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
