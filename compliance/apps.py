from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Privacy and audit"

    def ready(self) -> None:
        """The audit log is the plumbing's audit sink (`mastery_project.audit`)."""
        from compliance.services.audit import (
            audit_log_write,
            audit_read_write,
            student_ref_for_missing,
        )
        from mastery_project.audit import AuditSink, audit_sink_register

        audit_sink_register(
            AuditSink(
                write=audit_log_write,
                read=audit_read_write,
                ref_for_missing=student_ref_for_missing,
            )
        )
