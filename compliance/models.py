from django.conf import settings
from django.db import models


class AuditLog(models.Model):
    """Who read or changed which student's data. Append-only for the application."""

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

    class Meta:
        indexes = [
            models.Index(fields=["student_ref", "created_at"], name="audit_student_time"),
            models.Index(fields=["actor", "created_at"], name="audit_actor_time"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_username} {self.action}"
