"""The audit trail: one append-only row per student an action read or changed.

A change is audited in the transaction that makes it (`audit_log_write`). A read is
audited through `audit_read_write`: with AUDIT_READ_FLUSH_MS above 0 its entries wait in
this process's `ReadAuditBuffer` and are written in one COPY at most that many milliseconds
later, so that a read does not wait for its own INSERT and fsync.
"""

import atexit
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence

import orjson
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from compliance.models import AuditLog, ErasureLedger
from compliance.services.pseudonyms import (
    ERASED_PREFIX,
    ERASURE_LOCK,
    resource_rewrites,
    student_hash,
)
from mastery.models import Student, User
from mastery_project.client_address import request_client_ip
from mastery_project.correlation import correlation_id
from mastery_project.errors import UNAVAILABLE, ServiceUnavailable
from mastery_project.pgcopy import copy_to_temp

logger = logging.getLogger(__name__)


def audit_log_write(**entry) -> None:
    """Audit a change in the caller's transaction: one row per student it touched (the
    fields are `audit_entries`'), written in one INSERT."""
    audit_entries_insert(audit_entries(**entry))


def audit_read_write(**entry) -> None:
    """`audit_log_write` for a read: buffered when AUDIT_READ_FLUSH_MS is above 0."""
    if settings.AUDIT_READ_FLUSH_MS <= 0:
        audit_entries_insert(audit_entries(**entry))
    else:
        read_audit_buffer.add(audit_entries(**entry))


def audit_entries(
    *,
    request: HttpRequest | None,
    action: str,
    student_refs: Iterable[str] = ("",),
    resource: str = "",
    outcome: str = AuditLog.Outcome.OK,
    actor=None,
    actor_label: str = "",
    details: dict | None = None,
) -> list[AuditLog]:
    """The entries of one action, one per student it touched, taken now: the actor (the
    request's user unless given; without one, a management command, `actor_label` says who
    ran it), its address and correlation id."""
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    ip = request_client_ip(request) if request is not None else None
    if ip:  # an IPv6 zone ("fe80::1%eth0") is no part of an inet value
        ip = ip.partition("%")[0]
    cid = correlation_id.get()
    now = timezone.now()
    actor_student = _own_student_id(actor)
    entries = [
        AuditLog(
            created_at=now,
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
    for entry in entries:
        entry.actor_student = actor_student  # not stored: for `_pseudonymised`
    return entries


def _own_student_id(actor) -> str:
    """The id of the student whose login `actor` is ("" for any other user). The API's users
    come with their student (`mastery_project.authentication` reads it with the user)."""
    if actor is None or actor.student_id is None:
        return ""
    try:
        return actor.student.student_id
    except Student.DoesNotExist:
        return ""


def audit_entries_insert(entries: Sequence[AuditLog]) -> None:
    """Append the entries, in order, in one COPY and one INSERT (in the caller's transaction).

    An actor that no longer exists (a user deleted by another process while this one still
    held it, see `mastery_project.authentication.user_cache`) is recorded by name and role
    with no link, as `on_delete=SET_NULL` leaves the entries of a deleted user: the entry is
    written, not refused by the foreign key.

    A student erased since an entry was taken (it waited in a read-audit buffer, or its
    transaction raced the erasure) is named by its pseudonym, in the entry's student, its
    resource and, when the actor was the student's own login, its username: under the
    erasure lock (shared), so that an erasure either sees these rows or is seen by them."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [ERASURE_LOCK])
        entries = _pseudonymised(cursor, entries)
        copy_to_temp(
            cursor,
            "incoming_audit",
            "n int4, created_at timestamptz, actor_id int8, actor_username varchar,"
            " actor_role varchar, action varchar, student_ref varchar, resource varchar,"
            " outcome varchar, ip varchar, correlation_id varchar, details jsonb",
            (
                (
                    n, e.created_at, e.actor_id, e.actor_username, e.actor_role, e.action,
                    e.student_ref, e.resource, e.outcome, e.ip, e.correlation_id,
                    orjson.dumps(e.details),
                )
                for n, e in enumerate(entries)
            ),
        )  # fmt: skip
        cursor.execute(
            f"""INSERT INTO {AuditLog._meta.db_table} (created_at, actor_id, actor_username,
                    actor_role, action, student_ref, resource, outcome, ip, correlation_id,
                    details)
                SELECT a.created_at, u.id, a.actor_username, a.actor_role, a.action,
                    a.student_ref, a.resource, a.outcome, a.ip::inet, a.correlation_id,
                    a.details
                FROM incoming_audit AS a LEFT JOIN {User._meta.db_table} AS u ON u.id = a.actor_id
                ORDER BY a.n"""
        )


def _pseudonymised(cursor, entries: Sequence[AuditLog]) -> Sequence[AuditLog]:
    """The entries, with every student erased after they were taken by its pseudonym (one
    query). A student created again under an erased id after its erasure (its later events
    are accepted) is a new student: its own entries keep its id."""
    refs = {e.student_ref for e in entries} | {getattr(e, "actor_student", "") for e in entries}
    by_hash = {student_hash(r): r for r in refs if r and not r.startswith(ERASED_PREFIX)}
    if not by_hash:
        return entries
    cursor.execute(
        f"SELECT student_hash, erased_at FROM {ErasureLedger._meta.db_table}"
        " WHERE student_hash = ANY(%s::varchar[])",
        [list(by_hash)],
    )
    erased = {by_hash[h]: (f"{ERASED_PREFIX}{h}", at) for h, at in cursor.fetchall()}
    for e in entries:
        pseudonym, erased_at = erased.get(e.student_ref, ("", None))
        if erased_at is not None and e.created_at < erased_at:
            for pattern, replacement in resource_rewrites(e.student_ref, pseudonym):
                e.resource = re.sub(pattern, replacement, e.resource)[:200]
            e.student_ref = pseudonym
        pseudonym, erased_at = erased.get(getattr(e, "actor_student", ""), ("", None))
        if erased_at is not None and e.created_at < erased_at:
            e.actor_username = pseudonym
    return entries


class ReadAuditBuffer:
    """Read audit entries of this process, written by a thread of its own in one COPY at
    most AUDIT_READ_FLUSH_MS after they were taken, and at exit.

    An entry is never silently dropped while the process lives: a write that fails because
    the database is away is retried, entries first in, every AUDIT_READ_RETRY_SECONDS, and
    once AUDIT_READ_BUFFER_MAX entries wait, a read is refused (503) rather than served
    unaudited; a batch the database refuses is written entry by entry, and an entry it still
    refuses is logged in full. Only a process killed outright loses what it holds: the
    last AUDIT_READ_FLUSH_MS of reads and the write under way (more while the database is
    away)."""

    def __init__(self, write: Callable[[Sequence[AuditLog]], None] | None = None):
        self.write = write or _write_alone
        self._waiting: list[AuditLog] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._writing = 0

    def add(self, entries: list[AuditLog]) -> None:
        with self._lock:
            if len(self._waiting) >= settings.AUDIT_READ_BUFFER_MAX:
                raise ServiceUnavailable(
                    "The audit log cannot be written; retry shortly.",
                    code="audit_unavailable",
                    headers={"Retry-After": str(max(1, settings.AUDIT_READ_RETRY_SECONDS))},
                )
            self._waiting.extend(entries)
            if self._pid != os.getpid():  # first use in this process (a forked worker)
                self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="read-audit", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        interval = settings.AUDIT_READ_FLUSH_MS / 1000
        while not self._stop.wait(interval):
            if not self.flush():
                self._stop.wait(settings.AUDIT_READ_RETRY_SECONDS)
        close_old_connections()

    def flush(self) -> bool:
        """Write what waits; False (and everything kept, in order) if the write failed."""
        with self._lock:
            entries, self._waiting = self._waiting, []
            self._writing += len(entries)
        if not entries:
            return True
        try:
            self.write(entries)
        except TRANSIENT:
            logger.exception("read audit not written, %d entries kept for retry", len(entries))
            connection.close()  # the next attempt opens a fresh connection
            self._keep(entries)
            return False
        except Exception:  # an entry the database refuses: the others must not wait on it
            logger.exception(
                "read audit batch refused; %d entries written one by one", len(entries)
            )
            for at, entry in enumerate(entries):
                try:
                    self.write([entry])
                except TRANSIENT:
                    connection.close()
                    self._keep(entries[at:])
                    with self._lock:
                        self._writing -= at
                    return False
                except Exception:
                    logger.exception(
                        "read audit entry refused by the database, not written",
                        extra={"audit_entry": _described(entry)},
                    )
        with self._lock:
            self._writing -= len(entries)
        return True

    def _keep(self, entries: list[AuditLog]) -> None:
        """Put entries that could not be written back in front, in order, for the retry."""
        with self._lock:
            self._waiting[:0] = entries
            self._writing -= len(entries)

    def pending(self) -> int:
        """Entries taken but not yet written."""
        with self._lock:
            return len(self._waiting) + self._writing

    def close(self, timeout: float = 4.0) -> None:
        """Stop the thread and write what is left (at exit; gunicorn's graceful shutdown
        ends there, and its master kills a worker `graceful_timeout`, 10 s, after asking it
        to stop: the drain and this must fit). A write that keeps failing is given up after
        `timeout`, and what is lost is logged."""
        if self.pending():
            logger.info("read audit: writing %d entries before exit", self.pending())
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while not self.flush():
            if time.monotonic() >= deadline:
                logger.error("read audit lost at exit: %d entries", self.pending())
                return
            time.sleep(min(settings.AUDIT_READ_RETRY_SECONDS, timeout / 10))
        self._pid = None


# A write that fails for these is retried (the database or the network is away); any other
# failure is an entry the database refuses, which is logged in full instead.
TRANSIENT = (*UNAVAILABLE, OSError)


def _described(entry: AuditLog) -> dict:
    """An entry as the log records one the database refused (the log is then its record)."""
    return {
        "created_at": entry.created_at.isoformat(), "actor_id": entry.actor_id,
        "actor_username": entry.actor_username, "actor_role": entry.actor_role,
        "action": entry.action, "student_ref": entry.student_ref, "resource": entry.resource,
        "outcome": entry.outcome, "ip": entry.ip, "correlation_id": entry.correlation_id,
    }  # fmt: skip


def _write_alone(entries: Sequence[AuditLog]) -> None:
    """The buffer's write: one transaction of its own, durable when it returns."""
    with transaction.atomic():
        audit_entries_insert(entries)


read_audit_buffer = ReadAuditBuffer()


def student_ref_for_missing(student_id: str) -> str:
    """How a failed lookup names the student it asked for: an erased student's id must not
    come back into the audit log, so it is recorded by its hash."""
    hashed = student_hash(student_id)
    if ErasureLedger.objects.filter(student_hash=hashed).exists():
        return f"{ERASED_PREFIX}{hashed}"
    return student_id
