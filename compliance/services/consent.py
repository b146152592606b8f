"""Analytics consent, with its history."""

from django.db import transaction
from django.http import HttpRequest

from compliance.models import ConsentChange
from compliance.services.audit import audit_log_write
from mastery.models import Student, User


@transaction.atomic
def student_consent_set(
    *, student: Student, analytics: bool, actor: User, request: HttpRequest | None = None
) -> ConsentChange | None:
    """Set analytics consent, keeping history; a no-op change records nothing new."""
    student = Student.objects.select_for_update().get(pk=student.pk)
    old = student.analytics_consent
    audit_log_write(
        request=request,
        actor=actor,
        action="consent.set",
        student_refs=[student.student_id],
        resource=f"consent:{old}->{analytics}",
    )
    if old == analytics:
        return None
    student.analytics_consent = analytics
    student.save(update_fields=["analytics_consent"])
    return ConsentChange.objects.create(
        student=student,
        actor=actor,
        actor_username=actor.username if actor else "",
        old_value=old,
        new_value=analytics,
    )
