"""Role-aware bases for every app's admin: roles, not permission rows, decide what a login
may do; reads of student data are audited like the API's; list filters never 500.

No domain rule lives here. What a caller may *see* always comes from the apps' selectors
(`mastery.selectors.students_visible_to`).
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest

from mastery.models import User
from mastery_project.access import students_read_audit

ADMIN = User.Role.ADMIN
TEACHER = User.Role.TEACHER
STAFF = frozenset({ADMIN, TEACHER})
ADMINS = frozenset({ADMIN})
NOBODY: frozenset[str] = frozenset()


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


# What other apps add to a model's admin pages, without importing the app that owns them
# (compliance's GDPR actions and analytics' sections on the student page, say).
_ACTIONS: dict[type[Model], list[Callable]] = defaultdict(list)
_LIST_FILTERS: dict[type[Model], list[type]] = defaultdict(list)
_SECTIONS: dict[type[Model], list["PageSection"]] = defaultdict(list)


def admin_action_for(model: type[Model]) -> Callable[[Callable], Callable]:
    """Adds an admin action (an `@admin.action` function) to `model`'s admin. The action
    must name the permission it needs (`permissions=[...]`, checked against the admin's
    roles), so it is never offered by default to every role that sees the list."""

    def register(action: Callable) -> Callable:
        if not getattr(action, "allowed_permissions", None):
            raise ImproperlyConfigured(
                f"admin action {action.__name__} names no permission: "
                "use @admin.action(permissions=[...])"
            )
        _ACTIONS[model].append(action)
        return action

    return register


def admin_list_filter_for(model: type[Model]) -> Callable[[type], type]:
    """Adds a list filter (a `SimpleListFilter` class) to `model`'s change list."""

    def register(list_filter: type) -> type:
        _LIST_FILTERS[model].append(list_filter)
        return list_filter

    return register


@dataclass(frozen=True)
class PageSection:
    template: str
    context: Callable[[HttpRequest, Model], dict | None]
    order: int


def admin_section_for(
    model: type[Model], *, template: str, order: int = 100
) -> Callable[[Callable], Callable]:
    """Adds a section to `model`'s change page: `template`, rendered with the dict the
    decorated `context(request, obj)` returns (under `section`), or left out when it
    returns None. Sections come after the page's own content, by `order`."""

    def register(context: Callable[[HttpRequest, Model], dict | None]) -> Callable:
        _SECTIONS[model].append(PageSection(template, context, order))
        return context

    return register


def page_sections(request: HttpRequest, obj: Model) -> list[dict]:
    """The sections other apps add to `obj`'s change page, ready for the template."""
    shown = []
    for section in sorted(_SECTIONS[type(obj)], key=lambda s: s.order):
        context = section.context(request, obj)
        if context is not None:
            shown.append({"template": section.template, **context})
    return shown


class RoleAccess:
    """Model-admin permissions from the caller's role (SPEC §3), never from permission rows.

    A request for an object outside the caller's queryset answers 404, as the API does,
    where the admin would redirect to its index with a "does not exist" message. The
    actions are those registered for its model (`admin_action_for`, by its own app or
    another); list filters and page sections are its own and those other apps add
    (`admin_list_filter_for`, `admin_section_for`).
    """

    view_roles: frozenset[str] = ADMINS
    add_roles: frozenset[str] = NOBODY
    change_roles: frozenset[str] = NOBODY
    delete_roles: frozenset[str] = NOBODY
    gdpr_roles: frozenset[str] = ADMINS

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "actions" in vars(cls):
            raise ImproperlyConfigured(
                f"{cls.__name__} sets `actions`, which would hide the registered ones: "
                "add actions with admin_action_for(Model)"
            )

    @property
    def actions(self) -> tuple:
        return tuple(_ACTIONS[self.model])

    def get_list_filter(self, request: HttpRequest):
        return (*super().get_list_filter(request), *_LIST_FILTERS[self.model])

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        """After Django's permission checks: the sections of a page that is shown."""
        context["page_sections"] = page_sections(request, obj) if obj is not None else []
        return super().render_change_form(request, context, add, change, form_url, obj)

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

    def has_gdpr_permission(self, request: HttpRequest) -> bool:
        return site_role(request) in self.gdpr_roles

    def get_object(self, request: HttpRequest, object_id, from_field=None):
        """Cached per request: the change views read the object before Django does."""
        cache = request.__dict__.setdefault("_admin_objects", {})
        key = (self.model, object_id, from_field)
        if key not in cache:
            cache[key] = super().get_object(request, object_id, from_field)
        return cache[key]

    def remember_object(self, request: HttpRequest, object_id, obj) -> None:
        """Hands an object already read (e.g. by the audited lookup) to `get_object`."""
        request.__dict__.setdefault("_admin_objects", {})[(self.model, object_id, None)] = obj

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


def audited_path(request: HttpRequest) -> str:
    """The page's path and its query, re-encoded one canonical way: whatever escapes the
    client sent, an id in a query value is written as the erasure looks for it."""
    query = request.GET.urlencode()
    return f"{request.path}?{query}" if query else request.path


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
            students_read_audit(
                request,
                action=self.audit_list_action,
                student_refs=list(refs),
                resource=audited_path(request),
            )
        return response

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        obj = (getattr(response, "context_data", None) or {}).get("original")
        if self.audit_view_action and obj is not None:
            students_read_audit(
                request, action=self.audit_view_action, student_refs=list(self.audit_refs(obj))
            )
        return response


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
