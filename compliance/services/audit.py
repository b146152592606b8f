"""The audit trail: one append-only row per student an action read or changed."""

from collections.abc import Iterable

from django.http import HttpRequest

from compliance.models import AuditLog, ErasureLedger
from compliance.services.pseudonyms import ERASED_PREFIX, student_hash
from mastery_project.client_address import request_client_ip
from mastery_project.correlation import correlation_id


def audit_log_write(
    *,
    request: HttpRequest | None,
    action: str,
    student_refs: Iterable[str] = ("",),
    resource: str = "",
    outcome: str = AuditLog.Outcome.OK,
    actor=None,
    actor_label: str = "",
    details: dict | None = None,
) -> None:
    """One INSERT for all the students an action touched (one row each).

    Without a user (a management command), `actor_label` says who ran it."""
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    ip = request_client_ip(request) if request is not None else None
    cid = correlation_id.get()
    AuditLog.objects.bulk_create(
        [
            AuditLog(
                actor=actor,
                actor_username=actor.username if actor else actor_label,
                actor_role=actor.role if actor else ("operator" if actor_label else ""),
                action=action,
                student_ref=ref,
                resource=resource[:200],
                outcome=outcome,
                ip=ip,
                correlation_id="" if cid == "-" else cid,
                details=details or {},
            )
            for ref in student_refs
        ]
    )


def student_ref_for_missing(student_id: str) -> str:
    """How a failed lookup names the student it asked for: an erased student's id must not
    come back into the audit log, so it is recorded by its hash."""
    hashed = student_hash(student_id)
    if ErasureLedger.objects.filter(student_hash=hashed).exists():
        return f"{ERASED_PREFIX}{hashed}"
    return student_id
