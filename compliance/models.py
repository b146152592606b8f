from django.conf import settings
from django.db import models

# The actions the engine audits, for filtering; keep in step with the callers of
# `compliance.services.audit.audit_log_write` (a test checks the code writes no other).
AUDIT_ACTIONS = (
    "batch.rescore",
    "batch.status",
    "admin.batch.view",
    "mastery.query",
    "student.list",
    "student.retrieve",
    "consent.set",
    "gdpr.export",
    "gdpr.erase",
    "admin.student.list",
    "admin.student.view",
    "admin.record.list",
    "admin.record.view",
    "admin.event.list",
    "admin.event.view",
    "admin.cohort.view",
    "prediction.next_week",
    "prediction.trajectory",
    "prediction.intervention",
    "prediction.feedback",
    "prediction.backtest",
    "admin.prediction.feedback",
    "admin.flagfeedback.list",
    "admin.flagfeedback.view",
    "recommendation.adaptive",
    "recommendation.path",
    "recommendation.feedback",
    "analytics.history",
    "analytics.cohorts.compare",
    "analytics.cohorts.list",
    "admin.cohort.compare",
)


class AuditLogQuerySet(models.QuerySet):
    def delete(self):
        raise PermissionError("the audit log is append-only; retention uses purge_expired")

    def update(self, **kwargs):
        raise PermissionError("audit entries cannot be changed")


class AuditLog(models.Model):
    """Who read or changed which student's data. Append-only for the application.

    No code path updates or deletes a row, with two deliberate exceptions done in bulk by
    `compliance.services`: erasure replaces the student id by its keyed hash, and the
    retention purge removes rows past their window.
    """

    class Outcome(models.TextChoices):
        OK = "ok", "OK"
        DENIED = "denied", "Denied"
        NOT_FOUND = "not_found", "Not found"
        ERROR = "error", "Error"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=16, blank=True)
    action = models.CharField(max_length=64)
    # The external student id; replaced by a keyed hash when the student is erased.
    student_ref = models.CharField(max_length=128, blank=True)
    resource = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.OK)
    ip = models.GenericIPAddressField(null=True, blank=True)
    correlation_id = models.CharField(max_length=128, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["student_ref", "created_at"], name="audit_student_time"),
            models.Index(fields=["actor", "created_at"], name="audit_actor_time"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_username} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("audit entries cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("the audit log is append-only; retention uses purge_expired")


class ConsentChange(models.Model):
    """History of a student's analytics consent: who changed it, when, old → new."""

    student = models.ForeignKey(
        "mastery.Student", on_delete=models.CASCADE, related_name="consent_changes"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True)
    old_value = models.BooleanField()
    new_value = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d} {self.old_value} -> {self.new_value}"


class ErasureLedger(models.Model):
    """Erased students, by keyed hash only: later events that predate the erasure are
    rejected (`erased`). Mirrored to an append-only file that survives a database restore."""

    student_hash = models.CharField(max_length=64, unique=True)
    erased_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.student_hash[:12]}… erased {self.erased_at:%Y-%m-%d %H:%M}"
