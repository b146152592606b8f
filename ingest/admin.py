"""Accepted learning events, for admins to browse (read-only: the inbox is history)."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from ingest.models import InboxEvent
from mastery.domain.facts import EVENT_TYPES
from mastery_project.admin_access import AuditedReads, ChoicesFilter, RoleAccess


class EventTypeFilter(ChoicesFilter):
    """The four types of SPEC §2.2, without scanning the table for distinct values."""

    title = "event type"
    parameter_name = "event_type"
    field = "event_type"

    def lookups(self, request, model_admin):
        return [(event_type, event_type) for event_type in EVENT_TYPES]


@admin.register(InboxEvent)
class InboxEventAdmin(RoleAccess, AuditedReads, admin.ModelAdmin):
    audit_list_action = "admin.event.list"
    audit_view_action = "admin.event.view"
    list_display = ("event_id", "event_type", "student", "topic", "occurred_at", "source")
    list_filter = (EventTypeFilter, "source", "occurred_at")
    # Exact matches: they use the primary key and the (student, topic, time) index.
    search_fields = ("=event_id", "=student__student_id", "=topic__slug")
    search_help_text = "An exact event id, student id or topic slug."
    ordering = ("-occurred_at", "event_id")
    # Millions of rows: one count per page, not two.
    show_full_result_count = False
    fields = (
        "event_id",
        "event_type",
        "student",
        "topic",
        "occurred_at",
        "payload",
        "source",
        "received_at",
        "content_hash",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[InboxEvent]:
        return super().get_queryset(request).select_related("student", "topic")
