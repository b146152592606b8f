"""Where reads and changes of student data are audited.

The compliance app owns the audit log; it registers its writer here at start-up
(`ComplianceConfig.ready`), so the plumbing, and the core app through it, never import
compliance. Without a registered sink auditing fails loudly, never silently.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class AuditSink:
    """`write(request=, action=, student_refs=, resource=, outcome=, ...)` appends one entry
    per student, in the caller's transaction; `read(...)` does the same for a read, which may
    be buffered and written shortly after (never dropped); `ref_for_missing(student_id)`
    names a student a refused lookup asked for (an erased one by its hash, never by its id)."""

    write: Callable[..., None]
    read: Callable[..., None]
    ref_for_missing: Callable[[str], str]


_registered: list[AuditSink] = []


def audit_sink_register(sink: AuditSink) -> None:
    _registered[:] = [sink]


def audit_sink() -> AuditSink:
    if not _registered:
        raise ImproperlyConfigured("no audit sink is registered: is the compliance app installed?")
    return _registered[0]
