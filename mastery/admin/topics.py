"""Topic pages: admins manage topics, their size and their prerequisites."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from mastery.domain.prerequisites import prerequisites_cycle
from mastery.models import Topic
from mastery.selectors import (
    topic_exercises_total,
    topic_in_use,
    topic_list,
    topic_prerequisite_graph,
)
from mastery.services import topic_sizes_rescore
from mastery_project.admin_access import ADMINS, STAFF, RoleAccess


class TopicForm(forms.ModelForm):
    class Meta:
        model = Topic
        fields = ("slug", "name", "exercises_total", "prerequisites")

    def clean_prerequisites(self):
        chosen = self.cleaned_data["prerequisites"]
        if self.instance.pk is None:
            return chosen  # nothing can depend on a topic being created
        cycle = prerequisites_cycle(
            self.instance.pk, [topic.pk for topic in chosen], topic_prerequisite_graph()
        )
        if cycle:
            raise ValidationError(cycle)
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
        return obj is None or not topic_in_use(obj)

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
