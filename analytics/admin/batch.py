"""Batch jobs in the admin, for admins, read-only: status, progress, who submitted, when,
why a failed job stopped, and the students it could not process.

The list shows no student; a job's page lists its `not_found` students (at most
ERRORS_SHOWN), and that read is audited like the API's.
"""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from analytics.models.batch import BatchJob
from mastery_project.admin_access import ADMINS, NOBODY, AuditedReads, RoleAccess

ERRORS_SHOWN = 200


@admin.register(BatchJob)
class BatchJobAdmin(RoleAccess, AuditedReads, admin.ModelAdmin):
    view_roles = ADMINS
    add_roles = change_roles = delete_roles = NOBODY
    audit_view_action = "admin.batch.view"
    list_display = (
        "id",
        "status",
        "priority",
        "progress",
        "submitted_by",
        "submitted_at",
        "finished_at",
        "error_code",
    )
    list_filter = ("status", "priority", "error_code")
    search_fields = ("=id",)
    search_help_text = "A batch id."
    ordering = ("-submitted_at",)
    show_full_result_count = False
    fields = (
        "id",
        "status",
        "priority",
        "topic",
        "progress",
        "submitted_by",
        "submitted_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
        "attempts",
        "error_code",
        "error_message",
        "not_processed",
        "task_id",
        "correlation_id",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[BatchJob]:
        # Never the list of ids asked for: it can hold 10,000 of them.
        return super().get_queryset(request).select_related("submitted_by").defer("student_ids")

    @admin.display(description="progress")
    def progress(self, job: BatchJob) -> str:
        return f"{job.done} done, {job.failed} failed, of {job.total}"

    @admin.display(description="not processed")
    def not_processed(self, job: BatchJob) -> str:
        errors = self._errors(job)
        if not errors:
            return "None."
        more = job.failed - len(errors)
        rows = format_html_join("", "<li>{} ({})</li>", errors)
        tail = format_html("<li>… and {} more</li>", more) if more > 0 else ""
        return format_html("<ul>{}{}</ul>", rows, tail)

    def audit_refs(self, job: BatchJob) -> list[str]:
        return [student_id for student_id, _ in self._errors(job)]

    def _errors(self, job: BatchJob) -> list[tuple[str, str]]:
        cached = job.__dict__.get("_errors")
        if cached is None:
            outcomes = job.items.exclude(error_code="").order_by("position")
            cached = list(outcomes.values_list("student_id", "error_code")[:ERRORS_SHOWN])
            job.__dict__["_errors"] = cached
        return cached
