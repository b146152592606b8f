"""Privacy and audit writes: the audit trail (append-only), and later export and erasure."""

import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest

from compliance.models import AuditLog
from mastery_project.correlation import correlation_id


def request_client_ip(request: HttpRequest) -> str | None:
    """The client address, trusting `X-Forwarded-For` only for `TRUSTED_PROXY_COUNT` hops.

    With N trusted proxies in front, the client is the Nth address from the right of the
    header; anything further left was written by the client and is not believed.
    """
    candidate = request.META.get("REMOTE_ADDR")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= hops:
            candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate)) if candidate else None
    except ValueError:
        return None


def audit_log_write(
    *,
    request: HttpRequest | None,
    action: str,
    student_refs: Iterable[str] = ("",),
    resource: str = "",
    outcome: str = AuditLog.Outcome.OK,
    actor=None,
    details: dict | None = None,
) -> None:
    """One INSERT for all the students an action touched (one row each)."""
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    ip = request_client_ip(request) if request is not None else None
    AuditLog.objects.bulk_create(
        [
            AuditLog(
                actor=actor,
                actor_username=actor.username if actor else "",
                actor_role=actor.role if actor else "",
                action=action,
                student_ref=ref,
                resource=resource[:200],
                outcome=outcome,
                ip=ip,
                correlation_id=correlation_id.get() if correlation_id.get() != "-" else "",
                details=details or {},
            )
            for ref in student_refs
        ]
    )
