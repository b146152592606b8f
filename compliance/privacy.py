"""What compliance stores about a student: its consent history, the audit entries about it
and the admin site's history of it and its login (see `mastery_project.privacy`)."""

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet

from compliance.models import AuditLog, ConsentChange
from compliance.services.erasure import audit_entries_pseudonymise
from mastery.models import Student, User
from mastery_project.privacy import Export, StudentData


def _admin_history_of(student: Student) -> QuerySet:
    """The admin site's log names its object by id and by `str()`: the student's id, its
    login's username."""
    logins = User._base_manager.filter(student=student).values_list("pk", flat=True)
    return LogEntry.objects.filter(
        Q(content_type=ContentType.objects.get_for_model(Student), object_id=str(student.pk))
        | Q(
            content_type=ContentType.objects.get_for_model(User),
            object_id__in=[str(pk) for pk in logins],
        )
    )


STUDENT_DATA = (
    StudentData(
        kind="consent_changes",
        model=ConsentChange,
        student_field="student",
        export=Export(
            "consent_history",
            lambda rows: rows.order_by("created_at", "id").values(
                "created_at", "actor_username", "old_value", "new_value"
            ),
        ),
    ),
    StudentData(
        kind="audit_log",
        model=AuditLog,
        student_field="student_ref",
        rows=lambda student: AuditLog.objects.filter(student_ref=student.student_id),
        export=Export(
            "audit",
            lambda rows: rows.order_by("created_at", "id").values(
                "created_at",
                "actor_username",
                "actor_role",
                "action",
                "resource",
                "outcome",
                "ip",
            ),
        ),
        erase=audit_entries_pseudonymise,
        erased_as="audit_entries_pseudonymised",
        retention_setting="RETENTION_AUDIT_DAYS",
        retention_field="created_at",
    ),
    StudentData(
        kind="admin_log_entries",
        model=LogEntry,
        student_field="object_id",
        rows=_admin_history_of,
    ),
)
